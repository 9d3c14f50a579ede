/**
 * Where a job is claimed on PostgreSQL: one statement, one round trip. For each task type served,
 * the head of its queue in the ready index (an index seek on media_worker_ready_order), skipping
 * jobs another daemon is claiming this instant (`FOR UPDATE … SKIP LOCKED` on the job's row);
 * the best of those heads is marked `claimed` and leased in the same statement. The trigger on
 * `jobs` takes the job out of the ready index as it leaves `queued`.
 *
 * The lock is taken on the `jobs` row, not the ready row: the API changing a queued job locks that
 * row first and then (through the trigger) the ready row, and so does the claim, so the two never
 * wait for each other in a circle.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { ClaimedJob, ClaimRequest } from '../job-store.js';
import { type ClaimedRow, claimedJobOf } from '../rows.js';
import { runPrepared } from './prepared.js';
import type { Connections } from './statements.js';

export async function claimNextJob(
  { db, pool }: Connections,
  { workerId, taskTypes, leaseMs }: ClaimRequest,
): Promise<ClaimedJob | undefined> {
  if (taskTypes.length === 0) return undefined;
  const now = Date.now();
  const token = randomUUID();
  const query = sql<ClaimedRow>`
    WITH candidate AS (
      SELECT head.job_id
      FROM unnest(${[...taskTypes]}::varchar[]) AS served(task_type)
      CROSS JOIN LATERAL (
        SELECT r.job_id, r.priority, r.created_at, r.id
        FROM media_worker_ready r
        JOIN jobs j ON j.job_id = r.job_id
        WHERE r.task_type = served.task_type
          AND (r.not_before IS NULL OR r.not_before <= ${now})
          AND j.status = 'queued'
        ORDER BY r.priority DESC, r.created_at, r.id
        LIMIT 1
        FOR UPDATE OF j SKIP LOCKED
      ) head
      ORDER BY head.priority DESC, head.created_at, head.id
      LIMIT 1
    ),
    taken AS (
      UPDATE jobs SET status = 'claimed'
      FROM candidate
      WHERE jobs.job_id = candidate.job_id
      RETURNING jobs.id, jobs.job_id, jobs.task_type, jobs.input_files, jobs.retry_count, jobs.max_retries
    ),
    leased AS (
      INSERT INTO worker_job_state (job_id, worker_id, lease_token, lease_expires_at, not_before, last_error)
      SELECT job_id, ${workerId}, ${token}, ${now + leaseMs}::bigint, NULL, NULL FROM taken
      ON CONFLICT (job_id) DO UPDATE SET
        worker_id = EXCLUDED.worker_id,
        lease_token = EXCLUDED.lease_token,
        lease_expires_at = EXCLUDED.lease_expires_at,
        not_before = NULL
    )
    SELECT * FROM taken`;
  const { rows } = await runPrepared<ClaimedRow>(pool, query.compile(db));
  const row = rows[0];
  return row && claimedJobOf(row, token);
}
