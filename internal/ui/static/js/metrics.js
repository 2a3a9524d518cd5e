// Reading the server's own /metrics (Prometheus text format) and drawing the small
// SVG charts of the overview.
import { s, h } from './dom.js';

// parse returns the samples of a Prometheus text exposition: [{name, labels, value}].
export function parse(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    const value = Number(m[4]);
    if (!Number.isNaN(value) || m[4] === 'NaN') out.push({ name: m[1], labels, value });
  }
  return out;
}

// sum adds the samples named name whose labels include match.
export function sum(samples, name, match = {}) {
  let t = 0, found = false;
  for (const x of samples) {
    if (x.name !== name) continue;
    if (Object.entries(match).some(([k, v]) => x.labels[k] !== v)) continue;
    t += x.value;
    found = true;
  }
  return found ? t : null;
}

// byLabel sums the samples named name grouped by the value of label.
export function byLabel(samples, name, label) {
  const m = new Map();
  for (const x of samples) {
    if (x.name !== name) continue;
    const k = x.labels[label] ?? '';
    m.set(k, (m.get(k) || 0) + x.value);
  }
  return m;
}

// histogram returns the cumulative buckets [{le, count}] of a histogram, its
// count and its sum, or null if it has no samples.
export function histogram(samples, name) {
  const buckets = [];
  for (const x of samples) {
    if (x.name === name + '_bucket' && x.labels.le !== undefined) {
      buckets.push({ le: x.labels.le === '+Inf' ? Infinity : Number(x.labels.le), count: x.value });
    }
  }
  if (!buckets.length) return null;
  buckets.sort((a, b) => a.le - b.le);
  return { buckets, count: sum(samples, name + '_count') || 0, sum: sum(samples, name + '_sum') || 0 };
}

// quantile estimates the q quantile of a histogram as Prometheus does (linear
// inside the bucket).
export function quantile(hist, q) {
  if (!hist || !hist.count) return null;
  const rank = q * hist.count;
  let prevLe = 0, prevCount = 0;
  for (const b of hist.buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket ? prevLe + (b.le - prevLe) * ((rank - prevCount) / inBucket) : b.le;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

// bars draws a bar chart of [{label, value}] (one series).
export function bars(items, { width = 420, height = 140, unit = '' } = {}) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const pad = 22, bw = items.length ? Math.min(56, (width - 8) / items.length) : 0;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img' });
  items.forEach((it, i) => {
    const bh = ((height - pad - 14) * it.value) / max;
    const x = 4 + i * bw;
    svg.append(
      s('rect', { class: 'bar', x: x + 2, y: height - pad - bh, width: Math.max(1, bw - 4), height: bh },
        s('title', { text: `${it.label}: ${it.value}${unit}` })),
      s('text', { class: 'axis', x: x + bw / 2, y: height - 6, 'text-anchor': 'middle', text: it.label }),
    );
    if (it.value) svg.append(s('text', { class: 'val', x: x + bw / 2, y: height - pad - bh - 3, 'text-anchor': 'middle', text: String(it.value) }));
  });
  return svg;
}

// stacked draws stacked bars: columns [{label, parts: {series: value}}], with a
// legend of series (each series has the class "s-<series>").
export function stacked(columns, series, { width = 420, height = 150 } = {}) {
  const totals = columns.map((c) => series.reduce((t, k) => t + (c.parts[k] || 0), 0));
  const max = Math.max(1, ...totals);
  const pad = 22, bw = columns.length ? Math.min(56, (width - 8) / columns.length) : 0;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img' });
  columns.forEach((c, i) => {
    let y = height - pad;
    const x = 4 + i * bw;
    for (const k of series) {
      const v = c.parts[k] || 0;
      if (!v) continue;
      const bh = ((height - pad - 14) * v) / max;
      y -= bh;
      svg.append(s('rect', { class: 'bar s-' + k, x: x + 2, y, width: Math.max(1, bw - 4), height: bh },
        s('title', { text: `${c.label} ${k}: ${v}` })));
    }
    if (totals[i]) svg.append(s('text', { class: 'val', x: x + bw / 2, y: y - 3, 'text-anchor': 'middle', text: String(totals[i]) }));
    svg.append(s('text', { class: 'axis', x: x + bw / 2, y: height - 6, 'text-anchor': 'middle', text: c.label }));
  });
  const legend = h('div', { class: 'legend' }, series.map((k) => h('span', { class: 'key' }, h('i', { class: 'swatch s-' + k }), k)));
  return h('div', null, svg, legend);
}
