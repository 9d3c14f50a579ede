/**
 * Wake-up by LISTEN/NOTIFY: one connection of its own listens on the queue channel (the triggers
 * notify on every job queued). When that connection drops, it comes back with backoff. The
 * daemon's poll interval stays the fallback. Each time the connection starts listening the daemon
 * is told to look once, since what was queued before then notified no one.
 */

import pg from 'pg';
import type { Logger } from 'pino';
import { clientConfig } from './connect.js';
import { QUEUE_CHANNEL } from './ddl.js';

const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 30_000;
/**
 * A connection cut without a word (a partition, a NAT dropping it) brings no error, only silence:
 * the listener asks the server something this often and gives the connection up when no answer
 * comes within PING_TIMEOUT_MS.
 */
const PING_EVERY_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;

export function listenForQueueChanges(
  databaseUrl: string,
  onChange: () => void,
  signal: AbortSignal,
  log: Logger | undefined,
): void {
  let retryMs = FIRST_RETRY_MS;
  let lost = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let pinger: NodeJS.Timeout | undefined;

  const ping = async (which: pg.Client) => {
    let silence: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        which.query('SELECT 1'),
        new Promise((_, reject) => {
          silence = setTimeout(
            () => reject(new Error(`no answer to a ping within ${PING_TIMEOUT_MS} ms`)),
            PING_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (error) {
      dropped(which, error as Error);
    } finally {
      clearTimeout(silence);
    }
  };

  const connect = async () => {
    if (signal.aborted) return;
    const attempt = new pg.Client(clientConfig(databaseUrl));
    client = attempt;
    attempt.on('notification', () => onChange());
    attempt.on('error', (error) => dropped(attempt, error));
    attempt.on('end', () => dropped(attempt, new Error('connection closed')));
    try {
      await attempt.connect();
      await attempt.query(`LISTEN ${QUEUE_CHANNEL}`);
    } catch (error) {
      dropped(attempt, error as Error);
      return;
    }
    if (signal.aborted) return void attempt.end().catch(() => {});
    retryMs = FIRST_RETRY_MS;
    pinger = setInterval(() => void ping(attempt), PING_EVERY_MS);
    pinger.unref();
    if (lost) {
      lost = false;
      log?.info('listening for new jobs again');
    }
    // Whatever was queued before this connection listened sent its notification to no one.
    onChange();
  };

  const dropped = (which: pg.Client, error: Error) => {
    if (which !== client || signal.aborted) return;
    client = undefined;
    clearInterval(pinger);
    which.removeAllListeners('end');
    which.end().catch(() => {});
    if (!lost) {
      lost = true;
      log?.warn(
        { reason: error.message, retry_in_ms: retryMs },
        'lost the connection that listens for new jobs; polling until it is back',
      );
    }
    timer = setTimeout(() => void connect(), retryMs);
    retryMs = Math.min(LONGEST_RETRY_MS, retryMs * 2);
  };

  signal.addEventListener(
    'abort',
    () => {
      clearTimeout(timer);
      clearInterval(pinger);
      const open = client;
      client = undefined;
      open?.end().catch(() => {});
    },
    { once: true },
  );
  void connect();
}
