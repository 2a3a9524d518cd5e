// The overview: counts and small charts from the server's own /metrics.
import { h, clear, str, secs } from './dom.js';
import * as api from './api.js';
import * as m from './metrics.js';
import { section, statusLine, badge } from './widgets.js';

// The page samples /metrics while it is open and keeps the last hour of samples of
// the gateway counter, so that decisions per minute can be drawn. history is
// shared by every visit to the overview.
const history = []; // [{t, byDecision: Map}]
const decisions = ['allowed', 'blocked', 'leak', 'rate_limited', 'error'];

// seed is the egress decisions of the last 15 minutes from the audit trail, read
// once, for the time before the first sample: the chart is full the first time
// the overview opens, not only after it has sampled for a while. Records at or
// after the first sample are counted from /metrics instead, never twice.
let seed = null; // {records: [{t, d}], truncated}
const seedLimit = 1000; // GET /audit's maximum

async function loadSeed(signal) {
  const res = await api.get('/audit', { kind: 'request', since: '15m', limit: seedLimit }, { signal });
  const recs = Array.isArray(res && res.records) ? res.records : [];
  return {
    records: recs.filter((r) => r && typeof r === 'object')
      .map((r) => ({ t: Date.parse(str(r.time)), d: str(r.decision) }))
      .filter((r) => Number.isFinite(r.t) && decisions.includes(r.d)),
    truncated: recs.length >= seedLimit,
  };
}

async function sample(signal) {
  const resp = await api.request('GET', '/metrics', { signal });
  const samples = m.parse(await resp.text());
  history.push({ t: Date.now(), byDecision: m.byLabel(samples, 'clawbox_gateway_requests_total', 'decision') });
  while (history.length && history[0].t < Date.now() - 3600e3) history.shift();
  return samples;
}

// perMinute turns the cumulative samples into decisions in each of the last n
// minutes (a counter reset, e.g. a server restart, counts from zero).
function perMinute(n) {
  const now = Date.now();
  const cols = [];
  for (let i = n - 1; i >= 0; i--) {
    const end = now - i * 60e3, start = end - 60e3;
    const parts = {};
    let prev = null;
    for (const s of history) {
      if (s.t > end) break;
      if (prev && s.t > start) {
        for (const d of decisions) {
          const a = prev.byDecision.get(d) || 0, b = s.byDecision.get(d) || 0;
          const delta = b >= a ? b - a : b;
          if (delta) parts[d] = (parts[d] || 0) + delta;
        }
      }
      prev = s;
    }
    const sampledFrom = history.length ? history[0].t : Infinity;
    for (const r of (seed ? seed.records : [])) {
      if (r.t >= start && r.t < end && r.t < sampledFrom) parts[r.d] = (parts[r.d] || 0) + 1;
    }
    cols.push({ label: i === 0 ? 'now' : '-' + i + 'm', parts });
  }
  return cols;
}

function card(title, value, sub) {
  return h('div', { class: 'card' }, h('div', { class: 'card-title', text: title }), h('div', { class: 'card-value', text: value }), sub ? h('div', { class: 'muted', text: sub }) : '');
}

export function overview(ctx) {
  const { scope } = ctx;
  const line = statusLine();
  const cards = h('div', { class: 'cards' });
  const spawn = h('div');
  const egress = h('div');
  const pool = h('div');
  const statuses = h('div');
  const render = (samples) => {
    const byStatus = m.byLabel(samples, 'clawbox_sandboxes', 'status');
    const running = byStatus.get('running') || 0;
    const gw = m.byLabel(samples, 'clawbox_gateway_requests_total', 'decision');
    let total = 0, refused = 0;
    for (const [d, v] of gw) { total += v; if (d !== 'allowed') refused += v; }
    const hist = m.histogram(samples, 'clawbox_container_spawn_seconds');
    const p50 = m.quantile(hist, 0.5), p90 = m.quantile(hist, 0.9);
    const tools = m.sum(samples, 'clawbox_tools_loaded');
    const execs = m.sum(samples, 'clawbox_wasm_executions_total');
    const drops = m.sum(samples, 'clawbox_audit_dropped_total');
    clear(cards,
      card('Running sandboxes', str(running), `${str(m.sum(samples, 'clawbox_containers_total', { status: 'spawned' }) ?? 0)} spawned since start`),
      card('Egress requests', str(total), `${refused} refused`),
      card('Spawn p50', secs(p50), p90 === null ? 'no spawns yet' : 'p90 ' + secs(p90) + ', ' + str(hist.count) + ' spawns'),
      card('Tools loaded', tools === null ? '—' : str(tools), execs === null ? '' : `${execs} executions`),
      card('Audit drops', drops === null ? '—' : str(drops), drops ? 'records lost to a full queue' : 'none lost'));
    const kept = [...byStatus].filter(([, v]) => v);
    clear(statuses, kept.length
      ? [m.bars(kept.map(([k, v]) => ({ label: str(k), value: v }))), h('div', { class: 'chips' }, kept.map(([k, v]) => h('span', { class: 'chip' }, badge(k), ' ' + str(v))))]
      : h('p', { class: 'muted', text: 'No sandbox records.' }));
    if (hist && hist.count) {
      let prev = 0;
      const items = hist.buckets.map((b) => {
        const v = b.count - prev;
        prev = b.count;
        return { label: b.le === Infinity ? '>' : (b.le < 1 ? Math.round(b.le * 1000) + 'ms' : b.le + 's'), value: v };
      });
      clear(spawn, m.bars(items, { unit: ' spawns' }), h('p', { class: 'muted', text: 'Spawns by latency bucket (time from request to a running container).' }));
    } else clear(spawn, h('p', { class: 'muted', text: 'No spawns yet.' }));
    const cols = perMinute(15);
    const note = seed
      ? 'Egress decisions per minute: from the audit trail until this page opened, then sampled from /metrics.' +
        (seed.truncated ? ` The earliest minutes show only the latest ${seedLimit} requests.` : '')
      : 'Egress decisions per minute, sampled from /metrics while this page is open (the audit trail could not be read).';
    clear(egress, m.stacked(cols, decisions), h('p', { class: 'muted', text: note }));
    const claims = samples.filter((x) => x.name === 'clawbox_pool_claims_total');
    if (claims.length) {
      const pools = new Map();
      for (const c of claims) {
        const p = pools.get(c.labels.pool) || { hit: 0, miss: 0 };
        p[c.labels.result === 'hit' ? 'hit' : 'miss'] += c.value;
        pools.set(c.labels.pool, p);
      }
      const ready = m.byLabel(samples, 'clawbox_pool_ready', 'pool');
      clear(pool, m.stacked([...pools].map(([k, v]) => ({ label: str(k), parts: { allowed: v.hit, blocked: v.miss } })), ['allowed', 'blocked']),
        h('ul', null, [...pools].map(([k, v]) => h('li', { text: `${str(k)}: ${v.hit} hits, ${v.miss} misses, ${str(ready.get(k) ?? 0)} ready` }))),
        h('p', { class: 'muted', text: 'Warm-pool claims: hits (green) and misses (red).' }));
    } else clear(pool, h('p', { class: 'muted', text: 'No warm pool metrics: no [[containers.warm_pool]] is configured.' }));
  };
  const tick = async () => {
    try {
      if (!seed) {
        try {
          seed = await loadSeed(scope.signal);
        } catch (e) {
          if (e.name === 'AbortError') throw e;
          line.err(e); // the chart still fills from /metrics
        }
      }
      render(await sample(scope.signal));
      line.reset();
    } catch (e) { if (e.name !== 'AbortError') line.err(e); }
  };
  scope.every(5000, tick);
  tick();
  return h('div', null,
    h('h1', { text: 'Overview' }), line, cards,
    h('div', { class: 'cols' }, section('Sandboxes by status', statuses), section('Spawn latency', spawn)),
    h('div', { class: 'cols' }, section('Egress decisions per minute', egress), section('Warm pool', pool)));
}
