/**
 * The dashboard's HTTP side (node:http): the page and its two assets, a Server-Sent Events stream
 * of the live state, JSON for job lists and single jobs, retry and cancel through the same store
 * operations as `jobs retry` / `jobs cancel`, and files from under the storage root.
 *
 *   GET  /                     the page          GET /api/jobs?status=&task=&page=   a page of jobs
 *   GET  /assets/<file>        its script, style  GET /api/jobs/<job_id>               one job
 *   GET  /api/events           SSE: `state`       POST /api/jobs/<job_id>/retry|cancel
 *   GET  /api/state            the same, once    GET /files/<path under the storage root>
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { listen } from '../http/listen.js';
import type { JobStore } from '../store/job-store.js';
import { JOB_STATUSES, type JobStatus } from '../store/schema.js';
import { ACTION_HEADER, decideAccess, tokenCookie } from './access.js';
import { jobDetails } from './job-details.js';
import { lookUpStorageFile, sendStorageFile } from './storage-files.js';

const PAGE_DIR = fileURLToPath(new URL('../../../worker/dashboard/page/', import.meta.url));
const ASSETS: Readonly<Record<string, string>> = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};
const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
export const PAGE_SIZE = 50;
const MAX_PAGE = 100_000;
/** A comment line on idle streams, so proxies and browsers keep them open. */
const KEEPALIVE_MS = 25_000;
/** Unsent bytes past which a page's stream is closed; EventSource reconnects once it reads again. */
const STALLED_STREAM_BYTES = 1 << 20;

export interface DashboardServerOptions {
  host: string;
  port: number;
  token: string | undefined;
  store: JobStore;
  storageRoot: string;
  /** The live state as the page receives it. */
  state(): unknown;
  /** Re-read the database now (after an action, or when a page connects). */
  refresh(): Promise<void>;
  log: Logger;
}

export class DashboardServer {
  private readonly streams = new Set<http.ServerResponse>();
  private lastSent = '';
  private keepalive: NodeJS.Timeout | undefined;

  private constructor(
    private readonly server: http.Server,
    private readonly options: DashboardServerOptions,
  ) {}

  static async start(options: DashboardServerOptions): Promise<DashboardServer> {
    const server = http.createServer();
    const dashboard = new DashboardServer(server, options);
    server.on('request', (request, response) => {
      void dashboard.answer(request, response).catch((error: unknown) => {
        options.log.warn({ err: error, path: request.url }, 'dashboard request failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: (error as Error).message }));
      });
    });
    await listen(server, options.port, options.host);
    dashboard.keepalive = setInterval(() => {
      for (const stream of dashboard.streams) stream.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    return dashboard;
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Whether any page is watching (the database is read only then). */
  get watched(): boolean {
    return this.streams.size > 0;
  }

  /** Sends the state to every open page, when it differs from what they have. */
  broadcast(): void {
    if (this.streams.size === 0) return;
    const message = JSON.stringify(this.options.state());
    if (message === this.lastSent) return;
    this.lastSent = message;
    for (const stream of this.streams) {
      // A page that stopped reading (a laptop asleep with the tab open) is let go, not buffered for.
      if (stream.writableLength > STALLED_STREAM_BYTES) {
        this.streams.delete(stream);
        stream.destroy();
        continue;
      }
      stream.write(`event: state\ndata: ${message}\n\n`);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.keepalive);
    for (const stream of this.streams) stream.end();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async answer(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://dashboard');
    const access = decideAccess(request, url, this.options.token);
    if (access.kind === 'deny') return json(response, access.status, { error: access.reason });
    if (access.kind === 'set-cookie-and-redirect') {
      response.writeHead(303, {
        location: access.location,
        'set-cookie': tokenCookie(this.options.token ?? ''),
        'cache-control': 'no-store',
      });
      response.end();
      return;
    }
    const route = url.pathname;
    if (request.method === 'POST') {
      const action = /^\/api\/jobs\/([^/]+)\/(retry|cancel)$/.exec(route);
      if (!action) return json(response, 404, { error: 'no such action' });
      if (request.headers[ACTION_HEADER] !== '1') {
        return json(response, 403, { error: `actions need the ${ACTION_HEADER} header` });
      }
      const jobId = decodedOrUndefined(action[1] ?? '');
      if (jobId === undefined) return json(response, 400, { error: 'malformed percent-encoding' });
      return this.act(response, jobId, action[2] as 'retry' | 'cancel');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return json(response, 405, { error: 'GET, HEAD or POST only' });
    }
    if (route === '/' || route === '/index.html')
      return this.sendPage(response, 'index.html', 'text/html; charset=utf-8');
    if (route.startsWith('/assets/')) {
      const name = route.slice('/assets/'.length);
      const type = ASSETS[name];
      return type ? this.sendPage(response, name, type) : json(response, 404, { error: 'no such asset' });
    }
    if (route === '/api/events') return this.openStream(request, response);
    if (route === '/api/state') return json(response, 200, this.options.state());
    if (route === '/api/jobs') return this.listJobs(response, url.searchParams);
    if (route.startsWith('/api/jobs/')) return this.showJob(response, route.slice('/api/jobs/'.length));
    if (route.startsWith('/files/')) {
      const file = await lookUpStorageFile(this.options.storageRoot, route.slice('/files/'.length));
      if (file.kind === 'refused') return json(response, file.status, { error: file.reason });
      return sendStorageFile(request, response, file);
    }
    return json(response, 404, { error: 'not found' });
  }

  private sendPage(response: http.ServerResponse, name: string, contentType: string): void {
    const body = fs.readFileSync(path.join(PAGE_DIR, name));
    response.writeHead(200, {
      'content-type': contentType,
      'content-security-policy': PAGE_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    response.end(body);
  }

  private openStream(request: http.IncomingMessage, response: http.ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    response.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(this.options.state())}\n\n`);
    this.streams.add(response);
    request.on('close', () => this.streams.delete(response));
    void this.options.refresh();
  }

  private async listJobs(response: http.ServerResponse, params: URLSearchParams): Promise<void> {
    const status = params.get('status') || undefined;
    if (status !== undefined && !(JOB_STATUSES as readonly string[]).includes(status)) {
      return json(response, 400, { error: `status must be one of ${JOB_STATUSES.join(', ')}` });
    }
    const page = Number(params.get('page') ?? '1');
    if (!Number.isInteger(page) || page < 1 || page > MAX_PAGE) {
      return json(response, 400, { error: `page must be an integer from 1 to ${MAX_PAGE}` });
    }
    const taskType = params.get('task') || undefined;
    // One more than a page: whether there is a next page, without counting every match.
    const rows = await this.options.store.listJobs({
      limit: PAGE_SIZE + 1,
      offset: (page - 1) * PAGE_SIZE,
      ...(status === undefined ? {} : { status: status as JobStatus }),
      ...(taskType === undefined ? {} : { taskType }),
    });
    json(response, 200, {
      page,
      pageSize: PAGE_SIZE,
      hasMore: rows.length > PAGE_SIZE,
      jobs: rows.slice(0, PAGE_SIZE),
    });
  }

  private async showJob(response: http.ServerResponse, encodedJobId: string): Promise<void> {
    const jobId = decodedOrUndefined(encodedJobId);
    if (jobId === undefined) return json(response, 400, { error: 'malformed percent-encoding' });
    const job = await this.options.store.getJob(jobId);
    if (!job) return json(response, 404, { error: `no job ${jobId}` });
    json(response, 200, jobDetails(job));
  }

  private async act(response: http.ServerResponse, jobId: string, action: 'retry' | 'cancel'): Promise<void> {
    const outcome =
      action === 'retry'
        ? await this.options.store.retryJob(jobId)
        : await this.options.store.cancelJob(jobId);
    this.options.log.info({ job_id: jobId, action, outcome: outcome.kind }, 'dashboard action');
    await this.options.refresh();
    json(response, outcome.kind === 'refused' ? 409 : 200, outcome);
  }
}

function json(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  response.end(JSON.stringify(body));
}

function decodedOrUndefined(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}
