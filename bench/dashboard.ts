/**
 * The dashboard at 100,000 jobs: what a page costs, and what idling costs.
 *
 * A database is seeded as a busy library looks after an import: 100,000 jobs, 60 % completed and
 * 10 % failed over the last two hours, 30 % queued (with queue entries), a few running. Then:
 *   - the database read behind every live update (QueueReader: counts, throughput, short lists),
 *     in this process, beside the same figures read by hand-written better-sqlite3 queries;
 *   - job-list pages over HTTP from a real `media-worker dashboard` (first, middle, last page,
 *     queued in claim order, failures), each beside the same page read by one raw query;
 *   - the dashboard's CPU over an idle window, with no page open and with one page open (an SSE
 *     stream), and while another process changes the database once a second.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { QueueReader } from '../worker/dashboard/queue-reader.js';
import { SqliteJobStore } from '../worker/store/sqlite/sqlite-job-store.js';
import { createBenchDir, INPUT_FILES, INPUT_PATH, ms, percentile } from './helpers/daemon-bench.js';
import { cpuPercentOver } from './helpers/process-cpu.js';
import { CLI } from './helpers/timed-drain.js';

const JOBS = Number(process.env.BENCH_DASHBOARD_JOBS ?? 100_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 20);
const GOAL_IDLE_CPU_PERCENT = 2;
const REPEATS = 20;
const PAGE_SIZE = 50;

function seed(databasePath: string): void {
  const db = new Database(databasePath);
  const insertJob =
    db.prepare(`INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files,
    output_files, status, progress, created_at, started_at, completed_at, error_message, retry_count, max_retries)
    VALUES (?, ?, 'upload', '${INPUT_PATH}', '${INPUT_FILES}', '[]', ?, ?, ?, ?, ?, ?, 0, 3)`);
  const insertEntry = db.prepare(
    'INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES (?, ?, ?)',
  );
  const types = ['image_resize', 'image_conversion', 'ffmpeg_render'];
  const now = Date.now();
  const twoHours = 2 * 60 * 60 * 1000;
  db.transaction(() => {
    for (let i = 0; i < JOBS; i += 1) {
      const share = i / JOBS;
      const status =
        share < 0.6 ? 'completed' : share < 0.7 ? 'error' : i >= JOBS - 4 ? 'processing' : 'queued';
      const createdAt = now - twoHours + Math.floor(share * twoHours);
      const finished = status === 'completed' || status === 'error';
      insertJob.run(
        `job-${i}`,
        types[i % types.length],
        status,
        finished ? 100 : status === 'processing' ? 40 : 0,
        createdAt,
        status === 'queued' ? null : createdAt + 100,
        finished ? createdAt + 2000 : null,
        status === 'error' ? 'ffmpeg exited with code 1: moov atom not found' : null,
      );
      if (status === 'queued') insertEntry.run(`job-${i}`, i % 11, createdAt);
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

async function timed(run: () => Promise<unknown> | unknown): Promise<number> {
  await run(); // warm
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i += 1) {
    const began = performance.now();
    await run();
    times.push(performance.now() - began);
  }
  return percentile(times, 50);
}

function startDashboard(serverDir: string): Promise<{ child: ChildProcess; origin: string }> {
  const child = spawn(process.execPath, [CLI, 'dashboard', '--port', '0'], {
    env: { ...process.env, CL_SERVER_DIR: serverDir, BROADCAST_TYPE: 'noop', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const match = /"url":"(http:\/\/[^"]+?)\/?"/.exec(buffered);
      if (match?.[1]) resolve({ child, origin: match[1] });
    });
    child.once('exit', (code) => reject(new Error(`the dashboard exited with ${code}`)));
  });
}

/** An open page: an SSE stream read and discarded; resolves `ready` at the first state with the queue read. */
async function openStream(origin: string): Promise<{ ready: Promise<void>; close(): void }> {
  const controller = new AbortController();
  const response = await fetch(`${origin}/api/events`, { signal: controller.signal });
  const reader = response.body?.getReader();
  let text = '';
  const ready = (async () => {
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) throw new Error('the event stream ended');
      text += new TextDecoder().decode(chunk.value);
      if (text.includes('"snapshot"')) break;
    }
    void (async () => {
      for (;;) if ((await reader?.read().catch(() => ({ done: true })))?.done) return;
    })();
  })();
  return { ready, close: () => controller.abort() };
}

export async function benchDashboard(): Promise<void> {
  const workspace = createBenchDir();
  seed(workspace.databasePath);
  const raw = new Database(workspace.databasePath, { readonly: true });
  const store = SqliteJobStore.open(workspace.databasePath, { ensureSchema: false });
  let dashboard: { child: ChildProcess; origin: string } | undefined;
  try {
    console.log(
      `dashboard: ${JOBS.toLocaleString('en')} jobs in the database (median of ${REPEATS}; one run)`,
    );

    // The read behind each live update, against the same counts and lists by hand.
    const reader = new QueueReader(store, () => {});
    const ours = await timed(() => reader.refresh());
    const since = Date.now() - 3_600_000;
    const byHand = [
      raw.prepare('SELECT status, count(*) FROM jobs GROUP BY status'),
      raw.prepare(
        "SELECT task_type, status, count(*) FROM jobs WHERE status IN ('queued','claimed','processing') GROUP BY task_type, status",
      ),
      raw.prepare(
        "SELECT completed_at / 60000 AS minute, task_type, status, count(*) FROM jobs WHERE status IN ('completed','error') AND completed_at >= ? GROUP BY 1, 2, 3",
      ),
      raw.prepare(
        "SELECT j.* FROM jobs j LEFT JOIN queue_entries q ON q.job_id = j.job_id WHERE j.status = 'queued' ORDER BY coalesce(q.priority, 5) DESC, j.created_at, j.id LIMIT 10",
      ),
      raw.prepare("SELECT * FROM jobs WHERE status = 'processing' LIMIT 50"),
      raw.prepare("SELECT * FROM jobs WHERE status = 'claimed' LIMIT 50"),
      raw.prepare(
        "SELECT * FROM jobs WHERE status = 'error' AND completed_at IS NOT NULL ORDER BY completed_at DESC, id DESC LIMIT 10",
      ),
    ];
    const handTime = await timed(() => {
      for (const statement of byHand) {
        if (statement.source.includes('completed_at >=')) statement.all(since);
        else statement.all();
      }
    });
    console.log(
      `  live update read     ${ms(ours)}   by hand ${ms(handTime)}   ratio ${(handTime / ours).toFixed(2)} (by hand / ours)`,
    );

    dashboard = await startDashboard(workspace.dir);
    const origin = dashboard.origin;
    await sleep(10_000); // start-up's own work (module loading, the first collections) is done first
    const noPage = await cpuPercentOver(dashboard.child.pid ?? 0, IDLE_SECONDS);
    const lastPage = Math.ceil(JOBS / PAGE_SIZE);
    const pages: [string, string, () => unknown][] = [
      [
        'all, page 1',
        'page=1',
        () => raw.prepare('SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 51').all(),
      ],
      [
        `all, page ${lastPage / 2}`,
        `page=${lastPage / 2}`,
        () =>
          raw
            .prepare('SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 51 OFFSET ?')
            .all((lastPage / 2 - 1) * PAGE_SIZE),
      ],
      [
        `all, page ${lastPage}`,
        `page=${lastPage}`,
        () =>
          raw
            .prepare('SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 51 OFFSET ?')
            .all((lastPage - 1) * PAGE_SIZE),
      ],
      [
        'queued, page 1',
        'status=queued&page=1',
        () =>
          raw
            .prepare(
              "SELECT j.* FROM jobs j LEFT JOIN queue_entries q ON q.job_id = j.job_id WHERE j.status = 'queued' ORDER BY coalesce(q.priority, 5) DESC, j.created_at, j.id LIMIT 51",
            )
            .all(),
      ],
      [
        'failed, page 1',
        'status=error&page=1',
        () =>
          raw
            .prepare(
              "SELECT * FROM jobs WHERE status = 'error' AND completed_at IS NOT NULL ORDER BY completed_at DESC, id DESC LIMIT 51",
            )
            .all(),
      ],
    ];
    for (const [label, query, byHandPage] of pages) {
      const served = await timed(async () => {
        const response = await fetch(`${origin}/api/jobs?${query}`);
        if (!response.ok) throw new Error(`${query}: ${response.status}`);
        await response.arrayBuffer();
      });
      const handPage = await timed(byHandPage);
      console.log(
        `  ${label.padEnd(20)} ${ms(served)}   one raw query ${ms(handPage)}   ratio ${(handPage / served).toFixed(2)}`,
      );
    }
    const floor = await timed(async () => (await fetch(`${origin}/api/state`)).arrayBuffer());
    console.log(`  HTTP floor           ${ms(floor)}   (/api/state: a request answered from memory)`);
    const jobPage = await timed(async () => (await fetch(`${origin}/api/jobs/job-12345`)).arrayBuffer());
    console.log(`  one job              ${ms(jobPage)}`);

    const pid = dashboard.child.pid ?? 0;
    const stream = await openStream(origin);
    await stream.ready;
    await sleep(2000); // the first read's own work is done before the window opens
    const onePage = await cpuPercentOver(pid, IDLE_SECONDS);
    const verdict = (percent: number) => (percent < GOAL_IDLE_CPU_PERCENT ? 'met' : 'NOT met');
    console.log(
      `  idle CPU, no page    ${noPage.toFixed(2).padStart(6)} % of a core over ${IDLE_SECONDS} s   goal < ${GOAL_IDLE_CPU_PERCENT} %: ${verdict(noPage)}`,
    );
    console.log(
      `  idle CPU, one page   ${onePage.toFixed(2).padStart(6)} % of a core over ${IDLE_SECONDS} s   goal < ${GOAL_IDLE_CPU_PERCENT} %: ${verdict(onePage)}`,
    );
    // Not idle: a write every second makes every check read again (the most it does).
    const writer = new Database(workspace.databasePath);
    const touch = writer.prepare('UPDATE jobs SET progress = (progress + 1) % 100 WHERE job_id = ?');
    const ticker = setInterval(() => touch.run(`job-${JOBS - 1}`), 1000);
    const changing = await cpuPercentOver(pid, IDLE_SECONDS);
    clearInterval(ticker);
    writer.close();
    stream.close();
    console.log(
      `  CPU, one page, a write every second ${changing.toFixed(2)} % of a core (reads spaced to 40× their duration; not idle)`,
    );
  } finally {
    dashboard?.child.kill('SIGTERM');
    store.close();
    raw.close();
    workspace.remove();
  }
}
