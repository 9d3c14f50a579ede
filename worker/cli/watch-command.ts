/**
 * `media-worker watch`: a live view of workers and running jobs (and, given the database, queued
 * jobs per task type). On a terminal it redraws the screen; into a pipe or a file it prints one
 * line whenever the view changes; with --json, one JSON line per message. A broker it cannot reach
 * is shown with the reason, and a closed pipe (`watch | head`) ends it quietly.
 */
import type { Config } from '../config/config.js';
import type { JobStore } from '../store/job-store.js';
import { openJobStore } from '../store/open-job-store.js';
import { BrokerFollower } from '../watch/follow-broker.js';
import { renderWatch, summaryLine } from '../watch/render-watch.js';
import { pruneJobs, type QueueView } from '../watch/watch-state.js';

const REDRAW_MS = 250;
const QUEUE_READ_MS = 2000;

export async function watch(config: Config, options: { json: boolean }): Promise<void> {
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const printJson = (value: unknown) => print(JSON.stringify(value));
  const follower = new BrokerFollower(
    config.broker,
    options.json
      ? {
          onBrokerChange: (status) => printJson({ broker: { url: follower.url, ...status }, at: Date.now() }),
          onMessage: ({ topic, payload, retained, receivedAt }) => {
            let parsed: unknown = payload;
            try {
              parsed = payload === '' ? null : JSON.parse(payload);
            } catch {
              // not JSON: printed as the raw string
            }
            printJson({ topic, retained, received_at: receivedAt, payload: parsed });
          },
        }
      : {},
  );
  const state = follower.state;

  const queue =
    config.store.databaseUrl === undefined ? undefined : new QueueReader(config.store.databaseUrl);
  let reading = false;
  const readQueue = async () => {
    if (!queue || reading) return;
    reading = true;
    const view = await queue.read().finally(() => {
      reading = false;
    });
    const changed = JSON.stringify(view) !== JSON.stringify(state.queue);
    state.queue = view;
    if (changed && options.json) printJson({ queued: view, at: Date.now() });
  };
  void readQueue();
  const queueTimer = queue ? setInterval(() => void readQueue(), QUEUE_READ_MS) : undefined;

  const brokerText = () => follower.describe();
  let lastLine = '';
  const redraw = options.json
    ? undefined
    : setInterval(() => {
        const now = Date.now();
        pruneJobs(state, now);
        if (process.stdout.isTTY) {
          process.stdout.write(`\x1b[H\x1b[2J${renderWatch(state, now, brokerText())}\n`);
          return;
        }
        const line = summaryLine(state, now, brokerText());
        if (line !== lastLine) print(`${new Date(now).toISOString()} ${line}`);
        lastLine = line;
      }, REDRAW_MS);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    // `watch | head`: the reader went away, which is the end of watching, not an error.
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') resolve();
    });
  });
  clearInterval(redraw);
  clearInterval(queueTimer);
  await queue?.close();
  await follower.close();
}

/** Queued jobs per task type; a database that cannot be read is shown with the reason, and tried again. */
class QueueReader {
  private store: JobStore | undefined;

  constructor(private readonly databaseUrl: string) {}

  async read(): Promise<QueueView> {
    try {
      this.store ??= await openJobStore(this.databaseUrl, { ensureSchema: false, mustExist: true });
      return { counts: await this.store.queuedCounts() };
    } catch (error) {
      await this.close();
      return { error: (error as Error).message };
    }
  }

  async close(): Promise<void> {
    const store = this.store;
    this.store = undefined;
    await store?.close().catch(() => {});
  }
}
