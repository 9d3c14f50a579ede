/**
 * PostgreSQL DDL: the API's tables as its SQLAlchemy models create them on PostgreSQL (SERIAL ids,
 * VARCHAR, TEXT for JSON, BIGINT milliseconds, the same `ix_…` indexes), then the worker's own.
 *
 * The ready index is kept by triggers here, not by high-water marks as on SQLite: PostgreSQL
 * commits SERIAL ids out of order, so a mark could step over a job committed late. The triggers
 * run inside the API's own transactions, so the index is exact: a job is in `media_worker_ready`
 * exactly while it is `queued`, with its queue entry's priority (5 without one) and the retry
 * backoff the worker set. An insert also notifies `media_worker_queue`, which wakes the daemons.
 */
import { DEFAULT_PRIORITY } from '../schema.js';
import { FINISHED_INDEX_DDL, API_TABLES_DDL as SQLITE_API_TABLES_DDL } from '../sqlite/ddl.js';

/** Bumped whenever the objects below change: a daemon finding another layout installs this one. */
export const POSTGRES_LAYOUT = 'postgres ready index, layout 5';
export const QUEUE_CHANNEL = 'media_worker_queue';
/** pg_advisory_xact_lock key, so that daemons starting together install the schema once. */
export const SCHEMA_LOCK_KEY = 0x6d656469; // "medi"

/**
 * The API's models give the same DDL on PostgreSQL as on SQLite (docs/media_store-v1.sql), except
 * that an integer primary key becomes SERIAL.
 */
export const API_TABLES_DDL = SQLITE_API_TABLES_DDL.replace(
  /^\tid INTEGER NOT NULL,$/gm,
  '\tid SERIAL NOT NULL,',
);

export const WORKER_TABLES_DDL = `
CREATE TABLE IF NOT EXISTS worker_job_state (
	job_id VARCHAR NOT NULL PRIMARY KEY,
	worker_id VARCHAR,
	lease_token VARCHAR,
	lease_expires_at BIGINT,
	not_before BIGINT,
	last_error TEXT
);

CREATE TABLE IF NOT EXISTS media_worker_cancel (
	job_id VARCHAR NOT NULL,
	lease_token VARCHAR NOT NULL,
	requested_at BIGINT NOT NULL,
	PRIMARY KEY (job_id, lease_token)
);

CREATE TABLE IF NOT EXISTS media_worker_meta (
	name VARCHAR NOT NULL PRIMARY KEY,
	value VARCHAR
);
DROP INDEX IF EXISTS media_worker_jobs_finished;
${FINISHED_INDEX_DDL}

CREATE TABLE IF NOT EXISTS media_worker_ready (
	job_id VARCHAR NOT NULL PRIMARY KEY,
	id INTEGER NOT NULL,
	task_type VARCHAR NOT NULL,
	priority INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	not_before BIGINT
);
CREATE INDEX IF NOT EXISTS media_worker_ready_order
	ON media_worker_ready (task_type, priority DESC, created_at, id);
CREATE INDEX IF NOT EXISTS media_worker_ready_delayed
	ON media_worker_ready (task_type, not_before) WHERE not_before IS NOT NULL;
`;

/** The row a queued job has in the ready index: its priority and its retry backoff looked up. */
const READY_ROW_OF_NEW = `
	INSERT INTO media_worker_ready (job_id, id, task_type, priority, created_at, not_before)
	VALUES (
		NEW.job_id, NEW.id, NEW.task_type,
		COALESCE((SELECT q.priority FROM queue_entries q WHERE q.job_id = NEW.job_id), ${DEFAULT_PRIORITY}),
		NEW.created_at,
		(SELECT s.not_before FROM worker_job_state s WHERE s.job_id = NEW.job_id)
	)
	ON CONFLICT (job_id) DO UPDATE SET
		id = EXCLUDED.id, task_type = EXCLUDED.task_type, priority = EXCLUDED.priority,
		created_at = EXCLUDED.created_at, not_before = EXCLUDED.not_before;`;

/**
 * The payload is empty on purpose: a notification only says "look". A task type in it could be
 * longer than NOTIFY allows, and the API's insert must never fail because of the worker.
 *
 * The functions run with the rights and the search_path of whoever installed them (the worker's
 * role), not of the API's role that fires them: the API's writes need no grant on the worker's
 * tables and find them whatever its own search_path.
 */
const RUN_AS_WORKER = 'SECURITY DEFINER SET search_path FROM CURRENT';

/** The triggers of ours on the API's tables; a database missing one gets them all again. */
export const TRIGGER_NAMES = [
  'media_worker_entries_truncated',
  'media_worker_entry_changed',
  'media_worker_job_added',
  'media_worker_job_removed',
  'media_worker_job_updated',
  'media_worker_jobs_truncated',
] as const;

export const TRIGGERS_DDL = `
CREATE OR REPLACE FUNCTION media_worker_job_changed() RETURNS trigger LANGUAGE plpgsql ${RUN_AS_WORKER} AS $$
BEGIN
	IF TG_OP <> 'INSERT' AND OLD.status = 'queued' THEN
		DELETE FROM media_worker_ready WHERE job_id = OLD.job_id;
	END IF;
	IF TG_OP <> 'DELETE' AND NEW.status = 'queued' THEN
		${READY_ROW_OF_NEW}
		PERFORM pg_notify('${QUEUE_CHANNEL}', '');
	END IF;
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION media_worker_entry_changed() RETURNS trigger LANGUAGE plpgsql ${RUN_AS_WORKER} AS $$
BEGIN
	IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.job_id IS DISTINCT FROM NEW.job_id) THEN
		UPDATE media_worker_ready SET priority = ${DEFAULT_PRIORITY}
		WHERE job_id = OLD.job_id AND priority <> ${DEFAULT_PRIORITY};
	END IF;
	IF TG_OP <> 'DELETE' THEN
		UPDATE media_worker_ready SET priority = NEW.priority
		WHERE job_id = NEW.job_id AND priority IS DISTINCT FROM NEW.priority;
	END IF;
	RETURN NULL;
END $$;

-- TRUNCATE fires no row trigger: a statement trigger empties the ready index with the table.
CREATE OR REPLACE FUNCTION media_worker_jobs_truncated() RETURNS trigger LANGUAGE plpgsql ${RUN_AS_WORKER} AS $$
BEGIN
	DELETE FROM media_worker_ready;
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION media_worker_entries_truncated() RETURNS trigger LANGUAGE plpgsql ${RUN_AS_WORKER} AS $$
BEGIN
	UPDATE media_worker_ready SET priority = ${DEFAULT_PRIORITY} WHERE priority <> ${DEFAULT_PRIORITY};
	RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS media_worker_jobs_truncated ON jobs;
DROP TRIGGER IF EXISTS media_worker_entries_truncated ON queue_entries;
DROP TRIGGER IF EXISTS media_worker_job_added ON jobs;
DROP TRIGGER IF EXISTS media_worker_job_updated ON jobs;
DROP TRIGGER IF EXISTS media_worker_job_removed ON jobs;
DROP TRIGGER IF EXISTS media_worker_entry_changed ON queue_entries;

CREATE TRIGGER media_worker_job_added AFTER INSERT ON jobs
	FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION media_worker_job_changed();
CREATE TRIGGER media_worker_job_updated
	AFTER UPDATE OF status, job_id, task_type, created_at ON jobs
	FOR EACH ROW WHEN (OLD.status = 'queued' OR NEW.status = 'queued')
	EXECUTE FUNCTION media_worker_job_changed();
CREATE TRIGGER media_worker_job_removed AFTER DELETE ON jobs
	FOR EACH ROW WHEN (OLD.status = 'queued') EXECUTE FUNCTION media_worker_job_changed();
CREATE TRIGGER media_worker_entry_changed AFTER INSERT OR UPDATE OR DELETE ON queue_entries
	FOR EACH ROW EXECUTE FUNCTION media_worker_entry_changed();
CREATE TRIGGER media_worker_jobs_truncated AFTER TRUNCATE ON jobs
	FOR EACH STATEMENT EXECUTE FUNCTION media_worker_jobs_truncated();
CREATE TRIGGER media_worker_entries_truncated AFTER TRUNCATE ON queue_entries
	FOR EACH STATEMENT EXECUTE FUNCTION media_worker_entries_truncated();
`;

/** Every queued job, as the triggers would have added it: run with the triggers installed, in one transaction. */
export const REBUILD_READY_DDL = `
DELETE FROM media_worker_ready;
INSERT INTO media_worker_ready (job_id, id, task_type, priority, created_at, not_before)
SELECT j.job_id, j.id, j.task_type, COALESCE(q.priority, ${DEFAULT_PRIORITY}), j.created_at, s.not_before
FROM jobs j
LEFT JOIN queue_entries q ON q.job_id = j.job_id
LEFT JOIN worker_job_state s ON s.job_id = j.job_id
WHERE j.status = 'queued'
ON CONFLICT (job_id) DO NOTHING;
`;
