// Small pieces shared by the views.
import { h, clear, str } from './dom.js';

// badge shows a status word; its class is chosen from a fixed set, never from
// the value itself.
const known = new Set(['creating', 'running', 'completed', 'failed', 'timed_out', 'killed', 'lost', 'pooled',
  'allowed', 'blocked', 'leak', 'rate_limited', 'error', 'idle', 'starting', 'stopping', 'terminated', 'paused', 'stopped']);
export function badge(v) {
  const t = str(v);
  return h('span', { class: 'badge ' + (known.has(t) ? 'b-' + t : 'b-other'), text: t });
}

// labels shows key=value chips.
export function labels(m) {
  if (!m || typeof m !== 'object') return '';
  return h('span', { class: 'labels' }, Object.entries(m).map(([k, v]) => h('span', { class: 'label', text: k + '=' + str(v) })));
}

// status is a line for the outcome of an action.
export function statusLine() {
  const el = h('div', { class: 'status-line', role: 'status' });
  el.ok = (t) => { el.className = 'status-line ok'; el.textContent = t; };
  el.err = (e) => { el.className = 'status-line error'; el.textContent = e && e.code ? e.code + ': ' + e.message : String(e); };
  el.reset = () => { el.className = 'status-line'; el.textContent = ''; };
  return el;
}

// action is a button that runs an async function, disabled while it runs,
// reporting failures to line.
export function action(label, fn, line, props = {}) {
  const b = h('button', { type: 'button', ...props, text: label });
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await fn(b);
    } catch (e) {
      if (line) line.err(e); else console.error(e);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// confirmAction is an action that asks for a second click ("Confirm?") first.
export function confirmAction(label, fn, line, props = {}) {
  let armed = false, timer;
  const b = h('button', { type: 'button', ...props, text: label });
  b.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      b.textContent = 'Confirm ' + label.toLowerCase();
      b.classList.add('armed');
      timer = setTimeout(() => { armed = false; b.textContent = label; b.classList.remove('armed'); }, 4000);
      return;
    }
    clearTimeout(timer);
    armed = false;
    b.textContent = label;
    b.classList.remove('armed');
    b.disabled = true;
    try { await fn(b); } catch (e) { if (line) line.err(e); } finally { b.disabled = false; }
  });
  return b;
}

// section is a titled panel.
export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', { text: title }), children);
}

// kv shows an object's fields as a definition list, nested values as JSON text.
export function kv(obj) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of Object.entries(obj || {})) {
    if (v === undefined) continue;
    const text = v !== null && typeof v === 'object' ? JSON.stringify(v, null, 2) : str(v);
    dl.append(h('dt', { text: k }), h('dd', null, typeof v === 'object' && v !== null ? h('pre', { text }) : text));
  }
  return dl;
}

// table builds a table with a header row.
export function table(headers, rows, props = {}) {
  return h('table', props,
    h('thead', null, h('tr', null, headers.map((t) => h('th', { text: t })))),
    h('tbody', null, rows));
}

// empty is a placeholder row spanning n columns.
export function emptyRow(n, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan: n, text }));
}

// replace puts children in el (used for panels that load).
export function fill(el, ...children) { return clear(el, children); }

// pretty returns JSON text for a value.
export function pretty(v) {
  try { return JSON.stringify(v, null, 2); } catch { return str(v); }
}

// validID reports whether v may be used as a sandbox id in a path.
export const validID = (v) => typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v);
