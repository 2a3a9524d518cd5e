// The one way this page builds DOM: elements with createElement, text with text
// nodes. Nothing here parses markup, so a value holding "<script>" stays text.

// h creates an element. props: class, text, on<event> handlers, value, checked,
// and other attributes (set with setAttribute; never "style" or "on…": use classes
// and handlers). Children are nodes or strings (strings become text nodes); arrays
// are flattened, null and false are skipped.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  add(el, children);
  return el;
}

const svgNS = 'http://www.w3.org/2000/svg';

// s creates an SVG element, like h.
export function s(tag, props, ...children) {
  const el = document.createElementNS(svgNS, tag);
  setProps(el, props);
  add(el, children);
  return el;
}

function setProps(el, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'value') el.value = String(v);
    else if (k === 'checked') el.checked = !!v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style' || k.startsWith('on')) throw new Error('dom: ' + k + ' is not allowed');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

// add appends children (nodes or text) to el.
export function add(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// clear removes every child of el and adds children.
export function clear(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

// str turns a hostile value into display text.
export function str(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  try { return JSON.stringify(v); } catch { return String(v); }
}

// ago says how long before now t was ("3m 12s").
export function ago(t, now = Date.now()) {
  const ms = now - Date.parse(t);
  return Number.isFinite(ms) ? dur(ms) : '';
}

// until says how long from now to t ("in 4m", "passed").
export function until(t, now = Date.now()) {
  const ms = Date.parse(t) - now;
  if (!Number.isFinite(ms)) return '';
  return ms < 0 ? 'passed' : 'in ' + dur(ms);
}

// dur formats a duration in milliseconds with its two largest units.
export function dur(ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return Math.round(ms) + 'ms';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return d + 'd ' + hr + 'h';
  if (hr) return hr + 'h ' + m + 'm';
  if (m) return m + 'm ' + s + 's';
  return s + 's';
}

// secs formats a latency in seconds ("320ms", "1.42s").
export function secs(x) {
  if (x === null || !Number.isFinite(x)) return '—';
  return x < 1 ? Math.round(x * 1000) + 'ms' : x < 10 ? x.toFixed(2) + 's' : dur(x * 1000);
}

// time formats an RFC 3339 time as local date and time.
export function time(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? str(t) : d.toLocaleString();
}

// bytes formats a byte count.
export function bytes(n) {
  n = Number(n);
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

// Scope owns what a view starts (streams, timers, listeners) and stops all of it
// at once when the view goes away.
export class Scope {
  constructor() {
    this.ctl = new AbortController();
    this.stops = [];
  }
  get signal() { return this.ctl.signal; }
  get closed() { return this.ctl.signal.aborted; }
  every(ms, fn) {
    const id = setInterval(fn, ms);
    this.stops.push(() => clearInterval(id));
  }
  onStop(fn) { this.stops.push(fn); }
  close() {
    if (this.closed) return;
    this.ctl.abort();
    for (const fn of this.stops.splice(0)) fn();
  }
}
