/**
 * The daemon's HTTP endpoints, opt in (--http-port): `/healthz` (the process answers), `/readyz`
 * (it can take work now: 503 with a JSON reason otherwise) and `/metrics` (Prometheus text).
 * Bound to 127.0.0.1 unless --http-host says otherwise; it has no authentication.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { listen } from './listen.js';
import type { WorkerMetrics } from './worker-metrics.js';

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface HealthServerOptions {
  host: string;
  port: number;
  readiness(): Promise<Readiness>;
  metrics: WorkerMetrics;
  log: Logger;
}

export class HealthServer {
  private constructor(private readonly server: http.Server) {}

  static async start(options: HealthServerOptions): Promise<HealthServer> {
    const server = http.createServer((request, response) => {
      void answer(request, response, options).catch((error: unknown) => {
        options.log.warn({ err: error, path: request.url }, 'HTTP request failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: (error as Error).message }));
      });
    });
    await listen(server, options.port, options.host);
    const { address, port } = server.address() as AddressInfo;
    options.log.info({ address, port }, 'HTTP endpoints listening: /healthz /readyz /metrics');
    return new HealthServer(server);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function answer(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  options: HealthServerOptions,
): Promise<void> {
  const json = (status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  if (request.method !== 'GET' && request.method !== 'HEAD') return json(405, { error: 'GET only' });
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  switch (path) {
    case '/healthz':
      return json(200, { status: 'alive' });
    case '/readyz': {
      const readiness = await options.readiness();
      return json(readiness.ready ? 200 : 503, readiness);
    }
    case '/metrics': {
      const text = await options.metrics.registry.metrics();
      response.writeHead(200, { 'content-type': options.metrics.registry.contentType });
      response.end(text);
      return;
    }
    default:
      return json(404, { error: `no ${path}; try /healthz, /readyz or /metrics` });
  }
}
