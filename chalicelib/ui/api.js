// The REST API as the UI uses it: base paths from the page, the bearer token, errors as ApiError.

const meta = (name, fallback) => document.querySelector(`meta[name="${name}"]`)?.content || fallback;

export const UI_BASE = meta('stepflow-ui', '/ui');
export const API_BASE = meta('stepflow-api', '/workflows');

const TOKEN_KEY = 'stepflow.token';
const USER_KEY = 'stepflow.user';
const GROUPS_KEY = 'stepflow.groups';

export class ApiError extends Error {
  constructor(status, detail, message) {
    super(message);
    this.status = status;
    this.detail = detail;
  }

  // Field issues of a 400/422 answer ({"detail": {"message", "issues": [{location, message}]}}).
  get issues() {
    return (this.detail && typeof this.detail === 'object' && Array.isArray(this.detail.issues))
      ? this.detail.issues : [];
  }
}

export function errorText(status, body) {
  const detail = body && typeof body === 'object' ? body.detail : undefined;
  if (typeof detail === 'string') return detail;
  if (detail && typeof detail.message === 'string') return detail.message;
  if (status === 404 || status === 403) {
    if (body && body.message) return `This action is not available on this server (HTTP ${status}: ${body.message}).`;
  }
  if (body && typeof body.message === 'string') return body.message;
  return `The API answered HTTP ${status}.`;
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export const identity = {
  get user() { return localStorage.getItem(USER_KEY) || ''; },
  get groups() {
    return (localStorage.getItem(GROUPS_KEY) || '').split(',').map((g) => g.trim()).filter(Boolean);
  },
  save(user, groups) {
    localStorage.setItem(USER_KEY, user.trim());
    localStorage.setItem(GROUPS_KEY, groups.split(',').map((g) => g.trim()).filter(Boolean).join(', '));
  },
};

// Called with (message) when the API answers 401, so the page can ask for a token.
let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

export async function request(method, path, body, extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(API_BASE + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, null, `The API could not be reached (${error.message}).`);
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  if (!response.ok) {
    const message = errorText(response.status, parsed);
    if (response.status === 401) onUnauthorized(message);
    throw new ApiError(response.status, parsed && parsed.detail !== undefined ? parsed.detail : parsed, message);
  }
  return parsed;
}

// Follows an instance's event log (GET <path>?follow=true, NDJSON) with fetch, which carries the bearer
// token (an EventSource cannot): hands each event to onEvent as its line arrives, reads on from the last
// one's seq whenever an answer ends early (API Gateway ends each by 29 s; a connection may drop), and
// resolves once an answer says the log has ended. `signal` aborts it (the view was left).
export async function followEvents(path, onEvent, signal) {
  let cursor = null;
  let failures = 0;
  while (!signal.aborted) {
    const headers = { Accept: 'application/x-ndjson' };
    const bearer = token.get();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let ended = false;
    try {
      const response = await fetch(`${API_BASE}${path}?follow=true${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`,
        { headers, signal });
      if (!response.ok) throw new ApiError(response.status, null, errorText(response.status, null));
      ended = response.headers.get('Stepflow-Ended') === 'true';
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end = buffer.indexOf('\n');
        while (end >= 0) {
          const line = buffer.slice(0, end).trim();
          buffer = buffer.slice(end + 1);
          if (line) {  // an empty line is a heartbeat
            const event = JSON.parse(line);
            cursor = event.seq;
            onEvent(event);
          }
          end = buffer.indexOf('\n');
        }
      }
      failures = 0;
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError || (failures += 1) > 5) throw error;
    }
    if (ended) return;
    await new Promise((resolve) => { setTimeout(resolve, failures ? 1000 * failures : 250); });
  }
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body = {}) => request('POST', path, body),
  put: (path, body = {}, headers = {}) => request('PUT', path, body, headers),
  delete: (path, headers = {}) => request('DELETE', path, undefined, headers),
};

export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
