/**
 * Stands in for the API service in its own process (forked with an IPC channel; argv[2] is the
 * database path): inserts a job as the API does, the `jobs` row then its `queue_entries` row, as two
 * autocommit statements on a better-sqlite3 connection with a 15 s busy timeout and SQLite's other
 * defaults, and times the pair.
 *
 * Messages: `{ kind: 'steady', prefix, periodMs, seconds }` inserts one job every `periodMs` (on a
 * fixed schedule) for `seconds` and answers `{ latencies }` (ms per insert); `{ kind: 'insert',
 * jobId, priority }` inserts one job and answers `{ createdAt, latencyMs }`. Exits on disconnect.
 */
import Database from 'better-sqlite3';
import { INSERT_ENTRY_SQL, INSERT_JOB_SQL } from './daemon-bench.js';

export type InserterRequest =
  | { kind: 'steady'; prefix: string; periodMs: number; seconds: number }
  | { kind: 'insert'; jobId: string; priority: number };

export type InserterReply =
  | { kind: 'steady'; latencies: number[] }
  | { kind: 'inserted'; jobId: string; createdAt: number; latencyMs: number };

const databasePath = process.argv[2];
if (databasePath && process.send) {
  const db = new Database(databasePath, { timeout: 15_000 });
  const insertJob = db.prepare(INSERT_JOB_SQL);
  const insertEntry = db.prepare(INSERT_ENTRY_SQL);

  const insert = (jobId: string, priority: number) => {
    const began = performance.now();
    const createdAt = Date.now();
    insertJob.run(jobId, createdAt);
    insertEntry.run(jobId, priority, Date.now());
    return { createdAt, latencyMs: performance.now() - began };
  };

  const steady = async (prefix: string, periodMs: number, seconds: number) => {
    const latencies: number[] = [];
    const start = performance.now();
    const end = start + seconds * 1000;
    for (let tick = 0; ; tick += 1) {
      const due = start + tick * periodMs;
      if (due >= end) break;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      latencies.push(insert(`${prefix}-${tick}`, tick % 11).latencyMs);
    }
    return latencies;
  };

  const reply = (message: InserterReply) => process.send?.(message);
  process.on('message', (message: InserterRequest) => {
    if (message.kind === 'insert') {
      reply({ kind: 'inserted', jobId: message.jobId, ...insert(message.jobId, message.priority) });
    } else {
      void steady(message.prefix, message.periodMs, message.seconds).then((latencies) =>
        reply({ kind: 'steady', latencies }),
      );
    }
  });
  process.on('disconnect', () => {
    db.close();
    process.exit(0);
  });
}
