/**
 * What the daemon benches share: a throwaway CL_SERVER_DIR seeded with queued no-op jobs the way the
 * API inserts them (one `jobs` row and one `queue_entries` row each), a real daemon process whose
 * pino log lines are read as they come, and percentiles.
 */
import { type ChildProcessByStdio, fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../../worker/store/sqlite/sqlite-job-store.js';
import type { InserterReply, InserterRequest } from './api-inserter.js';
import { CLI, TEST_MODULES } from './timed-drain.js';

const INSERTER = fileURLToPath(new URL('./api-inserter.js', import.meta.url));

/** Every bench job reads this one file (the noop module ignores it). */
export const INPUT_PATH = 'jobs/x/input/in.txt';
export const INPUT_FILES = JSON.stringify([{ path: INPUT_PATH, metadata: {} }]);

/** The task type of every job the benches queue on the API's tables. */
export const BENCH_TASK_TYPE = 'noop';

/** The API's insert: every NOT NULL column of `jobs` supplied (docs/media_store-v1.sql). */
export const INSERT_JOB_SQL = `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files,
  output_files, status, progress, created_at, retry_count, max_retries)
  VALUES (?, '${BENCH_TASK_TYPE}', 'upload', '${INPUT_PATH}', '${INPUT_FILES}', '[]', 'queued', 0, ?, 0, 3)`;
export const INSERT_ENTRY_SQL = 'INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES (?, ?, ?)';

export interface BenchDir {
  dir: string;
  databasePath: string;
  remove(): void;
}

/** A data directory with the schema in place, and the input file. */
export function createBenchDir(): BenchDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  const databasePath = path.join(dir, 'media_store.db');
  fs.mkdirSync(path.join(dir, 'compute', path.dirname(INPUT_PATH)), { recursive: true });
  fs.writeFileSync(path.join(dir, 'compute', INPUT_PATH), 'x');
  SqliteJobStore.open(databasePath, { ensureSchema: true }).close();
  return { dir, databasePath, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Queues `count` no-op jobs (priorities 0-10 in turn) in one transaction, then checkpoints the WAL. */
export function seedNoopJobs(databasePath: string, count: number): void {
  const db = new Database(databasePath);
  try {
    db.pragma('journal_mode = WAL');
    const insertJob = db.prepare(INSERT_JOB_SQL);
    const insertEntry = db.prepare(INSERT_ENTRY_SQL);
    const now = Date.now() - count;
    db.transaction(() => {
      for (let i = 0; i < count; i += 1) {
        insertJob.run(`seed-${i}`, now + i);
        insertEntry.run(`seed-${i}`, i % 11, now + i);
      }
    })();
    // Leaves no big WAL behind for the first writer after the seed to checkpoint.
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** One pino line of the daemon (only the fields the benches read). */
export interface LogLine {
  msg: string;
  time: number;
  job_id?: string;
  worker_id?: string;
}

export interface Daemon {
  pid: number;
  /** Resolves at "worker started"; rejects if the daemon exits first. */
  started: Promise<void>;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** SIGTERM (unless it has exited), then waits for the exit (SIGKILL and an error after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Waits for the exit by itself (--drain), SIGKILL and an error after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<number | null>;
}

/**
 * Starts `media-worker run` on `dir` with the noop fixture module. `onLine` sees each log line that
 * parses as JSON; lines at warn level or above are also copied to stderr.
 */
export function startDaemon(
  dir: string,
  args: readonly string[],
  onLine: (line: LogLine) => void,
  /** More environment: DATABASE_URL for a PostgreSQL database. */
  env: Record<string, string> = {},
): Daemon {
  const child: ChildProcessByStdio<null, Readable, null> = spawn(
    process.execPath,
    // Every bench job reads the one input INPUT_PATH names: inputs shared between jobs, as --input-scope root allows.
    [CLI, 'run', '--modules-dir', TEST_MODULES, '--tasks', 'noop', '--input-scope', 'root', ...args],
    {
      env: { ...process.env, CL_SERVER_DIR: dir, BROADCAST_TYPE: 'noop', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('the daemon did not start');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve, reject) => {
    markStarted = resolve;
    void exited.then((code) => reject(new Error(`the daemon exited (${code}) before "worker started"`)));
  });
  started.catch(() => {}); // observed by whoever awaits it
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      let line: LogLine & { level?: number };
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      if ((line.level ?? 0) >= 40) process.stderr.write(`${text}\n`);
      if (line.msg === 'worker started') markStarted();
      onLine(line);
    }
  });
  const waitForExit = async (timeoutMs: number) => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const result = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      child.kill('SIGKILL');
      throw new Error(`daemon ${pid} did not exit within ${timeoutMs} ms (killed)`);
    }
    return result;
  };
  return {
    pid,
    started,
    exited,
    waitForExit,
    stop(timeoutMs = 60_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return waitForExit(timeoutMs);
    },
  };
}

export interface ApiInserter {
  /** Inserts one job every `periodMs` for `seconds`; resolves with each insert's latency (ms). */
  steady(prefix: string, periodMs: number, seconds: number): Promise<number[]>;
  /** Inserts one job; resolves with its created_at and the insert's latency. */
  insert(jobId: string, priority: number): Promise<{ createdAt: number; latencyMs: number }>;
  close(): Promise<void>;
}

/** Forks bench/helpers/api-inserter.js, the API stand-in, on its own connection to the database. */
export function startApiInserter(databasePath: string): ApiInserter {
  const child = fork(INSERTER, [databasePath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const request = <K extends InserterReply['kind']>(message: InserterRequest, kind: K) =>
    new Promise<Extract<InserterReply, { kind: K }>>((resolve, reject) => {
      const onExit = () => reject(new Error('the API inserter exited'));
      child.once('exit', onExit);
      child.once('message', (reply: InserterReply) => {
        child.off('exit', onExit);
        if (reply.kind === kind) resolve(reply as Extract<InserterReply, { kind: K }>);
        else reject(new Error(`the API inserter answered ${reply.kind} to ${message.kind}`));
      });
      child.send(message);
    });
  return {
    async steady(prefix, periodMs, seconds) {
      return (await request({ kind: 'steady', prefix, periodMs, seconds }, 'steady')).latencies;
    },
    insert: (jobId, priority) => request({ kind: 'insert', jobId, priority }, 'inserted'),
    async close() {
      if (child.connected) child.disconnect();
      await within(exited, 10_000, 'the API inserter to exit');
    },
  };
}

/** Rejects after `ms` with `what` in the message: no bench waits forever. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Nearest-rank percentile (p in 0-100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

export const ms = (value: number) => `${value.toFixed(1).padStart(7)} ms`;
