/** SQLite DDL: the API's tables exactly as docs/media_store-v1.sql has them, then the worker's own. */

export const API_TABLES_DDL = `
CREATE TABLE IF NOT EXISTS jobs (
	id INTEGER NOT NULL,
	job_id VARCHAR NOT NULL,
	task_type VARCHAR NOT NULL,
	input_file_source VARCHAR NOT NULL,
	input_file_path VARCHAR NOT NULL,
	input_files TEXT NOT NULL,
	output_files TEXT NOT NULL,
	status VARCHAR NOT NULL,
	progress INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	started_at BIGINT,
	completed_at BIGINT,
	task_output TEXT,
	error_message TEXT,
	retry_count INTEGER NOT NULL,
	max_retries INTEGER NOT NULL,
	created_by VARCHAR,
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_jobs_job_id ON jobs (job_id);
CREATE INDEX IF NOT EXISTS ix_jobs_created_by ON jobs (created_by);
CREATE INDEX IF NOT EXISTS ix_jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS ix_jobs_created_at ON jobs (created_at);

CREATE TABLE IF NOT EXISTS queue_entries (
	id INTEGER NOT NULL,
	job_id VARCHAR NOT NULL,
	priority INTEGER NOT NULL,
	enqueued_at BIGINT NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_queue_entries_enqueued_at ON queue_entries (enqueued_at);
CREATE UNIQUE INDEX IF NOT EXISTS ix_queue_entries_job_id ON queue_entries (job_id);
`;

/**
 * Finished jobs by status and when they finished, for the dashboard's throughput and its lists of
 * recent failures. Partial, so the API's inserts (completed_at NULL) and the claims never touch it:
 * only a job's end does.
 */
export const FINISHED_INDEX_DDL = `
CREATE INDEX IF NOT EXISTS media_worker_finished ON jobs (status, completed_at) WHERE completed_at IS NOT NULL;
`;

/**
 * The worker's own tables (the ready index has its own, in ready-index.ts). `worker_job_state`
 * keeps, per job it touched, the lease and the retry schedule; `media_worker_meta` which layout of
 * the ready index is in place. WITHOUT ROWID: both are only ever reached by their key.
 */
export const WORKER_TABLES_DDL = `
CREATE TABLE IF NOT EXISTS worker_job_state (
	job_id VARCHAR NOT NULL PRIMARY KEY,
	worker_id VARCHAR,
	lease_token VARCHAR,
	lease_expires_at BIGINT,
	not_before BIGINT,
	last_error TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS media_worker_cancel (
	job_id VARCHAR NOT NULL,
	lease_token VARCHAR NOT NULL,
	requested_at BIGINT NOT NULL,
	PRIMARY KEY (job_id, lease_token)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS media_worker_meta (
	name VARCHAR NOT NULL PRIMARY KEY,
	value VARCHAR
) WITHOUT ROWID;
`;

/** The tables WORKER_TABLES_DDL creates. */
export const WORKER_TABLES = [...WORKER_TABLES_DDL.matchAll(/CREATE TABLE IF NOT EXISTS (\w+)/g)].map(
  ([, table]) => table as string,
);

/**
 * Objects earlier versions of the worker created: two indexes for a claim that read every queued
 * job, and a ready index kept by triggers on inserts too. Left in place they would only slow the
 * API's inserts (and a stale priority copy would misorder the queue).
 */
export const RETIRED_DDL = `
DROP INDEX IF EXISTS media_worker_jobs_queued;
DROP INDEX IF EXISTS media_worker_queue_priority;
DROP TRIGGER IF EXISTS media_worker_ready_job_added;
DROP TRIGGER IF EXISTS media_worker_ready_entry_added;
DROP TABLE IF EXISTS media_worker_priority;
DROP INDEX IF EXISTS media_worker_jobs_finished;
`;
