// The one way the console talks to enroute: the public /v1 API with the bearer token
// (kept in sessionStorage: this tab only, gone when it closes), and /metrics. Every
// failure becomes an ApiError (the problem+json the API answered) or a ConnectionError
// (no answer at all), and the banner says when the server cannot be reached.

const TOKEN_KEY = 'enroute.token';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

/** An answer other than 2xx: status, the problem's title and detail, its field errors. */
export class ApiError extends Error {
  constructor(status, statusText, problem) {
    const detail = problem.detail || problem.title || statusText || 'error';
    super(`${status} ${problem.title || statusText}: ${detail}`);
    this.status = status;
    this.title = problem.title || statusText;
    this.detail = detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.total = problem.total_errors;
  }
}

/** No answer: the server is down, restarting, or the network is. */
export class ConnectionError extends Error {
  constructor(cause) {
    super(`Cannot reach enroute at ${location.host}: ${cause}`);
  }
}

const listeners = { connection: [], unauthorized: [] };

/** Calls `fn(ok, error)` whenever a call reaches the server or fails to. */
export function onConnection(fn) { listeners.connection.push(fn); }
/** Calls `fn(error)` when the API refuses the token of a signed-in session. */
export function onUnauthorized(fn) { listeners.unauthorized.push(fn); }

function connection(ok, error) {
  for (const fn of listeners.connection) fn(ok, error);
}

/**
 * A 502, 503 or 504 that is not enroute's own problem+json: a proxy in front of it
 * saying that enroute does not answer, which is a lost connection, not an API error.
 */
/**
 * How long an API call may go unanswered before it counts as a lost connection: longer
 * than any trace (upstream timeouts included) or page takes; an upload has no limit.
 */
const ANSWER_WITHIN_MS = 30000;
const ALIVE_WITHIN_MS = 5000;
/**
 * Same-origin credentials: a TLS proxy in front with its own sign-in (a cookie) keeps
 * working; the API itself reads only the bearer token, so cookies add no CSRF risk.
 */
const FETCH = { cache: 'no-store', credentials: 'same-origin' };

function fromGateway(status, contentType) {
  return [502, 503, 504].includes(status) && !(contentType || '').includes('problem+json');
}

/**
 * fetch, with the connection's state told to the listeners: the answer when enroute
 * gave one, else a ConnectionError (no answer, or a proxy's 5xx).
 */
async function reach(path, init) {
  let res;
  try {
    res = await fetch(path, { ...init, ...FETCH, signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
  } catch (e) {
    const err = new ConnectionError(e.name === 'TimeoutError'
      ? `no answer within ${ANSWER_WITHIN_MS / 1000} s` : (e.message || e));
    connection(false, err);
    throw err;
  }
  if (fromGateway(res.status, res.headers.get('content-type'))) {
    const err = new ConnectionError(`${res.status} ${res.statusText} from a proxy in front of it`);
    connection(false, err);
    throw err;
  }
  connection(true);
  return res;
}

async function problemOf(res) {
  const type = res.headers.get('content-type') || '';
  if (type.includes('json')) {
    try { return await res.json(); } catch { /* not JSON after all */ }
  }
  return {};
}

/**
 * One API call. `token` overrides the session's (sign-in tries one before keeping it).
 * Resolves to the JSON answer (null for 204, text for other types).
 */
export async function api(method, path, { body, type, token } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const bearer = token ?? session.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = type || 'application/json';
  const res = await reach(path, {
    method,
    headers,
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  if (!res.ok) {
    const err = new ApiError(res.status, res.statusText, await problemOf(res));
    if (res.status === 401 && token === undefined && session.token) {
      for (const fn of listeners.unauthorized) fn(err);
    }
    throw err;
  }
  if (res.status === 204) return null;
  const ct = res.headers.get('content-type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

/** `/metrics` as text (no token needed); null when metrics are off (404). */
export async function metricsText() {
  const res = await reach('/metrics', {});
  if (res.status === 404) return null;
  if (!res.ok) throw new ApiError(res.status, res.statusText, await problemOf(res));
  return res.text();
}

/** Whether the server answers at all (the banner's check while it is away). */
export async function alive() {
  try {
    const res = await fetch('/healthz', { ...FETCH, signal: AbortSignal.timeout(ALIVE_WITHIN_MS) });
    if (res.ok) connection(true);
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Uploads `file` with progress: XMLHttpRequest, because fetch reports no upload
 * progress. `progress(sent, total)` is called as bytes leave; resolves to the JSON answer.
 */
export function upload(path, file, type, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Authorization', `Bearer ${session.token}`);
    xhr.setRequestHeader('Content-Type', type);
    xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
    xhr.upload.addEventListener('progress', (e) => progress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.upload.addEventListener('load', () => progress(file.size, file.size, true));
    let uploaded = false;
    xhr.upload.addEventListener('load', () => { uploaded = true; });
    xhr.addEventListener('load', () => {
      if (fromGateway(xhr.status, xhr.getResponseHeader('content-type'))) {
        const err = new ConnectionError(`${xhr.status} ${xhr.statusText} from a proxy in front of it`);
        err.uploaded = uploaded;
        connection(false, err);
        reject(err);
        return;
      }
      connection(true);
      let body = {};
      try { body = JSON.parse(xhr.responseText || '{}'); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
      } else {
        const err = new ApiError(xhr.status, xhr.statusText, body);
        if (xhr.status === 401) for (const fn of listeners.unauthorized) fn(err);
        reject(err);
      }
    });
    const failed = () => {
      const err = new ConnectionError(uploaded ? 'no answer after the upload' : 'the upload was cut off');
      err.uploaded = uploaded;
      connection(false, err);
      reject(err);
    };
    xhr.addEventListener('error', failed);
    xhr.addEventListener('abort', failed);
    xhr.send(file);
  });
}

/** A number or prefix in a path: `+` written %2B so that it is not read as a space. */
export function e164Path(number) {
  return encodeURIComponent(number);
}
