/**
 * Claim + complete through the SQLite store, each figure a ratio from one run:
 * - at 1,000,000 queued jobs against 1,000 queued (the claim must not grow with the backlog), from
 *   a backlog that holds still, and with a job arriving (inserted as the API does, untimed) after
 *   each claim, which the store then reads into its ready index on its own time;
 * - against the best hand-written better-sqlite3 queue: one table, an index in claim order, an
 *   autocommit `UPDATE … RETURNING` to claim and an `UPDATE` to complete;
 * - against the fewest writes any queue on the API's tables must make (status changes on `jobs`,
 *   which the API indexes), and a queue with the store's duties (queue order, leases) written by
 *   hand in as few writes as we found (helpers/sqlite-queues.ts). WAL pages written per job say
 *   where the time goes.
 * Every queue is set up first; then each is timed in blocks of BLOCK_JOBS, in turn, so that load on
 * the machine meanwhile falls on all of them alike. Job ids are UUIDs, as the API's are.
 * Priorities 0–10 are spread over the backlog. The store is opened as the daemon opens it, with
 * SQLite's default checkpoints like the raw queue; one more line opens it as runners do, which
 * checkpoint the WAL early for the API's sake (StoreOpenOptions.upkeep).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../worker/store/sqlite/sqlite-job-store.js';
import { BENCH_TASK_TYPE } from './helpers/daemon-bench.js';
import {
  apiInserter,
  apiTablesFloorQueue,
  leasedOrderedFloorQueue,
  type QueueUnderTest,
  rawQueue,
  settle,
} from './helpers/sqlite-queues.js';
import { claimAndComplete, count, rateLine, ratio, timedInTurn } from './helpers/timed-in-turn.js';

const TIMED_JOBS = Number(process.env.BENCH_CLAIM_JOBS ?? 20_000);
const LARGE_BACKLOG = Number(process.env.BENCH_CLAIM_BACKLOG ?? 1_000_000);
const SMALL_BACKLOG = 1000;
/** Jobs each queue runs untimed: a warm-up before the timed blocks, and the WAL pages counted after. */
const WARM_UP_JOBS = 200;
const FRAME_COUNT_JOBS = 200;
const UNTIMED_JOBS = WARM_UP_JOBS + FRAME_COUNT_JOBS;
/** Jobs timed on one queue before the next queue's turn. */
const BLOCK_JOBS = 500;
const WAL_FRAME_BYTES = 4096 + 24;

function walFrames(databasePath: string): number {
  try {
    return Math.max(0, (fs.statSync(`${databasePath}-wal`).size - 32) / WAL_FRAME_BYTES);
  } catch {
    return 0;
  }
}

/** WAL pages one job writes, over FRAME_COUNT_JOBS jobs with checkpoints held off (untimed). */
async function countFrames({ databasePath, oneJob }: QueueUnderTest): Promise<number> {
  const holder = new Database(databasePath);
  holder.pragma('wal_checkpoint(TRUNCATE)');
  // An open read transaction keeps every connection's automatic checkpoint from resetting the WAL.
  holder.exec('BEGIN');
  holder.prepare('SELECT count(*) FROM sqlite_master').get();
  const before = walFrames(databasePath);
  for (let i = 0; i < FRAME_COUNT_JOBS; i += 1) await oneJob();
  const frames = (walFrames(databasePath) - before) / FRAME_COUNT_JOBS;
  holder.exec('COMMIT');
  holder.close();
  return frames;
}

/**
 * The store with `backlog` queued while it runs: seeded with every job the run takes when nothing
 * arrives, else held by one arrival after each job.
 */
async function storeQueue(
  dir: string,
  backlog: number,
  { arrivals = false, upkeep = false } = {},
): Promise<QueueUnderTest & { buildSeconds: number }> {
  const databasePath = path.join(dir, `store-${backlog}-${arrivals}-${upkeep}.db`);
  SqliteJobStore.open(databasePath, { ensureSchema: true }).close();
  const api = apiInserter(databasePath, arrivals ? backlog : backlog + TIMED_JOBS + UNTIMED_JOBS);
  const store = SqliteJobStore.open(databasePath, { ensureSchema: true, upkeep });
  // The backlog was queued before the store first looked: reading it into the ready index is the
  // one-time cost of a first start.
  const buildStarted = performance.now();
  await store.hasQueuedJobs([BENCH_TASK_TYPE]);
  const buildSeconds = (performance.now() - buildStarted) / 1000;
  settle(databasePath);
  return {
    databasePath,
    buildSeconds,
    oneJob: claimAndComplete(store, BENCH_TASK_TYPE),
    between: arrivals ? api.addOne : undefined,
    async close() {
      await store.close();
      api.close();
    },
  };
}

export async function benchClaimThroughput(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-'));
  const queues: QueueUnderTest[] = [];
  const add = <Queue extends QueueUnderTest>(queue: Queue): Queue => {
    queues.push(queue);
    return queue;
  };
  try {
    const small = add(await storeQueue(dir, SMALL_BACKLOG));
    const large = add(await storeQueue(dir, LARGE_BACKLOG));
    add(await storeQueue(dir, SMALL_BACKLOG, { arrivals: true }));
    const largeArriving = add(await storeQueue(dir, LARGE_BACKLOG, { arrivals: true }));
    add(await storeQueue(dir, SMALL_BACKLOG, { upkeep: true }));
    const rawSmall = add(rawQueue(dir, 'small', SMALL_BACKLOG + TIMED_JOBS + UNTIMED_JOBS));
    add(rawQueue(dir, 'large', LARGE_BACKLOG + TIMED_JOBS + UNTIMED_JOBS));
    const floorQueue = add(apiTablesFloorQueue(dir, SMALL_BACKLOG + TIMED_JOBS + UNTIMED_JOBS));
    const leasedFloorQueue = add(leasedOrderedFloorQueue(dir, SMALL_BACKLOG + TIMED_JOBS + UNTIMED_JOBS));
    add(leasedOrderedFloorQueue(dir, SMALL_BACKLOG + TIMED_JOBS + UNTIMED_JOBS, { finishedIndex: false }));
    const [
      storeSmall = 0,
      storeLarge = 0,
      arrivingSmall = 0,
      arrivingLarge = 0,
      withUpkeep = 0,
      raw = 0,
      rawLarge = 0,
      floor = 0,
      leasedFloor = 0,
      leasedFloorUnindexed = 0,
    ] = await timedInTurn(queues, { timedJobs: TIMED_JOBS, blockJobs: BLOCK_JOBS, warmUpJobs: WARM_UP_JOBS });
    const smallFrames = await countFrames(small);
    const largeFrames = await countFrames(large);
    const rawFrames = await countFrames(rawSmall);
    const floorFrames = await countFrames(floorQueue);
    const leasedFloorFrames = await countFrames(leasedFloorQueue);

    const n = count;
    const line = rateLine(60);
    console.log(
      `claim + complete, ${n(TIMED_JOBS)} jobs timed per line, in blocks of ${BLOCK_JOBS} taken in turn (one run)`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued (+ the jobs timed)`, storeSmall);
    line(
      `store, ${n(LARGE_BACKLOG)} queued`,
      storeLarge,
      `   ratio ${ratio(storeSmall, storeLarge)} to ${n(SMALL_BACKLOG)} (goal >= 0.8)`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued, a job arriving after each`, arrivingSmall);
    line(
      `store, ${n(LARGE_BACKLOG)} queued, a job arriving after each`,
      arrivingLarge,
      `   ratio ${ratio(arrivingSmall, arrivingLarge)} to ${n(SMALL_BACKLOG)}`,
    );
    line(`store, ${n(SMALL_BACKLOG)} queued, checkpoints at 250 pages (as runners)`, withUpkeep);
    line(
      `raw one-table queue, ${n(SMALL_BACKLOG)} queued`,
      raw,
      `   store/raw ${ratio(raw, storeSmall)} (goal >= 0.5)`,
    );
    line(
      `raw one-table queue, ${n(LARGE_BACKLOG)} queued`,
      rawLarge,
      `   ratio ${ratio(raw, rawLarge)} to ${n(SMALL_BACKLOG)}`,
    );
    line(
      `floor on the API's tables (status changes alone)`,
      floor,
      `   store/floor ${ratio(floor, storeSmall)}; floor/raw ${ratio(raw, floor)}`,
    );
    line(
      `the same with queue order and leases (hand-written)`,
      leasedFloor,
      `   its/raw ${ratio(raw, leasedFloor)}; store/it ${ratio(leasedFloor, storeSmall)}`,
    );
    line(
      `the same without the finished-jobs index`,
      leasedFloorUnindexed,
      `   its/raw ${ratio(raw, leasedFloorUnindexed)}`,
    );
    console.log(
      `  reading ${n(LARGE_BACKLOG)} jobs queued before the store first looked: ` +
        `${large.buildSeconds.toFixed(1)} s (untimed, once; with arrivals ${largeArriving.buildSeconds.toFixed(1)} s)`,
    );
    console.log(
      `  WAL pages written per job: store ${smallFrames.toFixed(1)} (at ${n(LARGE_BACKLOG)}: ${largeFrames.toFixed(1)}), ` +
        `raw ${rawFrames.toFixed(1)}, floor ${floorFrames.toFixed(1)}, with order and leases ${leasedFloorFrames.toFixed(1)}`,
    );
  } finally {
    for (const queue of queues) await queue.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
