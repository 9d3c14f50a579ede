/**
 * The ready index: `media_worker_ready`, one row per queued job, ordered the way the claim takes
 * them (task type, priority descending, created_at, id), so a claim is one index seek whatever the
 * backlog. Priority lives in the API's `queue_entries`, so no index on `jobs` alone has that order.
 *
 * Triggers of ours on the API's tables keep it in step inside the very transaction that changes a
 * job or its queue entry: an insert, a queue entry committed before or after its job, a priority
 * changed, a job deleted or cancelled, a job put back to `queued` by anyone. The worker's own
 * requeues go through the same triggers, which copy the retry schedule
 * (`worker_job_state.not_before`) so a job in backoff waits outside the claim order.
 *
 * Two rules keep the triggers from ever hurting the API:
 * - A trigger reads and writes only the worker's own tables, never the other API table: SQLite
 *   refuses `ALTER TABLE … RENAME` (the last step of a migration that rebuilds a table, as
 *   Alembic's batch mode does) while any trigger names a table that is missing at that moment.
 *   So the priorities are mirrored into `media_worker_priority` by the triggers on `queue_entries`,
 *   and the triggers on `jobs` read the mirror.
 * - Trigger bodies only delete, update or `INSERT OR REPLACE` into tables with no constraint that
 *   can fail, so they never make an API write fail.
 *
 * A migration that rebuilds `jobs` or `queue_entries` drops that table's triggers with it. The
 * store notices through `PRAGMA schema_version`, puts them back and rebuilds the index and the
 * mirror in short chunks before it claims again.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { DEFAULT_PRIORITY } from '../schema.js';

const priorityOf = (jobId: string) =>
  `coalesce((SELECT priority FROM media_worker_priority WHERE job_id = ${jobId}), ${DEFAULT_PRIORITY})`;

export const READY_TABLE_DDL = `
CREATE TABLE IF NOT EXISTS media_worker_ready (
	job_id VARCHAR NOT NULL PRIMARY KEY,
	id INTEGER,
	task_type VARCHAR,
	priority INTEGER,
	created_at BIGINT,
	not_before BIGINT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS media_worker_ready_order
	ON media_worker_ready (task_type, priority DESC, created_at, id) WHERE not_before IS NULL;
CREATE INDEX IF NOT EXISTS media_worker_ready_delayed
	ON media_worker_ready (not_before, task_type) WHERE not_before IS NOT NULL;
CREATE TABLE IF NOT EXISTS media_worker_priority (
	job_id VARCHAR NOT NULL PRIMARY KEY,
	priority INTEGER
) WITHOUT ROWID;
`;

/** Each trigger with the API table it is on. */
const TRIGGERS: Readonly<Record<string, { table: 'jobs' | 'queue_entries'; body: string }>> = {
  media_worker_ready_job_added: {
    table: 'jobs',
    body: `AFTER INSERT ON jobs WHEN NEW.status = 'queued' BEGIN
  INSERT OR REPLACE INTO media_worker_ready (job_id, id, task_type, priority, created_at, not_before)
  VALUES (NEW.job_id, NEW.id, NEW.task_type, ${priorityOf('NEW.job_id')}, NEW.created_at, NULL);
END`,
  },
  media_worker_ready_job_changed: {
    table: 'jobs',
    body: `AFTER UPDATE OF status, job_id, task_type, created_at ON jobs
WHEN OLD.status = 'queued' OR NEW.status = 'queued' BEGIN
  DELETE FROM media_worker_ready
  WHERE job_id = OLD.job_id AND (NEW.status <> 'queued' OR NEW.job_id <> OLD.job_id);
  INSERT OR REPLACE INTO media_worker_ready (job_id, id, task_type, priority, created_at, not_before)
  SELECT NEW.job_id, NEW.id, NEW.task_type, ${priorityOf('NEW.job_id')}, NEW.created_at,
    (SELECT not_before FROM worker_job_state WHERE job_id = NEW.job_id)
  WHERE NEW.status = 'queued';
END`,
  },
  media_worker_ready_job_removed: {
    table: 'jobs',
    body: `AFTER DELETE ON jobs WHEN OLD.status = 'queued' BEGIN
  DELETE FROM media_worker_ready WHERE job_id = OLD.job_id;
END`,
  },
  media_worker_ready_entry_added: {
    table: 'queue_entries',
    body: `AFTER INSERT ON queue_entries BEGIN
  INSERT OR REPLACE INTO media_worker_priority (job_id, priority) VALUES (NEW.job_id, NEW.priority);
  UPDATE media_worker_ready SET priority = NEW.priority WHERE job_id = NEW.job_id;
END`,
  },
  media_worker_ready_entry_changed: {
    table: 'queue_entries',
    body: `AFTER UPDATE OF job_id, priority ON queue_entries BEGIN
  DELETE FROM media_worker_priority WHERE job_id = OLD.job_id;
  UPDATE media_worker_ready SET priority = ${DEFAULT_PRIORITY} WHERE job_id = OLD.job_id;
  INSERT OR REPLACE INTO media_worker_priority (job_id, priority) VALUES (NEW.job_id, NEW.priority);
  UPDATE media_worker_ready SET priority = NEW.priority WHERE job_id = NEW.job_id;
END`,
  },
  media_worker_ready_entry_removed: {
    table: 'queue_entries',
    body: `AFTER DELETE ON queue_entries BEGIN
  DELETE FROM media_worker_priority WHERE job_id = OLD.job_id;
  UPDATE media_worker_ready SET priority = ${DEFAULT_PRIORITY} WHERE job_id = OLD.job_id;
END`,
  },
};

export const READY_TRIGGER_NAMES = Object.keys(TRIGGERS);

/** Queued jobs copied per transaction while the index is (re)built, so the API is never held up long. */
const BUILD_CHUNK = 5000;
/** The layout of the tables and triggers above: a daemon that finds another one builds its own. */
const LAYOUT = 1;
const BUILT = `built, layout ${LAYOUT}`;
const BUILDING = `building, layout ${LAYOUT}`;

/**
 * Creates the ready index and its triggers when missing and fills it from the queued jobs; cheap
 * when everything is in place. Safe to run from several daemons at once.
 */
export function ensureReadyIndex(sqlite: BetterSqlite3.Database): void {
  if (isInPlace(sqlite)) return;
  const doneMeanwhile = sqlite
    .transaction((): boolean => {
      // Looked at again under the write lock: another daemon may have done it meanwhile.
      if (isInPlace(sqlite)) return true;
      // A daemon that stopped half-way through a build of this layout leaves it to be finished;
      // anything else (a first start, another layout, a trigger lost) starts from scratch.
      if (buildState(sqlite) !== BUILDING || missingTriggers(sqlite).length > 0) {
        for (const name of Object.keys(TRIGGERS)) sqlite.exec(`DROP TRIGGER IF EXISTS ${name}`);
        sqlite.exec('DROP TABLE IF EXISTS media_worker_ready; DROP TABLE IF EXISTS media_worker_priority;');
        sqlite.exec(READY_TABLE_DDL);
        for (const [name, { body }] of Object.entries(TRIGGERS))
          sqlite.exec(`CREATE TRIGGER ${name} ${body}`);
      }
      setBuildState(sqlite, BUILDING);
      return false;
    })
    .immediate();
  if (doneMeanwhile) return;
  fillPriorityMirror(sqlite);
  fillFromQueuedJobs(sqlite);
  sqlite.transaction(() => setBuildState(sqlite, BUILT)).immediate();
}

function isInPlace(sqlite: BetterSqlite3.Database): boolean {
  return missingTriggers(sqlite).length === 0 && buildState(sqlite) === BUILT;
}

/**
 * Runs `copy(after, last)` over the ids of `source` in chunks of BUILD_CHUNK rows, one transaction
 * each. The triggers are already in place, so a row that changes between chunks is kept in step by
 * them, and the copies use `OR IGNORE` to leave a row the triggers wrote alone.
 */
function copyInChunks(
  sqlite: BetterSqlite3.Database,
  idsInOrder: string,
  copy: BetterSqlite3.Statement<[number, number]>,
): void {
  const chunkEnd = sqlite
    .prepare(`SELECT max(id) FROM (${idsInOrder} LIMIT ${BUILD_CHUNK})`)
    .pluck() as BetterSqlite3.Statement<[number], number | null>;
  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const end = sqlite
      .transaction((): number | null => {
        const last = chunkEnd.get(after) ?? null;
        if (last !== null) copy.run(after, last);
        return last;
      })
      .immediate();
    if (end === null) return;
    after = end;
  }
}

function fillPriorityMirror(sqlite: BetterSqlite3.Database): void {
  copyInChunks(
    sqlite,
    'SELECT id FROM queue_entries WHERE id > ? ORDER BY id',
    sqlite.prepare(
      `INSERT OR IGNORE INTO media_worker_priority (job_id, priority)
       SELECT job_id, priority FROM queue_entries WHERE id > ? AND id <= ?`,
    ),
  );
}

/** Queued jobs, in id order; ix_jobs_status holds them in that order. */
function fillFromQueuedJobs(sqlite: BetterSqlite3.Database): void {
  copyInChunks(
    sqlite,
    "SELECT id FROM jobs WHERE status = 'queued' AND id > ? ORDER BY id",
    sqlite.prepare(
      `INSERT OR IGNORE INTO media_worker_ready (job_id, id, task_type, priority, created_at, not_before)
       SELECT j.job_id, j.id, j.task_type, coalesce(p.priority, ${DEFAULT_PRIORITY}), j.created_at, s.not_before
       FROM jobs j
       LEFT JOIN media_worker_priority p ON p.job_id = j.job_id
       LEFT JOIN worker_job_state s ON s.job_id = j.job_id
       WHERE j.status = 'queued' AND j.id > ? AND j.id <= ?`,
    ),
  );
}

/** Triggers of ours that are missing, or that a rename left on another table. */
function missingTriggers(sqlite: BetterSqlite3.Database): string[] {
  const present = new Map(
    (
      sqlite
        .prepare(
          "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'media_worker_ready_%'",
        )
        .all() as { name: string; tbl_name: string }[]
    ).map((trigger) => [trigger.name, trigger.tbl_name]),
  );
  return Object.entries(TRIGGERS)
    .filter(([name, { table }]) => present.get(name) !== table)
    .map(([name]) => name);
}

function buildState(sqlite: BetterSqlite3.Database): string | undefined {
  const exists = sqlite
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'media_worker_meta'")
    .get();
  if (!exists) return undefined;
  return sqlite.prepare("SELECT value FROM media_worker_meta WHERE name = 'ready_index'").pluck().get() as
    | string
    | undefined;
}

function setBuildState(sqlite: BetterSqlite3.Database, state: string): void {
  sqlite
    .prepare("INSERT OR REPLACE INTO media_worker_meta (name, value) VALUES ('ready_index', ?)")
    .run(state);
}

/**
 * Re-runs ensureReadyIndex when the schema changed since the last look (a migration may have
 * dropped the triggers): one `PRAGMA schema_version` per call otherwise.
 */
export class ReadyIndexGuard {
  private readonly schemaVersion: BetterSqlite3.Statement;
  private checkedAt: number | undefined;

  constructor(private readonly sqlite: BetterSqlite3.Database) {
    this.schemaVersion = sqlite.prepare('PRAGMA schema_version').pluck();
  }

  check(): void {
    const version = this.schemaVersion.get() as number;
    if (version === this.checkedAt) return;
    ensureReadyIndex(this.sqlite);
    this.checkedAt = this.schemaVersion.get() as number;
  }
}
