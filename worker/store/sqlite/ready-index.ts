/**
 * The ready index: `media_worker_ready`, one row per queued job, ordered the way the claim takes
 * them (task type, priority descending, created_at, id), so a claim is one index seek whatever the
 * backlog. Priority lives in the API's `queue_entries`, so no index on `jobs` alone has that order.
 * Rows are keyed by the job's row id (`jobs.id`), not its UUID `job_id`: claims take jobs from the
 * head of each priority, where ids lie close together, so at a million queued a claim still writes
 * the pages the claims before it wrote.
 *
 * How it follows the API's tables:
 * - **New rows** (a job, a queue entry) are read by the worker itself, past high-water marks on
 *   the two tables' ids (`media_worker_marks`), in chunks of its own transactions before a claim.
 *   The API's inserts fire nothing of ours, so they cost the API what they always did, a bulk
 *   import in one transaction included.
 * - **Changes and deletes** are caught by triggers of ours, in the transaction that makes them: a
 *   job that becomes queued (a retry, a shutdown, the API putting a finished job back) or stops
 *   being queued (claimed, cancelled, deleted), a priority changed or an entry deleted. A job that
 *   becomes queued is written without its priority, which the next claim looks up; a changed or
 *   deleted entry is noted by `job_id` (`media_worker_reranks`), and the next claim looks its job's
 *   priority up again before it picks. Deleting the newest row lowers the mark, since SQLite then
 *   gives its id to the next insert.
 *
 * Two rules keep the triggers from ever hurting the API:
 * - A trigger reads and writes only the worker's tables and the table it is on, never the other
 *   API table: SQLite refuses `ALTER TABLE … RENAME` (the last step of a migration that rebuilds a
 *   table, as Alembic's batch mode does) while any trigger names a table that is missing then.
 * - Trigger bodies only delete from and update the worker's tables, and insert a row only where
 *   they have just deleted any row with its key: the API's statement's own conflict clause (`OR
 *   IGNORE`, `ON CONFLICT … DO UPDATE`, …) overrides a trigger's, so no trigger statement may be
 *   able to meet a conflict, and none can make an API write fail.
 *
 * A migration that rebuilds `jobs` or `queue_entries` drops that table's triggers with it. The
 * store notices through `PRAGMA schema_version`, puts them back and rebuilds the index before it
 * claims again, the same way a first start builds it: from the marks at the lowest id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type BetterSqlite3 from 'better-sqlite3';
import { DEFAULT_PRIORITY } from '../schema.js';

/** Jobs or queue entries read per transaction while catching up, so the API is never held up long. */
const CATCH_UP_CHUNK = 250;
/** As many read inside a claim's transaction, which must stay short. */
const IN_CLAIM_CHUNK = 32;
/** How often an idle daemon looks for queued jobs the index lacks (sweepWhileIdle). */
const SWEEP_INTERVAL_MS = 60_000;
/** Below every id: where the marks start when the index is built. */
const BEFORE_ANY_ID = Number.MIN_SAFE_INTEGER;
/** The layout of the objects below: a daemon that finds another one rebuilds them. */
const LAYOUT = 'ready index, layout 4';

const READY_DDL = `
CREATE TABLE media_worker_ready (
	id INTEGER PRIMARY KEY,
	job_id VARCHAR NOT NULL,
	task_type VARCHAR,
	priority INTEGER,
	created_at BIGINT,
	not_before BIGINT
);
CREATE INDEX media_worker_ready_order ON media_worker_ready (task_type, priority DESC, created_at, id)
	WHERE not_before IS NULL AND priority IS NOT NULL;
CREATE INDEX media_worker_ready_delayed ON media_worker_ready (not_before, task_type)
	WHERE not_before IS NOT NULL;
CREATE INDEX media_worker_ready_unranked ON media_worker_ready (task_type) WHERE priority IS NULL;
CREATE TABLE media_worker_reranks (
	job_id VARCHAR NOT NULL PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS media_worker_marks (
	name VARCHAR NOT NULL PRIMARY KEY,
	seen INTEGER
) WITHOUT ROWID;
`;

/** After a delete: if the newest rows are gone, the next insert reuses their ids, so see them again. */
const lowerMark = (mark: 'jobs' | 'entries', table: string) => `
  UPDATE media_worker_marks SET seen = (SELECT coalesce(max(id), ${BEFORE_ANY_ID}) FROM ${table})
  WHERE name = '${mark}' AND seen > (SELECT coalesce(max(id), ${BEFORE_ANY_ID}) FROM ${table});`;

/**
 * A queue entry changed or deleted: its job's priority is looked up again by the next claim, before
 * it picks a job. The ready index is keyed by the job's row id, which a trigger on `queue_entries`
 * cannot look up (it may not read `jobs`), hence the note by `job_id`.
 */
const rerank = (jobId: string) => `
  DELETE FROM media_worker_reranks WHERE job_id = ${jobId};
  INSERT INTO media_worker_reranks (job_id) VALUES (${jobId});`;

/** Each trigger with the API table it is on. */
const TRIGGERS: Readonly<Record<string, { table: 'jobs' | 'queue_entries'; body: string }>> = {
  media_worker_ready_job_changed: {
    table: 'jobs',
    body: `AFTER UPDATE OF id, status, job_id, task_type, created_at ON jobs
WHEN OLD.status = 'queued' OR NEW.status = 'queued' BEGIN
  DELETE FROM media_worker_ready WHERE id IN (OLD.id, NEW.id);
  INSERT INTO media_worker_ready (id, job_id, task_type, priority, created_at, not_before)
  SELECT NEW.id, NEW.job_id, NEW.task_type, NULL, NEW.created_at,
    (SELECT not_before FROM worker_job_state WHERE job_id = NEW.job_id)
  WHERE NEW.status = 'queued';
END`,
  },
  media_worker_ready_job_removed: {
    table: 'jobs',
    body: `AFTER DELETE ON jobs BEGIN
  DELETE FROM media_worker_ready WHERE id = OLD.id;${lowerMark('jobs', 'jobs')}
END`,
  },
  media_worker_ready_entry_changed: {
    table: 'queue_entries',
    body: `AFTER UPDATE OF job_id, priority ON queue_entries BEGIN${rerank('OLD.job_id')}${rerank('NEW.job_id')}
END`,
  },
  media_worker_ready_entry_removed: {
    table: 'queue_entries',
    body: `AFTER DELETE ON queue_entries BEGIN${rerank('OLD.job_id')}${lowerMark('entries', 'queue_entries')}
END`,
  },
};

/**
 * Keeps the ready index of one connection in step: `catchUp()` before a claim when idle or far
 * behind, `keepUpWithin()` inside the claim's transaction for what arrived since.
 */
export class ReadyIndex {
  private readonly schemaVersion: BetterSqlite3.Statement<[], number>;
  private checkedSchemaVersion: number | undefined;
  private statements: ReturnType<typeof prepareCatchUp> | undefined;
  private sweptAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly sqlite: BetterSqlite3.Database) {
    this.schemaVersion = sqlite.prepare('PRAGMA schema_version').pluck() as BetterSqlite3.Statement<
      [],
      number
    >;
  }

  /**
   * Builds the index if it is missing or its triggers were lost, then reads what is new, a chunk
   * per transaction. Between chunks the write lock stays free for as long as the chunk held it:
   * the API's busy handler looks for it only every few milliseconds and must not keep finding it
   * taken again.
   */
  async catchUp(): Promise<void> {
    const statements = this.ensureInPlace();
    while (statements.behind.get()) {
      const started = performance.now();
      this.sqlite.transaction(() => this.step(statements, CATCH_UP_CHUNK)).immediate();
      if (!statements.behind.get()) return;
      // An import being read writes page after page: checkpoint as it goes, so the API's next
      // commit does not find the WAL full and pay for the checkpoint itself.
      this.sqlite.pragma('wal_checkpoint(PASSIVE)');
      await sleep(Math.max(1, performance.now() - started));
    }
  }

  /**
   * Inside the claim's transaction: reads what arrived since the last look when it is a little
   * (the usual case: a job or two), and returns false when there is more, to be read by catchUp()
   * outside the lock.
   */
  keepUpWithin(): boolean {
    if (this.schemaVersion.get() !== this.checkedSchemaVersion || !this.statements) return false;
    if (this.statements.behind.get() === undefined) return true;
    this.step(this.statements, IN_CLAIM_CHUNK);
    return this.statements.behind.get() === undefined;
  }

  /**
   * A safety net, not the mechanism: queued jobs the index lacks although their id was read, or
   * holds under another job or task type (a row the API rewrote with `INSERT OR REPLACE` under its
   * old id, which fires no trigger of ours; a change made while a migration had dropped the
   * triggers). Looked for while the daemon is idle, at most once a minute, without the write lock;
   * none is the usual answer.
   */
  sweepWhileIdle(): void {
    const now = performance.now();
    if (now - this.sweptAt < SWEEP_INTERVAL_MS) return;
    this.sweptAt = now;
    const statements = this.ensureInPlace();
    const missing = statements.missing.all();
    if (missing.length === 0) return;
    this.sqlite
      .transaction(() => {
        for (const id of missing) statements.addMissing.run(id);
      })
      .immediate();
  }

  private ensureInPlace(): ReturnType<typeof prepareCatchUp> {
    const version = this.schemaVersion.get();
    if (version === this.checkedSchemaVersion && this.statements) return this.statements;
    ensureReadyIndex(this.sqlite);
    this.statements = prepareCatchUp(this.sqlite);
    // The version read before the look: a migration committed since is looked at next time. When
    // the look itself rebuilt the index, that costs one more cheap look.
    this.checkedSchemaVersion = version;
    return this.statements;
  }

  /**
   * One chunk of each: changed queue entries noted (their jobs' priorities forgotten, so that no
   * job is claimed at a priority it no longer has), new queue entries applied, new jobs copied,
   * missing priorities looked up.
   */
  private step(statements: ReturnType<typeof prepareCatchUp>, chunk: number): void {
    statements.unrankReranked.run(chunk);
    statements.clearReranks.run(chunk);
    // Entries before jobs: a job and its entry arriving together are then written once, the job
    // copied with the priority its entry gives it.
    const entriesSeen = statements.mark.get('entries') ?? BEFORE_ANY_ID;
    const entriesEnd = statements.entriesChunkEnd.get(entriesSeen, chunk);
    if (entriesEnd !== null && entriesEnd !== undefined) {
      statements.rankEntries.run(entriesSeen, entriesEnd);
      statements.setMark.run({ name: 'entries', seen: entriesEnd });
    }
    const jobsSeen = statements.mark.get('jobs') ?? BEFORE_ANY_ID;
    const jobsEnd = statements.jobsChunkEnd.get(jobsSeen, chunk);
    if (jobsEnd !== null && jobsEnd !== undefined) {
      statements.copyJobs.run(jobsSeen, jobsEnd);
      statements.setMark.run({ name: 'jobs', seen: jobsEnd });
    }
    statements.rank.run(chunk);
  }
}

/** The `jobs.id` of the job a row of `table` names by `job_id`, looked up in ix_jobs_job_id. */
const ROW_ID_OF = (table: string) => `(SELECT j.id FROM jobs j WHERE j.job_id = ${table}.job_id)`;

/** A job's priority as the API's queue entry gives it (for rows of media_worker_ready). */
const PRIORITY_OF_READY_ROW = `coalesce((SELECT q.priority FROM queue_entries q
  WHERE q.job_id = media_worker_ready.job_id), ${DEFAULT_PRIORITY})`;

/** Queued jobs as rows of the ready index, with their priority and retry schedule. */
const readyRowsOfQueuedJobs = (where: string, onConflict: 'IGNORE' | 'REPLACE' = 'IGNORE') => `
  INSERT OR ${onConflict} INTO media_worker_ready (job_id, id, task_type, priority, created_at, not_before)
  SELECT j.job_id, j.id, j.task_type, coalesce(q.priority, ${DEFAULT_PRIORITY}), j.created_at, s.not_before
  FROM jobs j
  LEFT JOIN queue_entries q ON q.job_id = j.job_id
  LEFT JOIN worker_job_state s ON s.job_id = j.job_id
  WHERE j.status = 'queued' AND ${where}`;

function prepareCatchUp(sqlite: BetterSqlite3.Database) {
  const chunkEnd = (table: string) =>
    sqlite
      .prepare(`SELECT max(id) FROM (SELECT id FROM ${table} WHERE id > ? ORDER BY id LIMIT ?)`)
      .pluck() as BetterSqlite3.Statement<[number, number], number | null>;
  const seen = (mark: string) => `(SELECT seen FROM media_worker_marks WHERE name = '${mark}')`;
  return {
    behind: sqlite.prepare(
      `SELECT 1 WHERE (SELECT max(id) FROM jobs) > ${seen('jobs')}
         OR (SELECT max(id) FROM queue_entries) > ${seen('entries')}
         OR EXISTS (SELECT 1 FROM media_worker_reranks)
         OR EXISTS (SELECT 1 FROM media_worker_ready WHERE priority IS NULL)`,
    ),
    mark: sqlite
      .prepare('SELECT seen FROM media_worker_marks WHERE name = ?')
      .pluck() as BetterSqlite3.Statement<[string], number>,
    setMark: sqlite.prepare('UPDATE media_worker_marks SET seen = @seen WHERE name = @name'),
    jobsChunkEnd: chunkEnd('jobs'),
    entriesChunkEnd: chunkEnd('queue_entries'),
    copyJobs: sqlite.prepare(readyRowsOfQueuedJobs('j.id > ? AND j.id <= ?')),
    // The jobs are looked up one by one (ROW_ID_OF), not joined: with statistics from ANALYZE
    // taken while media_worker_reranks was empty, SQLite planned a join as a scan of ix_jobs_job_id,
    // on every claim that had anything to read.
    rankEntries: sqlite.prepare(
      `UPDATE media_worker_ready SET priority = ${PRIORITY_OF_READY_ROW}
       WHERE id IN (SELECT ${ROW_ID_OF('q')} FROM queue_entries q WHERE q.id > ? AND q.id <= ?)`,
    ),
    unrankReranked: sqlite.prepare(
      `UPDATE media_worker_ready SET priority = NULL
       WHERE id IN (SELECT ${ROW_ID_OF('r')} FROM media_worker_reranks r ORDER BY r.job_id LIMIT ?)`,
    ),
    clearReranks: sqlite.prepare(
      `DELETE FROM media_worker_reranks
       WHERE job_id IN (SELECT job_id FROM media_worker_reranks ORDER BY job_id LIMIT ?)`,
    ),
    missing: sqlite
      .prepare(
        `SELECT j.id FROM jobs j
         WHERE j.status = 'queued' AND j.id <= ${seen('jobs')}
           AND NOT EXISTS (SELECT 1 FROM media_worker_ready r
                           WHERE r.id = j.id AND r.job_id = j.job_id AND r.task_type = j.task_type)
         LIMIT ${CATCH_UP_CHUNK}`,
      )
      .pluck() as BetterSqlite3.Statement<[], number>,
    // REPLACE: a row under this id may be another job's, which the API replaced in place.
    addMissing: sqlite.prepare(readyRowsOfQueuedJobs('j.id = ?', 'REPLACE')),
    rank: sqlite.prepare(
      `UPDATE media_worker_ready SET priority = ${PRIORITY_OF_READY_ROW}
       WHERE priority IS NULL
         AND id IN (SELECT id FROM media_worker_ready WHERE priority IS NULL LIMIT ?)`,
    ),
  };
}

/**
 * Creates the ready index, its marks and its triggers when they are missing, lost or of another
 * layout, with the marks at the lowest id so that the next catch-up reads every job. Cheap when
 * everything is in place; safe to run from several daemons at once.
 */
export function ensureReadyIndex(sqlite: BetterSqlite3.Database): void {
  if (isInPlace(sqlite)) return;
  sqlite
    .transaction(() => {
      // Looked at again under the write lock: another daemon may have done it meanwhile.
      if (isInPlace(sqlite)) return;
      for (const name of Object.keys(TRIGGERS)) sqlite.exec(`DROP TRIGGER IF EXISTS ${name}`);
      sqlite.exec(
        'DROP TABLE IF EXISTS media_worker_ready; DROP TABLE IF EXISTS media_worker_reranks; DROP TABLE IF EXISTS media_worker_marks;',
      );
      sqlite.exec(READY_DDL);
      for (const [name, { body }] of Object.entries(TRIGGERS)) sqlite.exec(`CREATE TRIGGER ${name} ${body}`);
      // Entries older than now are read with their jobs; only later ones need applying.
      sqlite.exec(`INSERT INTO media_worker_marks (name, seen) VALUES
        ('jobs', ${BEFORE_ANY_ID}),
        ('entries', (SELECT coalesce(max(id), ${BEFORE_ANY_ID}) FROM queue_entries))`);
      sqlite
        .prepare("INSERT OR REPLACE INTO media_worker_meta (name, value) VALUES ('ready_index', ?)")
        .run(LAYOUT);
    })
    .immediate();
}

function isInPlace(sqlite: BetterSqlite3.Database): boolean {
  return missingTriggers(sqlite).length === 0 && layoutOf(sqlite) === LAYOUT;
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

function layoutOf(sqlite: BetterSqlite3.Database): string | undefined {
  const exists = sqlite
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'media_worker_meta'")
    .get();
  if (!exists) return undefined;
  return sqlite.prepare("SELECT value FROM media_worker_meta WHERE name = 'ready_index'").pluck().get() as
    | string
    | undefined;
}
