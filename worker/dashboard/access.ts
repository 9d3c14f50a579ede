/**
 * Who may use the dashboard. On a loopback address with no token, anyone on this machine: then the
 * Host header must name a loopback address, so a web page cannot reach it by DNS rebinding. With a
 * token (required on any other address), every request carries it: as `Authorization: Bearer`, or
 * in the cookie set when the page is opened once as `/?token=…`. Actions also need a header a
 * cross-site form cannot send.
 */
import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { isIP } from 'node:net';
import { ConfigError } from '../config/config.js';

export const TOKEN_COOKIE = 'media_worker_dashboard';
/** Sent by the page with every action (POST); a plain cross-site form cannot set it. */
export const ACTION_HEADER = 'x-media-worker-action';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  if (LOOPBACK_NAMES.has(host)) return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Refuses, before anything listens, a dashboard open to the network without a token. */
export function checkExposure(host: string, token: string | undefined): void {
  if (!isLoopbackHost(host) && token === undefined) {
    throw new ConfigError(
      `the dashboard would listen on ${host} with no token: set DASHBOARD_TOKEN (or --token), or keep --host 127.0.0.1`,
    );
  }
  if (token !== undefined && token.length < 16) {
    throw new ConfigError('the dashboard token must be at least 16 characters (try: openssl rand -hex 16)');
  }
}

export type AccessDecision =
  | { kind: 'allow' }
  /** The token came in the query string: set the cookie and send the browser on without it. */
  | { kind: 'set-cookie-and-redirect'; location: string }
  | { kind: 'deny'; status: 401 | 403; reason: string };

export function decideAccess(
  request: http.IncomingMessage,
  url: URL,
  token: string | undefined,
): AccessDecision {
  if (token === undefined) {
    const hostname = hostnameOf(request.headers.host);
    if (hostname === undefined || !isLoopbackHost(hostname)) {
      return { kind: 'deny', status: 403, reason: 'the Host header must name a loopback address' };
    }
    return { kind: 'allow' };
  }
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null && request.method === 'GET' && matches(fromQuery, token)) {
    url.searchParams.delete('token');
    return { kind: 'set-cookie-and-redirect', location: `${url.pathname}${url.search}` };
  }
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  const cookie = cookieValue(request.headers.cookie, TOKEN_COOKIE);
  if ((bearer !== undefined && matches(bearer, token)) || (cookie !== undefined && matches(cookie, token))) {
    return { kind: 'allow' };
  }
  return { kind: 'deny', status: 401, reason: 'open the dashboard once as /?token=<DASHBOARD_TOKEN>' };
}

export function tokenCookie(token: string): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`;
}

function matches(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function hostnameOf(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  try {
    return new URL(`http://${hostHeader}`).hostname;
  } catch {
    return undefined;
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) {
      try {
        return decodeURIComponent(rest.join('='));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
