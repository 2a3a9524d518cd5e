// The API client of the page: every request goes to this page's own origin with
// the token from sessionStorage in the Authorization header (never in a URL, never
// a cookie: credentials "omit"), and every answer is treated as untrusted.

const KEY = 'clawbox.token';

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

// ApiError is an error answer: status, the stable code and the message.
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  toString() { return this.code + ': ' + this.message; }
}

let unauthorized = () => {};
// onUnauthorized sets what happens when the API refuses the token (401).
export function onUnauthorized(fn) { unauthorized = fn; }

// path builds a same-origin path with query parameters (arrays repeat the key;
// empty values are left out).
export function path(p, query) {
  const u = new URL(p, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  return u.pathname + u.search;
}

// seg encodes one path segment.
export const seg = (v) => encodeURIComponent(String(v));

// request sends one API request and returns the response, or throws ApiError.
export async function request(method, p, opts = {}) {
  const headers = { Authorization: 'Bearer ' + token.get() };
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  } else if (opts.raw !== undefined) {
    headers['Content-Type'] = 'application/octet-stream';
    body = opts.raw;
  }
  let resp;
  try {
    resp = await fetch(path(p, opts.query), {
      method, headers, body, signal: opts.signal,
      cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server does not answer (' + e.message + ')');
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && !opts.noLogout) unauthorized(err);
    throw err;
  }
  return resp;
}

async function errorOf(resp) {
  let code = 'http_' + resp.status, msg = resp.statusText || ('HTTP ' + resp.status), details;
  try {
    const e = await resp.json();
    if (e && typeof e.error === 'string') msg = e.error;
    if (e && typeof e.code === 'string') code = e.code;
    if (e && e.details !== undefined) details = e.details;
  } catch { /* not JSON */ }
  return new ApiError(resp.status, code, msg, details);
}

// json sends a request and returns its decoded JSON answer (null for 204).
export async function json(method, p, opts) {
  const resp = await request(method, p, opts);
  if (resp.status === 204) return null;
  const text = await resp.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { throw new ApiError(resp.status, 'bad_answer', 'the answer is not JSON'); }
}

export const get = (p, query, opts) => json('GET', p, { ...opts, query });

const maxLine = 8 << 20;

// lines reads a streamed answer line by line until it ends (or the signal aborts).
export async function lines(resp, onLine) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim() !== '') onLine(line);
      }
      if (buf.length > maxLine) throw new ApiError(0, 'bad_answer', 'a streamed line is too long');
    }
    if (buf.trim() !== '') onLine(buf);
  } finally {
    reader.cancel().catch(() => {});
  }
}

// ndjson reads a newline-delimited JSON stream, calling onValue for each object;
// lines that are not JSON objects are skipped.
export function ndjson(resp, onValue) {
  return lines(resp, (line) => {
    let v;
    try { v = JSON.parse(line); } catch { return; }
    if (v && typeof v === 'object' && !Array.isArray(v)) onValue(v);
  });
}

// sse reads a Server-Sent Events stream, calling onData with each event's data
// decoded as JSON (events that are not JSON objects are skipped).
export async function sse(resp, onData) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', data = [];
  const dispatch = () => {
    if (!data.length) return;
    const text = data.join('\n');
    data = [];
    let v;
    try { v = JSON.parse(text); } catch { return; }
    if (v && typeof v === 'object' && !Array.isArray(v)) onData(v);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.search(/\r?\n/)) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(buf[i] === '\r' ? i + 2 : i + 1);
        if (line === '') dispatch();
        else if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
        // comments (": keepalive") and other fields are ignored
      }
      if (buf.length > maxLine) throw new ApiError(0, 'bad_answer', 'a streamed event is too long');
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
