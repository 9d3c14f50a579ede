/**
 * Where a job is claimed. One short BEGIN IMMEDIATE transaction: the jobs that arrived since the
 * last claim are read into the ready index (a few; more are read before, in chunks), retries whose
 * backoff is over join the claim order, the first job in that order is marked `claimed`, and a
 * lease is granted. Each
 * step is an index seek on the ready index (ready-index.ts), so the write lock is held for the same
 * few tens of microseconds at a thousand queued jobs as at a million. A read without the lock looks
 * first, so a daemon with nothing to do never takes the write lock the API needs.
 */
import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { ClaimedJob, ClaimRequest } from '../job-store.js';
import { claimedJobOf } from '../rows.js';
import { type PreparedStatement, param, prepareCompiled } from './prepared-statement.js';
import type { ReadyIndex } from './ready-index.js';
import { queryBuilder, type ReadyJob, type Statements } from './statements.js';

/** Ready rows a claim drops when their job is no longer queued (only if the triggers were bypassed). */
const MAX_STALE_PER_CLAIM = 100;
/** The claim found the ready index behind the tables: catch up outside the lock first. */
const BEHIND = Symbol('behind');

interface ClaimStatements {
  /** Whether a claim could find anything: a job ready now, or a retry whose backoff is over. */
  anythingToClaim: PreparedStatement<{ now: number }, { found: number }>;
  /** The first ready job in queue order among the task types, as the ready index has it. */
  best: PreparedStatement<Record<string, never>, ReadyJob>;
  /** Whether any job of these types is queued, including retries waiting out their backoff. */
  anyQueued: PreparedStatement<Record<string, never>, { queued: number }>;
  /** The earliest `not_before` among these types' retries in backoff. */
  nextRetryAt: PreparedStatement<Record<string, never>, { at: number | null }>;
}

/** The head of one task type's queue: an index seek on media_worker_ready_order. */
function headOf(taskType: string) {
  return queryBuilder
    .selectFrom('media_worker_ready')
    .select(['id', 'job_id', 'task_type', 'priority', 'created_at'])
    .where('task_type', '=', sql.lit(taskType))
    .where('not_before', 'is', null)
    .where('priority', 'is not', null)
    .orderBy('priority', 'desc')
    .orderBy('created_at')
    .orderBy('id')
    .limit(sql.lit(1));
}

/**
 * The best of the task types' heads. One seek per type, then the best of those few rows: a single
 * ORDER BY over `task_type IN (…)` would have to merge every type's queue.
 */
function bestOf(taskTypes: readonly string[]) {
  const [first, ...rest] = taskTypes.map((type) =>
    queryBuilder.selectFrom(headOf(type).as('head')).selectAll(),
  );
  if (!first) throw new Error('bestOf needs at least one task type');
  const heads = rest.reduce((union, head) => union.unionAll(head), first);
  return queryBuilder
    .selectFrom(heads.as('heads'))
    .select(['id', 'job_id', 'task_type'])
    .orderBy('priority', 'desc')
    .orderBy('created_at')
    .orderBy('id')
    .limit(sql.lit(1));
}

function buildClaimStatements(sqlite: BetterSqlite3.Database, taskTypes: readonly string[]): ClaimStatements {
  // Task types are fixed for a daemon's life, so they are literals and each head is its own seek.
  const best = bestOf(taskTypes);
  const due = queryBuilder
    .selectFrom('media_worker_ready')
    .select(sql.lit(1).as('due'))
    .where('not_before', 'is not', null)
    .where('not_before', '<=', param<number>('now'))
    .limit(sql.lit(1));
  const anythingToClaim = queryBuilder
    .selectNoFrom(sql.lit(1).as('found'))
    .where((eb) => eb.or([eb.exists(best), eb.exists(due)]));
  // Retries in backoff (media_worker_ready_delayed) and jobs whose priority is still to be looked
  // up (media_worker_ready_unranked): few, and only --drain asks.
  const types = taskTypes.map((type) => sql.lit(type));
  const waiting = queryBuilder
    .selectFrom('media_worker_ready')
    .select(sql.lit(1).as('waiting'))
    .where('not_before', 'is not', null)
    .where('task_type', 'in', types)
    .limit(sql.lit(1));
  const unranked = queryBuilder
    .selectFrom('media_worker_ready')
    .select(sql.lit(1).as('unranked'))
    .where('priority', 'is', null)
    .where('task_type', 'in', types)
    .limit(sql.lit(1));
  const anyQueued = queryBuilder
    .selectNoFrom(sql.lit(1).as('queued'))
    .where((eb) => eb.or([eb.exists(best), eb.exists(waiting), eb.exists(unranked)]));
  const nextRetryAt = queryBuilder
    .selectFrom('media_worker_ready')
    .select((eb) => eb.fn.min('not_before').as('at'))
    .where('not_before', 'is not', null)
    .where('task_type', 'in', types);
  return {
    nextRetryAt: prepareCompiled(sqlite, nextRetryAt.compile()),
    anythingToClaim: prepareCompiled(sqlite, anythingToClaim.compile()),
    best: prepareCompiled(sqlite, best.compile()),
    anyQueued: prepareCompiled(sqlite, anyQueued.compile()),
  };
}

/** Claims jobs for one SQLite connection; statements are prepared once per set of task types. */
export class SqliteClaimer {
  private readonly byTaskTypes = new Map<string, ClaimStatements>();
  /** After a claim that found a job, the next one skips the look without the lock: it likely finds one too. */
  private lastFoundNothing = true;
  private readonly promoteDue: PreparedStatement<{ now: number }, never>;
  private readonly dropReady: PreparedStatement<{ id: number }, never>;

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly statements: Statements,
    private readonly readyIndex: ReadyIndex,
  ) {
    this.promoteDue = prepareCompiled<never, { now: number }>(
      sqlite,
      queryBuilder
        .updateTable('media_worker_ready')
        .set({ not_before: null })
        .where('not_before', 'is not', null)
        .where('not_before', '<=', param<number>('now'))
        .compile(),
    );
    this.dropReady = prepareCompiled<never, { id: number }>(
      sqlite,
      queryBuilder.deleteFrom('media_worker_ready').where('id', '=', param<number>('id')).compile(),
    );
  }

  async claim(request: ClaimRequest): Promise<ClaimedJob | undefined> {
    if (request.taskTypes.length === 0) return undefined;
    const claim = this.statementsFor(request.taskTypes);
    if (this.lastFoundNothing) {
      this.readyIndex.sweepWhileIdle();
      await this.readyIndex.catchUp();
      if (!claim.anythingToClaim.get({ now: Date.now() })) return undefined;
    }
    let claimed = this.claimInTransaction(request, claim, { unlessBehind: true });
    if (claimed === BEHIND) {
      // Many jobs arrived since the last look (an import): read them outside the lock, in chunks,
      // then claim. Reading them all first keeps the order exact (a higher priority may hide
      // among the newest); a hundred thousand take a few seconds, once.
      await this.readyIndex.catchUp();
      claimed = this.claimInTransaction(request, claim, { unlessBehind: false });
    }
    this.lastFoundNothing = claimed === undefined;
    return claimed === BEHIND ? undefined : claimed;
  }

  private claimInTransaction(
    { workerId, leaseMs }: ClaimRequest,
    claim: ClaimStatements,
    { unlessBehind }: { unlessBehind: boolean },
  ): ClaimedJob | undefined | typeof BEHIND {
    return this.sqlite
      .transaction((): ClaimedJob | undefined | typeof BEHIND => {
        const caughtUp = this.readyIndex.keepUpWithin();
        if (unlessBehind && !caughtUp) return BEHIND;
        const now = Date.now();
        this.promoteDue.run({ now });
        for (let stale = 0; stale <= MAX_STALE_PER_CLAIM; stale += 1) {
          const best = claim.best.get({});
          if (!best) return undefined;
          const row = this.statements.takeJob.get(best);
          if (!row) {
            this.dropReady.run({ id: best.id });
            continue;
          }
          const token = randomUUID();
          this.statements.grantLease.run({ jobId: row.job_id, workerId, token, expiresAt: now + leaseMs });
          return claimedJobOf(row, token);
        }
        return undefined;
      })
      .immediate();
  }

  async hasQueuedJobs(taskTypes: readonly string[]): Promise<boolean> {
    if (taskTypes.length === 0) return false;
    await this.readyIndex.catchUp();
    return this.statementsFor(taskTypes).anyQueued.get({}) !== undefined;
  }

  nextRetryAt(taskTypes: readonly string[]): number | undefined {
    if (taskTypes.length === 0) return undefined;
    return this.statementsFor(taskTypes).nextRetryAt.get({})?.at ?? undefined;
  }

  private statementsFor(taskTypes: readonly string[]): ClaimStatements {
    const key = JSON.stringify(taskTypes);
    let statements = this.byTaskTypes.get(key);
    if (!statements) {
      statements = buildClaimStatements(this.sqlite, taskTypes);
      this.byTaskTypes.set(key, statements);
    }
    return statements;
  }
}
