// The audit view: the live stream of every egress decision, lifecycle event and
// tool execution, with filters; refusals stand out and each record expands to
// every field.
import { h, clear, str, time } from './dom.js';
import * as api from './api.js';
import { badge, kv, statusLine, section, validID } from './widgets.js';

const decisions = ['allowed', 'blocked', 'leak', 'rate_limited', 'error'];
const kinds = ['request', 'lifecycle', 'execution', 'gap'];

// refused reports whether a record is a refusal (or a failure) to make stand out.
export function refused(rec) {
  return (rec.kind === 'request' && rec.decision && rec.decision !== 'allowed') ||
    rec.kind === 'gap' || (rec.kind === 'execution' && !!rec.error);
}

// rows renders one record as a summary row and its hidden detail row.
export function rows(rec, cols = 9) {
  const who = rec.container_id
    ? (validID(rec.container_id) ? h('a', { href: '#/sandbox/' + api.seg(rec.container_id), text: str(rec.container_id) }) : str(rec.container_id))
    : rec.tool ? 'tool ' + str(rec.tool) : '';
  const what = rec.kind === 'request' ? badge(rec.decision) : h('span', { class: 'event', text: str(rec.event || rec.kind) });
  const detail = h('tr', { class: 'detail', hidden: true }, h('td', { colspan: cols }, kv(rec)));
  const count = rec.count ? h('span', { class: 'count', text: '×' + str(rec.count) }) : '';
  const tr = h('tr', {
    class: ['record', refused(rec) && 'refused', 'k-' + (kinds.includes(rec.kind) ? rec.kind : 'other')],
    tabindex: 0, 'aria-expanded': 'false', title: 'show every field',
  },
  h('td', { class: 'nowrap', text: time(rec.time) }),
  h('td', { text: str(rec.kind) }),
  h('td', { class: 'mono' }, who),
  h('td', null, what, count),
  h('td', { text: str(rec.method) }),
  h('td', { class: 'mono', text: str(rec.host) }),
  h('td', { class: 'mono url', text: str(rec.url) }),
  h('td', { text: str(rec.rule || rec.reason || rec.error) }),
  h('td', { text: rec.status ? str(rec.status) : '' }));
  const toggle = (ev) => {
    if (ev.target.closest('a')) return;
    detail.hidden = !detail.hidden;
    tr.setAttribute('aria-expanded', String(!detail.hidden));
  };
  tr.addEventListener('click', toggle);
  tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(ev); } });
  return [tr, detail];
}

export const headers = ['Time', 'Kind', 'Sandbox or tool', 'Decision or event', 'Method', 'Host', 'URL', 'Rule or reason', 'Status'];

// list is a table of records, newest first, capped at max records.
export function list(max = 500) {
  const tbody = h('tbody');
  const el = h('table', { class: 'audit' }, h('thead', null, h('tr', null, headers.map((t) => h('th', { text: t })))), tbody);
  let n = 0;
  return {
    el,
    set(recs) { clear(tbody); n = 0; for (const r of recs) { tbody.append(...rows(r)); n++; } this.placeholder(); },
    prepend(rec) {
      const [a, b] = rows(rec);
      const ph = tbody.querySelector('tr.empty');
      if (ph) ph.remove();
      tbody.prepend(a, b);
      if (++n > max) { tbody.lastChild.remove(); tbody.lastChild.remove(); n--; }
    },
    placeholder() { if (!n) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: headers.length, text: 'No records yet.' }))); },
  };
}

const state = { container_id: '', tool: '', decision: '', kind: '', host: '' };

export function audit(ctx) {
  const { scope, feed } = ctx;
  const line = statusLine();
  const input = (key, placeholder) => h('input', { name: key, placeholder, value: state[key], 'aria-label': placeholder });
  const select = (key, opts, all) => h('select', { name: key, 'aria-label': all },
    h('option', { value: '', text: all }), opts.map((o) => h('option', { value: o, text: o, selected: state[key] === o })));
  const f = {
    container_id: input('container_id', 'sandbox id'),
    tool: input('tool', 'tool'),
    decision: select('decision', [...decisions, 'refused'], 'any decision'),
    kind: select('kind', kinds, 'any kind'),
    host: input('host', 'host'),
  };
  const counter = h('span', { class: 'muted' });
  let seen = 0, refusedSeen = 0;
  const tally = () => { counter.textContent = `${seen} live records, ${refusedSeen} refused`; };
  tally();
  const tbl = list();
  const matches = (r) =>
    (!state.container_id || r.container_id === state.container_id) &&
    (!state.tool || r.tool === state.tool) &&
    (!state.decision || r.decision === state.decision || (state.decision === 'refused' && refused(r) && r.kind === 'request')) &&
    (!state.kind || r.kind === state.kind) &&
    (!state.host || str(r.host).toLowerCase().includes(state.host.toLowerCase()));
  let gen = 0;
  const load = async () => {
    const my = ++gen;
    for (const [k, el] of Object.entries(f)) state[k] = el.value.trim();
    line.reset();
    try {
      // "refused" (any decision but allowed) is not a server filter: ask for the
      // request records and keep the refusals here.
      const anyRefusal = state.decision === 'refused';
      const res = await api.get('/audit', {
        container_id: state.container_id, tool: state.tool, decision: anyRefusal ? '' : state.decision,
        kind: anyRefusal ? 'request' : state.kind, limit: 300,
      }, { signal: scope.signal });
      if (my !== gen) return;
      const recs = Array.isArray(res && res.records) ? res.records.filter((r) => r && typeof r === 'object') : [];
      tbl.set(recs.filter(matches));
    } catch (e) {
      if (e.name !== 'AbortError') line.err(e);
    }
  };
  feed.listen((rec) => {
    if (!matches(rec)) return;
    seen++;
    if (refused(rec)) refusedSeen++;
    tally();
    tbl.prepend(rec);
  }, scope);
  const form = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); load(); } },
    Object.values(f), h('button', { type: 'submit', text: 'Apply' }),
    h('button', { type: 'button', text: 'Clear', onclick: () => { for (const el of Object.values(f)) el.value = ''; load(); } }));
  load();
  return h('div', null,
    h('h1', { text: 'Audit' }),
    h('p', { class: 'muted', text: 'Every egress decision, sandbox lifecycle event and tool execution, as it is written. Refusals are marked; click a record for every field.' }),
    section('Filters', form, counter, line),
    h('div', { class: 'scroll' }, tbl.el));
}
