// The sandboxes view (live list, filters, kill and extend, agents, spawn) and the
// view of one sandbox (record, live logs, audit, exec console, files).
import { h, clear, str, ago, until, time, bytes, add } from './dom.js';
import * as api from './api.js';
import { badge, labels, statusLine, action, confirmAction, section, kv, validID } from './widgets.js';
import * as auditView from './audit.js';

const statuses = ['creating', 'running', 'completed', 'failed', 'timed_out', 'killed', 'lost'];
const filter = { status: '', labels: '' };

// parseLabels turns "k=v, k2=v2" into ["k=v", "k2=v2"], or throws.
function parseLabels(text) {
  const out = [];
  for (const part of text.split(/[,\s]+/)) {
    if (!part) continue;
    if (!/^[^=]+=/.test(part)) throw new Error(`label filter "${part}": write key=value`);
    out.push(part);
  }
  return out;
}

function extendControl(id, line, onDone) {
  const mins = h('input', { type: 'number', min: 1, step: 1, value: 10, class: 'mins', 'aria-label': 'minutes from now' });
  const b = action('Set deadline', async () => {
    const m = Number(mins.value);
    if (!Number.isFinite(m) || m <= 0) throw new Error('minutes must be a positive number');
    await api.json('PATCH', '/containers/' + api.seg(id), { body: { timeout_ms: Math.round(m * 60000) } });
    line.ok(`${id}: deadline set to ${m} min from now`);
    onDone();
  }, line, { class: 'small', title: 'move the deadline to this many minutes from now' });
  return h('span', { class: 'extend' }, mins, h('span', { class: 'muted', text: 'min' }), b);
}

function killButton(id, line, onDone) {
  return confirmAction('Kill', async () => {
    const res = await api.json('DELETE', '/containers/' + api.seg(id));
    line.ok(`${id}: ${str(res && res.status)}`);
    onDone();
  }, line, { class: 'small danger', 'data-action': 'kill' });
}

function startKind(info) {
  if (typeof info.warm !== 'boolean') return '';
  return h('span', { class: info.warm ? 'warm' : 'cold', text: info.warm ? 'warm' : 'cold' });
}

export function sandboxes(ctx) {
  const { scope, feed } = ctx;
  const line = statusLine();
  const statusSel = h('select', { name: 'status', 'aria-label': 'status' }, h('option', { value: '', text: 'any status' }),
    statuses.map((s) => h('option', { value: s, text: s, selected: filter.status === s })));
  const labelIn = h('input', { name: 'labels', placeholder: 'labels: team=a, run=2', value: filter.labels, 'aria-label': 'labels' });
  const tbody = h('tbody');
  const rows = new Map(); // id → {tr, key, age, deadline}
  let gen = 0;
  const refresh = async () => {
    const my = ++gen;
    let sel;
    try { sel = parseLabels(filter.labels); } catch (e) { line.err(e); return; }
    let res;
    try {
      res = await api.get('/containers', { status: filter.status, label: sel }, { signal: scope.signal });
    } catch (e) {
      if (e.name !== 'AbortError') line.err(e);
      return;
    }
    if (my !== gen || scope.closed) return;
    const list = Array.isArray(res && res.containers) ? res.containers.filter((c) => c && typeof c === 'object') : [];
    const keep = new Set();
    let prev = null; // the row placed last, in the server's order (newest first)
    for (const info of list) {
      const id = str(info.container_id);
      keep.add(id);
      // Only what the row shows: a change elsewhere (workspace bytes) keeps the row,
      // and with it a deadline being typed.
      const key = JSON.stringify([info.status, info.image, info.labels, info.created_at, info.deadline, info.warm, info.task_summary]);
      let r = rows.get(id);
      if (!r || r.key !== key) {
        const age = h('td', { class: 'nowrap' }), deadline = h('td', { class: 'nowrap' });
        const running = info.status === 'running';
        const tr = h('tr', { 'data-id': id },
          h('td', { class: 'mono' }, validID(id) ? h('a', { href: '#/sandbox/' + api.seg(id), text: id }) : id),
          h('td', null, badge(info.status)),
          h('td', { class: 'mono', text: str(info.image) }),
          h('td', null, labels(info.labels)),
          age, deadline,
          h('td', null, startKind(info)),
          h('td', { class: 'task', text: str(info.task_summary) }),
          h('td', { class: 'actions' }, running && validID(id) ? [extendControl(id, line, refresh), killButton(id, line, refresh)] : ''));
        if (r) r.tr.replaceWith(tr);
        r = { tr, key, info, age, deadline };
        rows.set(id, r);
      }
      // Moved only when out of place: a row that stays put is never detached
      // (a click or a typed deadline in it survives the refresh).
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (r.tr !== want) tbody.insertBefore(r.tr, want);
      prev = r.tr;
    }
    for (const [id, r] of rows) if (!keep.has(id)) { r.tr.remove(); rows.delete(id); }
    const ph = tbody.querySelector('tr.empty');
    if (rows.size === 0 && !ph) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 9, text: 'No sandboxes match.' })));
    if (rows.size && ph) ph.remove();
    ticks();
  };
  const ticks = () => {
    const now = Date.now();
    for (const r of rows.values()) {
      r.age.textContent = ago(r.info.created_at, now);
      r.deadline.textContent = r.info.status === 'running' && r.info.deadline ? until(r.info.deadline, now) : '';
    }
  };
  let pending;
  feed.listen((rec) => {
    if (rec.kind !== 'lifecycle' || pending) return;
    pending = setTimeout(() => { pending = null; refresh(); }, 150);
  }, scope);
  scope.onStop(() => clearTimeout(pending));
  scope.every(3000, refresh);
  scope.every(1000, ticks);
  refresh();
  const form = h('form', { class: 'filters', onsubmit: (ev) => {
    ev.preventDefault();
    filter.status = statusSel.value;
    filter.labels = labelIn.value.trim();
    line.reset();
    for (const r of rows.values()) r.tr.remove();
    rows.clear();
    refresh();
  } }, statusSel, labelIn, h('button', { type: 'submit', text: 'Filter' }));
  return h('div', null,
    h('h1', { text: 'Sandboxes' }),
    section('Containers', form, line,
      h('div', { class: 'scroll' }, h('table', { class: 'sandboxes' },
        h('thead', null, h('tr', null, ['ID', 'Status', 'Image', 'Labels', 'Age', 'Deadline', 'Start', 'Task', ''].map((t) => h('th', { text: t })))),
        tbody))),
    agentsPanel(scope),
    spawnPanel(refresh));
}

// agentsPanel lists GET /agents, and hides itself when the server has no agents
// routes (404).
function agentsPanel(scope) {
  const line = statusLine();
  const tbody = h('tbody');
  const panel = section('Agents', line, h('div', { class: 'scroll' }, h('table', null,
    h('thead', null, h('tr', null, ['Agent', 'Name', 'Status', 'Sandbox', 'Created', 'Last activity', ''].map((t) => h('th', { text: t })))),
    tbody)));
  panel.hidden = true;
  panel.id = 'agents';
  const refresh = async () => {
    let res;
    try {
      res = await api.get('/agents', null, { signal: scope.signal });
    } catch (e) {
      if (e.status === 404 || e.status === 405) { panel.hidden = true; return; }
      if (e.name !== 'AbortError') { panel.hidden = false; line.err(e); }
      return;
    }
    panel.hidden = false;
    const list = Array.isArray(res) ? res : Array.isArray(res && res.agents) ? res.agents : [];
    clear(tbody, list.filter((a) => a && typeof a === 'object').map((a) => {
      const id = str(a.agent_id);
      const act = (verb) => action(verb, async () => {
        await api.json('POST', '/agents/' + api.seg(id) + '/' + verb);
        line.ok(`${id}: ${verb}`);
        refresh();
      }, line, { class: 'small' });
      const cid = str(a.container_id);
      return h('tr', null,
        h('td', { class: 'mono', text: id }), h('td', { text: str(a.name) }), h('td', null, badge(a.status)),
        h('td', { class: 'mono' }, cid && validID(cid) ? h('a', { href: '#/sandbox/' + api.seg(cid), text: cid }) : cid),
        h('td', { text: a.created_at ? ago(a.created_at) + ' ago' : '' }),
        h('td', { text: a.last_activity ? ago(a.last_activity) + ' ago' : '' }),
        h('td', { class: 'actions' }, validID(id) ? ['start', 'stop', 'pause', 'resume'].map(act) : ''));
    }));
    if (!list.length) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 7, text: 'No agents.' })));
  };
  scope.every(5000, refresh);
  refresh();
  return panel;
}

function spawnPanel(onSpawn) {
  const line = statusLine();
  const image = h('input', { name: 'image', placeholder: 'image (default: the server\'s)' });
  const cmd = h('input', { name: 'command', placeholder: 'command, run with sh -c (default: the image\'s)' });
  const lbl = h('input', { name: 'labels', placeholder: 'labels: team=a, run=2' });
  const task = h('input', { name: 'task', placeholder: 'task (shown, never run)' });
  const ws = h('input', { type: 'checkbox', name: 'workspace' });
  const form = h('form', { class: 'grid-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const req = {};
    try {
      if (image.value.trim()) req.image = image.value.trim();
      if (cmd.value.trim()) req.command = ['sh', '-c', cmd.value];
      if (task.value.trim()) req.task = task.value.trim();
      const l = parseLabels(lbl.value.trim());
      if (l.length) req.labels = Object.fromEntries(l.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]));
      if (ws.checked) req.capabilities = { workspace: true };
      const info = await api.json('POST', '/containers/spawn', { body: req });
      line.ok('spawned ' + str(info && info.container_id));
      onSpawn();
    } catch (e) { line.err(e); }
  } }, image, cmd, lbl, task, h('label', null, ws, ' workspace'), h('button', { type: 'submit', text: 'Spawn' }));
  return section('Spawn', form, line);
}

// sandbox is the view of one sandbox.
export function sandbox(id, ctx) {
  const { scope, feed } = ctx;
  if (!validID(id)) return h('p', { class: 'error', text: 'Not a sandbox id: ' + id });
  const base = '/containers/' + api.seg(id);
  const line = statusLine();
  const head = h('div', { class: 'head' });
  const record = h('div');
  let info = null, headKey = '';
  const load = async () => {
    try {
      info = await api.get(base, null, { signal: scope.signal });
    } catch (e) {
      if (e.name !== 'AbortError') line.err(e);
      return;
    }
    if (scope.closed || !info || typeof info !== 'object') return;
    clear(record, recordView(info));
    const key = str(info.status);
    if (key !== headKey) {
      headKey = key;
      clear(head, h('h1', { class: 'mono', text: id }), badge(info.status), startKind(info),
        info.status === 'running' ? [extendControl(id, line, load), killButton(id, line, load)] : '',
        h('a', { href: '#/policy/' + api.seg(id), text: 'check a URL against its policy' }));
    }
  };
  feed.listen((rec) => { if (rec.container_id === id && rec.kind === 'lifecycle') load(); }, scope);
  scope.every(5000, load);
  load();

  return h('div', { class: 'sandbox' },
    h('p', null, h('a', { href: '#/sandboxes', text: '← all sandboxes' })),
    head, line,
    h('div', { class: 'cols' },
      section('Record', record),
      logsPanel(base, scope)),
    section('Audit', sandboxAudit(id, scope, feed)),
    h('div', { class: 'cols' },
      execPanel(base, scope),
      filesPanel(base, scope)));
}

// recordView shows a sandbox record: the fields people look for first, readable,
// then every field as the API sent it.
function recordView(info) {
  const times = (t) => (t ? time(t) + ' (' + (Date.parse(t) > Date.now() ? until(t) : ago(t) + ' ago') + ')' : '');
  const dl = h('dl', { class: 'kv' });
  const row = (k, v) => { if (v !== '' && v !== undefined && v !== null) dl.append(h('dt', { text: k }), h('dd', null, v)); };
  row('status', badge(info.status));
  row('image', h('span', { class: 'mono', text: str(info.image) }));
  row('policy', str(info.policy));
  row('labels', labels(info.labels));
  row('task', str(info.task_summary));
  row('created', times(info.created_at));
  row('deadline', info.status === 'running' ? times(info.deadline) : '');
  row('finished', times(info.finished_at));
  if (info.exit_code !== undefined) row('exit code', str(info.exit_code) + (info.oom_killed ? ' (out of memory)' : ''));
  row('record expires', times(info.expires_at));
  if (info.workspace && typeof info.workspace === 'object') {
    row('workspace', `${str(info.workspace.path)}: ${bytes(info.workspace.used_bytes || 0)} of ${bytes(info.workspace.quota_bytes)}`);
  }
  return h('div', null, dl, h('details', null, h('summary', { text: 'every field' }), kv(info)));
}

const maxLog = 1 << 20;

function logsPanel(base, scope) {
  const pre = h('pre', { class: 'logs', id: 'logs', tabindex: 0 });
  const state = h('span', { class: 'muted' });
  let ctl = null;
  let size = 0;
  const write = (text, cls) => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(h('span', { class: cls, text }));
    size += text.length;
    while (size > maxLog && pre.firstChild) { size -= pre.firstChild.textContent.length; pre.firstChild.remove(); }
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  const follow = async () => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const signal = ctl.signal;
    clear(pre);
    size = 0;
    state.textContent = 'following…';
    try {
      const resp = await api.request('GET', base + '/logs', { query: { follow: 'true' }, signal });
      await api.ndjson(resp, (f) => {
        if (f.stream === 'stdout' || f.stream === 'stderr') write(str(f.data), f.stream);
        else if (f.stream === 'status') state.textContent = 'ended: ' + str(f.status) + (f.exit_code !== undefined ? ' (exit ' + str(f.exit_code) + ')' : '');
        else if (f.stream === 'error') state.textContent = 'stream failed: ' + str(f.error);
      });
      if (state.textContent === 'following…') state.textContent = 'ended';
    } catch (e) {
      if (e.name !== 'AbortError') state.textContent = String(e);
    }
  };
  scope.onStop(() => ctl && ctl.abort());
  follow();
  return section('Logs', h('div', { class: 'bar' }, state, h('button', { type: 'button', class: 'small', text: 'Restart', onclick: follow })), pre);
}

function sandboxAudit(id, scope, feed) {
  const tbl = auditView.list(300);
  const line = statusLine();
  api.get('/audit', { container_id: id, limit: 200 }, { signal: scope.signal }).then((res) => {
    const recs = Array.isArray(res && res.records) ? res.records.filter((r) => r && typeof r === 'object') : [];
    tbl.set(recs);
  }, (e) => { if (e.name !== 'AbortError') line.err(e); });
  feed.listen((rec) => { if (rec.container_id === id) tbl.prepend(rec); }, scope);
  return h('div', null, line, h('div', { class: 'scroll short' }, tbl.el));
}

function b64text(b64) {
  try {
    const bin = atob(b64);
    const u = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: false }).decode(u);
  } catch { return ''; }
}

function execPanel(base, scope) {
  const cmd = h('input', { name: 'cmd', placeholder: 'a command, run with sh -c', class: 'wide', autocomplete: 'off' });
  const out = h('pre', { class: 'logs exec', id: 'exec-output' });
  const state = h('span', { class: 'muted' });
  let ctl = null;
  const stop = h('button', { type: 'button', class: 'small', text: 'Stop', disabled: true, onclick: () => ctl && ctl.abort() });
  scope.onStop(() => ctl && ctl.abort());
  const form = h('form', { class: 'exec-form', onsubmit: async (ev) => {
    ev.preventDefault();
    if (!cmd.value.trim() || ctl) return;
    ctl = new AbortController();
    stop.disabled = false;
    clear(out);
    add(out, h('span', { class: 'prompt', text: '$ ' + cmd.value + '\n' }));
    state.textContent = 'running…';
    try {
      const resp = await api.request('POST', base + '/exec', { body: { cmd: ['sh', '-c', cmd.value] }, signal: ctl.signal });
      await api.ndjson(resp, (f) => {
        if (f.stream) out.append(h('span', { class: f.stream === 'stderr' ? 'stderr' : 'stdout', text: f.data_base64 ? b64text(f.data_base64) : str(f.data) }));
        else if (f.error) state.textContent = 'failed: ' + str(f.error.code) + ': ' + str(f.error.error);
        else if ('exit_code' in f) state.textContent = `exit ${str(f.exit_code)} after ${str(f.duration_ms)} ms` + (f.timed_out ? ' (timed out: ' + str(f.ended_by) + ')' : '');
      });
    } catch (e) {
      state.textContent = e.name === 'AbortError' ? 'stopped' : String(e);
    } finally {
      ctl = null;
      stop.disabled = true;
    }
  } }, cmd, h('button', { type: 'submit', text: 'Run' }), stop);
  return section('Exec', form, state, out);
}

function filesPanel(base, scope) {
  const dir = h('input', { name: 'path', value: '/workspace', class: 'wide', 'aria-label': 'directory' });
  const tbody = h('tbody');
  const line = statusLine();
  const file = h('input', { type: 'file', name: 'upload', 'aria-label': 'file to upload' });
  const join = (d, name) => (d.endsWith('/') ? d : d + '/') + name;
  const okName = (n) => typeof n === 'string' && n !== '' && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0');
  const list = async (p) => {
    line.reset();
    let res;
    try {
      res = await api.get(base + '/files', { path: p, list: 'true' }, { signal: scope.signal });
    } catch (e) {
      if (e.name !== 'AbortError') line.err(e);
      clear(tbody);
      return;
    }
    dir.value = p;
    const entries = Array.isArray(res && res.entries) ? res.entries.filter((e) => e && typeof e === 'object') : [];
    entries.sort((a, b) => (b.is_dir === true) - (a.is_dir === true) || str(a.name).localeCompare(str(b.name)));
    clear(tbody, entries.map((e) => {
      const name = str(e.name);
      let open = name;
      if (!okName(e.name)) open = h('span', { class: 'error', text: name, title: 'not a valid file name' });
      else if (e.is_dir === true) open = h('a', { href: '#', text: name + '/', onclick: (ev) => { ev.preventDefault(); list(join(p, name)); } });
      else if (!e.is_special) open = h('a', { href: '#', text: name, title: 'download', onclick: (ev) => { ev.preventDefault(); download(join(p, name), name); } });
      return h('tr', null, h('td', { class: 'mono' }, open), h('td', { text: e.is_dir ? '' : bytes(e.size) }),
        h('td', { class: 'mono', text: Number.isInteger(e.mode) ? e.mode.toString(8).padStart(4, '0') : '' }),
        h('td', { text: e.mtime ? time(e.mtime) : '' }));
    }));
    if (!entries.length) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 4, text: 'Empty directory.' })));
  };
  const download = async (p, name) => {
    try {
      const resp = await api.request('GET', base + '/files', { query: { path: p }, signal: scope.signal });
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) { if (e.name !== 'AbortError') line.err(e); }
  };
  const up = action('Upload', async () => {
    const f = file.files && file.files[0];
    if (!f) throw new Error('choose a file first');
    if (!okName(f.name)) throw new Error('not a valid file name');
    const p = join(dir.value.trim() || '/workspace', f.name);
    const res = await api.json('PUT', base + '/files', { query: { path: p }, raw: f });
    line.ok(`wrote ${str(res && res.path)} (${bytes(res && res.size)})`);
    list(dir.value.trim());
  }, line);
  const upDir = () => {
    const p = dir.value.trim().replace(/\/+$/, '');
    list(p.slice(0, p.lastIndexOf('/')) || '/');
  };
  const form = h('form', { class: 'exec-form files-form', onsubmit: (ev) => { ev.preventDefault(); list(dir.value.trim() || '/'); } },
    dir, h('button', { type: 'submit', text: 'List' }), h('button', { type: 'button', text: 'Up', onclick: upDir }));
  list('/workspace');
  return section('Files', form, line,
    h('div', { class: 'scroll short' }, h('table', { class: 'files' }, h('thead', null, h('tr', null, ['Name', 'Size', 'Mode', 'Modified'].map((t) => h('th', { text: t })))), tbody)),
    h('div', { class: 'upload' }, file, up));
}

export { time };
