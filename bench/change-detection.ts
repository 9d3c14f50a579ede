/**
 * How an idle daemon can notice that another process committed to the database, measured on the
 * mechanism alone: the store's way (fs.watch on the folder, confirmed by `PRAGMA data_version`)
 * beside polling `data_version` on a timer. For each: the delay from a commit starting in one
 * process to another process noticing it (median and p90 over BENCH_DETECT_COMMITS commits), and
 * the noticing process's CPU while nothing happens (% of one core over BENCH_IDLE_SECONDS).
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const DETECTOR = fileURLToPath(new URL('./helpers/change-detector.js', import.meta.url));
const COMMITS = Number(process.env.BENCH_DETECT_COMMITS ?? 60);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 5);
const MODES = ['watch', 'poll-10', 'poll-25', 'poll-50'];

interface ModeResult {
  mode: string;
  medianMs: number;
  p90Ms: number;
  missed: number;
  idleCpuPercent: number;
}

function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    const listen = (message: { type: string }) => {
      if (message.type !== type) return;
      child.off('message', listen);
      resolve(message as T);
    };
    child.on('message', listen);
  });
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

async function measure(databasePath: string, mode: string): Promise<ModeResult> {
  const child = fork(DETECTOR, [databasePath, mode], { stdio: 'inherit' });
  const noticedAt: number[] = [];
  child.on('message', (message: { type: string; at?: number }) => {
    if (message.type === 'noticed' && message.at !== undefined) noticedAt.push(message.at);
  });
  await nextMessage(child, 'ready');
  const idle = nextMessage<{ percent: number }>(child, 'idle-cpu');
  child.send({ type: 'measure-idle', seconds: IDLE_SECONDS });
  const { percent } = await idle;

  const db = new Database(databasePath);
  const insert = db.prepare('INSERT INTO t (at) VALUES (?)');
  const committedAt: number[] = [];
  for (let i = 0; i < COMMITS; i += 1) {
    // Random gaps, longer than the slowest poll, so each commit is noticed on its own.
    await sleep(60 + Math.random() * 40);
    // From the moment the commit starts: the other process may notice before run() returns here.
    committedAt.push(performance.timeOrigin + performance.now());
    insert.run(Date.now());
  }
  await sleep(200); // the last commit's notice is on its way over IPC
  db.close();
  child.send({ type: 'stop' });
  await new Promise((resolve) => child.once('exit', resolve));

  const delays: number[] = [];
  let missed = 0;
  committedAt.forEach((at, index) => {
    const before = committedAt[index + 1] ?? Number.POSITIVE_INFINITY;
    const first = noticedAt.find((noticed) => noticed >= at && noticed < before);
    if (first === undefined) missed += 1;
    else delays.push(Math.max(0, first - at));
  });
  delays.sort((a, b) => a - b);
  return {
    mode,
    medianMs: quantile(delays, 0.5),
    p90Ms: quantile(delays, 0.9),
    missed,
    idleCpuPercent: percent,
  };
}

export async function benchChangeDetection(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  try {
    const databasePath = path.join(dir, 'media_store.db');
    const setup = new Database(databasePath);
    setup.pragma('journal_mode = WAL');
    setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER)');
    setup.close();
    const results: ModeResult[] = [];
    for (const mode of MODES) results.push(await measure(databasePath, mode));
    console.log(
      `noticing another process's commit (${COMMITS} commits, idle CPU over ${IDLE_SECONDS} s; one run)`,
    );
    for (const result of results) {
      console.log(
        `  ${result.mode === 'watch' ? 'fs.watch + data_version (the store)' : `poll data_version every ${result.mode.slice(5)} ms`}`.padEnd(
          40,
        ) +
          `median ${result.medianMs.toFixed(2).padStart(6)} ms   p90 ${result.p90Ms.toFixed(2).padStart(6)} ms   idle CPU ${result.idleCpuPercent.toFixed(2)} % of a core${result.missed > 0 ? `   missed ${result.missed}` : ''}`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
