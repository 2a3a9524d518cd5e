// The dashboard: login, the navigation, the router and the live audit feed that
// every view listens to.
import { h, clear, Scope } from './dom.js';
import * as api from './api.js';
import { overview } from './overview.js';
import { sandboxes, sandbox } from './sandboxes.js';
import { audit } from './audit.js';
import { tools, credentials, policy } from './admin.js';

// Feed is the one audit stream of the page (GET /audit/stream, read with fetch so
// that it carries the Authorization header), shared by every view: a browser allows
// few connections per server, and one stream serves them all.
class Feed {
  constructor() {
    this.listeners = new Set();
    this.ctl = null;
    this.state = 'off';
    this.onState = () => {};
  }
  listen(fn, scope) {
    this.listeners.add(fn);
    scope.onStop(() => this.listeners.delete(fn));
  }
  setState(s) { this.state = s; this.onState(s); }
  start() {
    if (this.ctl) return;
    this.ctl = new AbortController();
    this.loop(this.ctl.signal);
  }
  stop() {
    if (this.ctl) this.ctl.abort();
    this.ctl = null;
    this.setState('off');
  }
  async loop(signal) {
    let backoff = 1000;
    while (!signal.aborted) {
      try {
        const resp = await api.request('GET', '/audit/stream', { signal });
        this.setState('live');
        backoff = 1000;
        await api.sse(resp, (rec) => {
          for (const fn of [...this.listeners]) {
            try { fn(rec); } catch (e) { console.error(e); }
          }
        });
      } catch (e) {
        if (signal.aborted) return;
        if (e.status === 401) return;
      }
      if (signal.aborted) return;
      this.setState('reconnecting');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }
}

export const feed = new Feed();

const views = [
  { id: 'overview', title: 'Overview', render: overview },
  { id: 'sandboxes', title: 'Sandboxes', render: sandboxes },
  { id: 'audit', title: 'Audit', render: audit },
  { id: 'tools', title: 'Tools', render: tools },
  { id: 'credentials', title: 'Credentials', render: credentials },
  { id: 'policy', title: 'Policy check', render: policy },
];

let current = null; // the Scope of the view on screen

function route() {
  if (!api.token.get()) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map((p) => {
    try { return decodeURIComponent(p); } catch { return ''; }
  });
  let name = parts[0] || 'overview';
  let render;
  const ctx = { feed, go, params: parts.slice(1) };
  if (name === 'sandbox' && parts[1]) {
    render = () => sandbox(parts[1], ctx);
    name = 'sandboxes';
  } else {
    const v = views.find((x) => x.id === name) || views[0];
    name = v.id;
    render = () => v.render(ctx);
  }
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === name);
  if (current) current.close();
  current = new Scope();
  ctx.scope = current;
  const main = document.getElementById('view');
  try {
    clear(main, render());
  } catch (e) {
    clear(main, h('p', { class: 'error', text: String(e) }));
  }
  main.focus({ preventScroll: true });
}

// go shows a view ("#/sandbox/<id>").
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function showLogin(message) {
  feed.stop();
  clearInterval(healthTimer);
  if (current) { current.close(); current = null; }
  document.getElementById('app').hidden = true;
  document.getElementById('login').hidden = false;
  const msg = document.getElementById('login-message');
  msg.textContent = message || '';
  document.getElementById('login-token').focus();
}

// health shows the server's version and state in the header (GET /health with the
// token: each component's state), checked every 15 s while signed in.
let healthTimer = null;
async function health() {
  const el = document.getElementById('health');
  try {
    const res = await api.get('/health');
    const bad = Object.entries((res && res.components) || {}).filter(([, c]) => c && c.status !== 'ok');
    el.textContent = (res && res.version ? res.version + ' · ' : '') + (bad.length ? 'degraded' : 'ok');
    el.className = 'health ' + (bad.length ? 'degraded' : 'ok');
    el.title = bad.length ? bad.map(([k, c]) => k + ': ' + c.status + (c.detail ? ' (' + (typeof c.detail === 'string' ? c.detail : JSON.stringify(c.detail)) + ')' : '')).join('\n') : 'every component is ok';
  } catch (e) {
    el.textContent = e.status === 0 ? 'unreachable' : 'error';
    el.className = 'health degraded';
    el.title = String(e);
  }
}

function showApp() {
  document.getElementById('login').hidden = true;
  document.getElementById('app').hidden = false;
  feed.start();
  health();
  clearInterval(healthTimer);
  healthTimer = setInterval(health, 15000);
  route();
}

function setup() {
  const nav = document.getElementById('nav');
  clear(nav, views.map((v) => h('a', { href: '#/' + v.id, 'data-view': v.id, text: v.title })));
  const live = document.getElementById('live');
  feed.onState = (s) => {
    live.textContent = s === 'live' ? 'live' : s;
    live.className = 'live ' + s;
  };
  document.getElementById('logout').addEventListener('click', () => {
    api.token.clear();
    showLogin('Signed out.');
  });
  api.onUnauthorized(() => {
    api.token.clear();
    showLogin('The server refused the token: sign in again.');
  });
  const form = document.getElementById('login-form');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = document.getElementById('login-token');
    const tok = input.value.trim();
    const msg = document.getElementById('login-message');
    if (!tok) { msg.textContent = 'Enter the API token.'; return; }
    api.token.set(tok);
    msg.textContent = 'Checking…';
    try {
      // Any route that needs the token: 401 means a wrong one.
      await api.get('/audit', { limit: 1 }, { noLogout: true });
    } catch (e) {
      if (e.status === 401) {
        api.token.clear();
        msg.textContent = 'Wrong token: the server refused it.';
        return;
      }
      if (e.status === 0) {
        api.token.clear();
        msg.textContent = e.message;
        return;
      }
      // Another error (audit unavailable…) still proves the token.
    }
    input.value = '';
    showApp();
  });
  window.addEventListener('hashchange', route);
  if (api.token.get()) showApp();
  else showLogin('');
}

setup();
