// The tools, credentials and policy-check views.
import { h, clear, str, time } from './dom.js';
import * as api from './api.js';
import { badge, statusLine, action, confirmAction, section, pretty, kv } from './widgets.js';

export function tools(ctx) {
  const { scope } = ctx;
  const line = statusLine();
  const listEl = h('div', { class: 'tools' }, h('p', { class: 'muted', text: 'Loading…' }));
  // The list is polled (a server loads its tools in the background, and reloads
  // them when the tool directory changes); the cards are rebuilt only when the
  // loaded tools change, so that params being typed are kept.
  let shown = null;
  const load = async () => {
    let res;
    try { res = await api.get('/tools', null, { signal: scope.signal }); } catch (e) { if (e.name !== 'AbortError') line.err(e); return; }
    const list = Array.isArray(res) ? res.filter((t) => t && typeof t === 'object' && t.tool && typeof t.tool === 'object') : [];
    const key = JSON.stringify(list.map((t) => [t.tool.name, t.sha256, t.loaded_at, t.source]));
    if (key === shown) return;
    shown = key;
    clear(listEl, list.length ? list.map(toolCard) : h('p', { class: 'muted', text: 'No tools are loaded (yet: a server compiles its tools in the background). Put <name>.wasm in the tool directory, or build one with clawbox new-tool and clawbox build.' }));
  };
  scope.every(4000, load);
  const reload = action('Reload tools', async () => {
    const res = await api.json('POST', '/tools/reload');
    const failed = Array.isArray(res && res.failed) ? res.failed : [];
    line.ok(`reloaded ${str(res && res.reloaded)} modules` + (failed.length ? `, ${failed.length} failed: ` + failed.map((f) => str(f.name) + ' (' + str(f.error) + ')').join('; ') : ''));
    load();
  }, line, { id: 'reload-tools' });
  load();
  return h('div', null, h('h1', { text: 'Tools' }), h('div', { class: 'bar' }, reload), line, listEl);
}

function toolCard(t) {
  const name = str(t.tool.name);
  const params = h('textarea', { name: 'params', rows: 5, class: 'code', spellcheck: 'false', 'aria-label': 'params for ' + name, value: '{}' });
  const out = h('pre', { class: 'result' });
  const line = statusLine();
  const run = action('Run', async () => {
    let p;
    try { p = JSON.parse(params.value || 'null'); } catch (e) { throw new Error('params are not JSON: ' + e.message); }
    line.reset();
    clear(out);
    try {
      const res = await api.json('POST', '/execute', { body: { tool: name, params: p } });
      line.ok(`${str(res && res.status)} in ${str(res && res.metadata && res.metadata.execution_time_ms)} ms`);
      out.textContent = pretty(res);
    } catch (e) {
      line.err(e);
      if (e.details !== undefined) out.textContent = pretty(e.details);
    }
  }, line);
  const allow = t.network && Array.isArray(t.network.allowlist) ? t.network.allowlist.map(str) : [];
  const creds = t.credentials && Array.isArray(t.credentials.available) ? t.credentials.available.map(str) : [];
  return h('article', { class: 'panel tool' },
    h('h2', null, h('span', { class: 'mono', text: name }), ' ', h('span', { class: 'muted', text: 'v' + str(t.tool.version) }),
      t.reactor ? h('span', { class: 'label', text: 'reactor' }) : ''),
    h('p', { text: str(t.tool.description) }),
    h('dl', { class: 'kv' },
      h('dt', { text: 'allowlist' }), h('dd', null, allow.length ? h('ul', { class: 'rules' }, allow.map((r) => h('li', { class: 'mono', text: r }))) : h('span', { class: 'muted', text: 'no network' })),
      h('dt', { text: 'credentials' }), h('dd', { text: creds.length ? creds.join(', ') : 'none' }),
      h('dt', { text: 'source' }), h('dd', { text: str(t.source) }),
      h('dt', { text: 'sha256' }), h('dd', { class: 'mono', text: str(t.sha256) }),
      h('dt', { text: 'loaded' }), h('dd', { text: t.loaded_at ? time(t.loaded_at) : '' })),
    t.input_schema ? h('details', null, h('summary', { text: 'input schema' }), h('pre', { text: pretty(t.input_schema) })) : '',
    t.output_schema ? h('details', null, h('summary', { text: 'output schema' }), h('pre', { text: pretty(t.output_schema) })) : '',
    t.resources ? h('details', null, h('summary', { text: 'resources' }), h('pre', { text: pretty(t.resources) })) : '',
    h('div', { class: 'run' }, params, h('div', null, run), line, out));
}

export function credentials(ctx) {
  const { scope } = ctx;
  const line = statusLine();
  const tbody = h('tbody');
  const load = async () => {
    let res;
    try { res = await api.get('/credentials', null, { signal: scope.signal }); } catch (e) { if (e.name !== 'AbortError') line.err(e); return; }
    const list = Array.isArray(res && res.credentials) ? res.credentials.filter((c) => c && typeof c === 'object') : [];
    clear(tbody, list.map((c) => {
      const name = str(c.name);
      return h('tr', null,
        h('td', { class: 'mono', text: name }), h('td', { class: 'mono', text: str(c.host) + (c.port ? ':' + str(c.port) : '') }),
        h('td', { class: 'mono', text: str(c.path_prefix) }), h('td', { text: Array.isArray(c.methods) ? c.methods.map(str).join(', ') : '' }),
        h('td', { class: 'mono', text: str(c.header) + ': ' + str(c.prefix) + '…' }),
        h('td', { text: c.placeholder ? 'placeholder' : 'header' }), h('td', { text: c.allow_http ? 'yes' : 'no' }),
        h('td', { text: c.updated_at ? time(c.updated_at) : '' }),
        h('td', null, confirmAction('Remove', async () => {
          await api.json('DELETE', '/credentials/' + api.seg(name));
          line.ok('removed ' + name);
          load();
        }, line, { class: 'small danger' })));
    }));
    if (!list.length) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 9, text: 'No credentials.' })));
  };
  const f = {
    name: h('input', { name: 'name', placeholder: 'name (GITHUB_TOKEN)', required: true }),
    value: h('input', { name: 'value', type: 'password', placeholder: 'value (write-only)', autocomplete: 'new-password', required: true }),
    host: h('input', { name: 'host', placeholder: 'host (api.github.com or *.github.com)', required: true }),
    header: h('input', { name: 'header', placeholder: 'header (Authorization)' }),
    prefix: h('input', { name: 'prefix', placeholder: 'prefix (Bearer )' }),
    path_prefix: h('input', { name: 'path_prefix', placeholder: 'path prefix (optional)' }),
    port: h('input', { name: 'port', type: 'number', min: 1, max: 65535, placeholder: 'port (default: the scheme\'s)' }),
    methods: h('input', { name: 'methods', placeholder: 'methods (GET, POST; default any)' }),
    placeholder: h('input', { name: 'placeholder', type: 'checkbox' }),
    allow_http: h('input', { name: 'allow_http', type: 'checkbox' }),
  };
  const form = h('form', { class: 'grid-form', autocomplete: 'off', onsubmit: async (ev) => {
    ev.preventDefault();
    const name = f.name.value.trim();
    const body = { value: f.value.value, host: f.host.value.trim() };
    if (f.header.value.trim()) body.header = f.header.value.trim();
    if (f.prefix.value !== '') body.prefix = f.prefix.value;
    if (f.path_prefix.value.trim()) body.path_prefix = f.path_prefix.value.trim();
    if (f.port.value !== '') body.port = Number(f.port.value);
    const methods = f.methods.value.split(/[,\s]+/).filter(Boolean).map((m) => m.toUpperCase());
    if (methods.length) body.methods = methods;
    if (f.placeholder.checked) body.placeholder = true;
    if (f.allow_http.checked) body.allow_http = true;
    try {
      await api.json('PUT', '/credentials/' + api.seg(name), { body });
      f.value.value = '';
      line.ok('saved ' + name);
      load();
    } catch (e) { line.err(e); }
  } }, f.name, f.value, f.host, f.header, f.prefix, f.path_prefix, f.port, f.methods,
  h('label', null, f.placeholder, ' placeholder mode'), h('label', null, f.allow_http, ' allow plain http'),
  h('button', { type: 'submit', text: 'Add or replace' }));
  load();
  return h('div', null,
    h('h1', { text: 'Credentials' }),
    h('p', { class: 'muted', text: 'Names and bindings only: a value is write-only and no API returns it.' }),
    section('Stored', line, h('div', { class: 'scroll' }, h('table', null,
      h('thead', null, h('tr', null, ['Name', 'Host', 'Path', 'Methods', 'Header', 'Mode', 'Plain HTTP', 'Updated', ''].map((t) => h('th', { text: t })))), tbody))),
    section('Add', form));
}

export function policy(ctx) {
  const url = h('input', { name: 'url', placeholder: 'https://api.github.com/repos', class: 'wide', required: true });
  const sb = h('input', { name: 'container_id', placeholder: 'sandbox id (empty: the server policy)' });
  const tool = h('input', { name: 'tool', placeholder: 'or a tool' });
  const method = h('select', { name: 'method' }, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'].map((m) => h('option', { value: m, text: m })));
  const door = h('select', { name: 'door' }, ['proxy', 'forward', 'connect'].map((m) => h('option', { value: m, text: m })));
  if (ctx.params[0]) sb.value = ctx.params[0];
  const line = statusLine();
  const out = h('div', { class: 'verdict' });
  const form = h('form', { class: 'grid-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const req = { url: url.value.trim(), method: method.value, door: door.value };
    if (sb.value.trim()) req.container_id = sb.value.trim();
    if (tool.value.trim()) req.tool = tool.value.trim();
    line.reset();
    clear(out);
    try {
      const res = await api.json('POST', '/policy/check', { body: req });
      clear(out,
        h('p', { class: res.allowed ? 'allowed big' : 'refused big', text: res.allowed ? 'Allowed' : 'Refused' }),
        h('p', null, 'Decided by ', res.rule ? h('code', { text: str(res.rule) }) : h('span', { class: 'muted', text: 'no rule (nothing matched)' })),
        h('p', { text: str(res.reason) }),
        kv({ policy: res.policy, door: res.door, tunnel: res.tunnel }),
        h('h3', { text: 'Effective rules' }),
        h('ul', { class: 'rules' }, (Array.isArray(res.rules) ? res.rules : []).map((r) => h('li', { class: ['mono', str(r) === str(res.rule) && 'match'], text: str(r) }))));
    } catch (e) { line.err(e); }
  } }, url, sb, tool, method, door, h('button', { type: 'submit', text: 'Check' }));
  return h('div', null,
    h('h1', { text: 'Policy check' }),
    h('p', { class: 'muted', text: 'What the egress gateway would decide for a request, and which rule decides. Nothing is sent.' }),
    section('Request', form, line), section('Verdict', out));
}

export { badge };
