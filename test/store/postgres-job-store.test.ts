import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { StartupError } from '../../worker/errors.js';
import { TRIGGER_NAMES } from '../../worker/store/postgres/ddl.js';
import { PostgresJobStore } from '../../worker/store/postgres/postgres-job-store.js';
import { connectionStringOf, isPostgresUrl } from '../../worker/store/postgres/url.js';
import { createTestDatabase, startPrivateServer, type TestDatabase } from '../helpers/postgres.js';
import { waitFor } from '../helpers/workspace.js';
import { type ApiJob, type ApiSide, describeJobStoreContract } from './job-store-contract.js';

const INSERT_JOBS = `
  INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
    status, progress, created_at, started_at, completed_at, task_output, error_message, retry_count,
    max_retries, created_by)
  SELECT job_id, task_type, 'upload', 'in.txt', '[{"path":"in.txt"}]', '[]', 'queued', 0, created_at,
    NULL, NULL, NULL, NULL, 0, max_retries, NULL
  FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::int[]) AS j(job_id, task_type, created_at, max_retries)`;
const INSERT_ENTRIES = `
  INSERT INTO queue_entries (job_id, priority, enqueued_at)
  SELECT job_id, priority, $3 FROM unnest($1::varchar[], $2::int[]) AS q(job_id, priority)`;

/** The API service's writes, on a connection of its own, each statement its own transaction. */
async function apiConnection(
  databaseUrl: string,
): Promise<ApiSide & { raw: pg.Client; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const insertRows = async (jobs: readonly ApiJob[]) => {
    await client.query(INSERT_JOBS, [
      jobs.map((job) => job.jobId),
      jobs.map((job) => job.taskType),
      jobs.map((job) => job.createdAt ?? Date.now()),
      jobs.map((job) => job.maxRetries ?? 3),
    ]);
  };
  const insertEntries = async (jobs: readonly ApiJob[]) => {
    const entered = jobs.filter((job) => job.priority !== null);
    await client.query(INSERT_ENTRIES, [
      entered.map((job) => job.jobId),
      entered.map((job) => job.priority ?? 5),
      Date.now(),
    ]);
  };
  return {
    async insertJob(job) {
      await insertRows([job]);
      await insertEntries([job]);
    },
    async insertJobs(jobs) {
      await client.query('BEGIN');
      for (let start = 0; start < jobs.length; start += 5000) {
        const chunk = jobs.slice(start, start + 5000);
        await insertRows(chunk);
        await insertEntries(chunk);
      }
      await client.query('COMMIT');
    },
    async addQueueEntry(jobId, priority) {
      await client.query('INSERT INTO queue_entries (job_id, priority, enqueued_at) VALUES ($1, $2, $3)', [
        jobId,
        priority,
        Date.now(),
      ]);
    },
    async setPriority(jobId, priority) {
      await client.query('UPDATE queue_entries SET priority = $1 WHERE job_id = $2', [priority, jobId]);
    },
    async deleteQueueEntry(jobId) {
      await client.query('DELETE FROM queue_entries WHERE job_id = $1', [jobId]);
    },
    async deleteJob(jobId) {
      await client.query('BEGIN');
      await client.query('DELETE FROM queue_entries WHERE job_id = $1', [jobId]);
      await client.query('DELETE FROM jobs WHERE job_id = $1', [jobId]);
      await client.query('COMMIT');
    },
    async setStatus(jobId, status) {
      await client.query('UPDATE jobs SET status = $1 WHERE job_id = $2', [status, jobId]);
    },
    raw: client,
    close: () => client.end(),
  };
}

describeJobStoreContract('PostgresJobStore', async () => {
  const database = await createTestDatabase();
  const store = await PostgresJobStore.open(database.url, { ensureSchema: true });
  const api = await apiConnection(database.url);
  return {
    store,
    api,
    openAnotherStore: () => PostgresJobStore.open(database.url, { ensureSchema: true }),
    async close() {
      await api.close();
      await store.close();
      await database.drop();
    },
  };
});

describe('PostgresJobStore on PostgreSQL', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    await database.drop();
  });

  test('DATABASE_URL in the forms SQLAlchemy and libpq write selects PostgreSQL', () => {
    for (const url of [
      'postgresql://u:p@db:5432/media',
      'postgres://db/media',
      'postgresql+psycopg2://u:p@db/media?sslmode=require',
      'POSTGRESQL+asyncpg://db/media',
    ]) {
      assert.equal(isPostgresUrl(url), true, url);
    }
    assert.equal(
      connectionStringOf('postgresql+psycopg2://u:p@db/media?sslmode=require'),
      'postgresql://u:p@db/media?sslmode=require',
    );
    assert.equal(isPostgresUrl('sqlite:////srv/media_store.db'), false);
    assert.equal(isPostgresUrl('/srv/media_store.db'), false);
  });

  test('a foreign jobs table is refused and left as it was', async () => {
    const foreign = await createTestDatabase();
    const client = new pg.Client({ connectionString: foreign.url });
    await client.connect();
    try {
      await client.query('CREATE TABLE jobs (id SERIAL PRIMARY KEY, name TEXT)');
      await assert.rejects(PostgresJobStore.open(foreign.url, { ensureSchema: true }), (error: Error) => {
        assert.ok(error instanceof StartupError);
        assert.match(error.message, /another shape: missing column\(s\) job_id, task_type/);
        return true;
      });
      const { rows } = await client.query(
        "SELECT count(*)::int AS tables FROM information_schema.tables WHERE table_schema = 'public'",
      );
      assert.equal(rows[0].tables, 1, 'nothing else was created');
    } finally {
      await client.end();
      await foreign.drop();
    }
  });

  test('daemons starting together install the schema once, and a restart changes nothing', async () => {
    const stores = await Promise.all(
      [1, 2, 3, 4].map(() => PostgresJobStore.open(database.url, { ensureSchema: true })),
    );
    for (const store of stores) await store.close();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'media_worker%' ORDER BY tgname",
      );
      assert.deepEqual(
        rows.map((row) => row.tgname),
        [...TRIGGER_NAMES],
      );
    } finally {
      await client.end();
    }
  });

  test('jobs queued before the worker first opened the database are in its queue, in order', async () => {
    const fresh = await createTestDatabase();
    const api = new pg.Client({ connectionString: fresh.url });
    await api.connect();
    try {
      // The API's tables as its models create them, with jobs in them, before any worker ran.
      const { API_TABLES_DDL } = await import('../../worker/store/postgres/ddl.js');
      await api.query(API_TABLES_DDL);
      const side = await apiConnection(fresh.url);
      const base = Date.now() - 1000;
      await side.insertJob({ jobId: 'old-low', taskType: 't', priority: 1, createdAt: base });
      await side.insertJob({ jobId: 'old-high', taskType: 't', priority: 8, createdAt: base + 1 });
      await side.close();
      const store = await PostgresJobStore.open(fresh.url, { ensureSchema: true });
      try {
        const first = await store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 });
        const second = await store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 });
        assert.deepEqual([first?.jobId, second?.jobId], ['old-high', 'old-low']);
      } finally {
        await store.close();
      }
    } finally {
      await api.end();
      await fresh.drop();
    }
  });

  test('TLS is set in the URL: verified against the CA it names, refused without it', async () => {
    const server = await startPrivateServer({ tls: true });
    try {
      const verified = `${server.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(server.certificate)}`;
      const store = await PostgresJobStore.open(verified, { ensureSchema: true });
      try {
        await store.insertJob({
          jobId: 'over-tls',
          taskType: 't',
          inputFileSource: 'upload',
          inputFiles: [{ path: 'x' }],
          priority: 5,
          maxRetries: 1,
          createdBy: null,
        });
        assert.equal(
          (await store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 }))?.jobId,
          'over-tls',
        );
      } finally {
        await store.close();
      }
      // The certificate is self-signed: without its CA the server cannot be verified.
      await assert.rejects(
        PostgresJobStore.open(`${server.url}?sslmode=verify-full`, { ensureSchema: false }),
        (error: Error) => {
          assert.ok(error instanceof StartupError);
          assert.match(error.message, /self-signed certificate/);
          return true;
        },
      );
      // And the server lets in TLS only.
      await assert.rejects(
        PostgresJobStore.open(`${server.url}?sslmode=disable`, { ensureSchema: false }),
        /no pg_hba.conf entry/,
      );
    } finally {
      await server.remove();
    }
  });

  test('triggers a migration dropped are put back at the next start, and TRUNCATE empties the queue', async () => {
    const fresh = await createTestDatabase();
    const api = await apiConnection(fresh.url);
    try {
      (await PostgresJobStore.open(fresh.url, { ensureSchema: true })).close();
      // An API migration that rebuilds `jobs` loses the triggers on it.
      await api.raw.query('DROP TRIGGER media_worker_job_added ON jobs');
      await api.insertJob({ jobId: 'during-migration', taskType: 't', priority: 5 });
      const store = await PostgresJobStore.open(fresh.url, { ensureSchema: true });
      try {
        await api.insertJob({ jobId: 'after-restart', taskType: 't', priority: 5 });
        const claimed = [];
        for (
          let job = await store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 });
          job;
        ) {
          claimed.push(job.jobId);
          job = await store.claimNextJob({ workerId: 'w', taskTypes: ['t'], leaseMs: 60_000 });
        }
        assert.deepEqual(claimed, ['during-migration', 'after-restart']);
        await api.insertJob({ jobId: 'truncated', taskType: 't', priority: 5 });
        assert.equal(await store.hasQueuedJobs(['t']), true);
        await api.raw.query('TRUNCATE jobs, queue_entries');
        assert.equal(await store.hasQueuedJobs(['t']), false);
        assert.equal(await store.nextRetryAt(['t']), undefined);
      } finally {
        await store.close();
      }
    } finally {
      await api.close();
      await fresh.drop();
    }
  });

  test('the API may write as a role with no rights on the worker’s tables', async () => {
    const role = `media_worker_api_${process.pid}`;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await (await PostgresJobStore.open(database.url, { ensureSchema: true })).close();
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, queue_entries TO ${role}`);
      await admin.query(`GRANT USAGE ON SEQUENCE jobs_id_seq, queue_entries_id_seq TO ${role}`);
      const url = new URL(database.url);
      url.username = role;
      const api = await apiConnection(url.toString());
      try {
        await api.insertJob({ jobId: 'from-api-role', taskType: 'api-role', priority: 7 });
        await api.setPriority('from-api-role', 8);
        await api.setStatus('from-api-role', 'error');
        await api.setStatus('from-api-role', 'queued');
      } finally {
        await api.close();
      }
      const store = await PostgresJobStore.open(database.url, { ensureSchema: false });
      try {
        assert.equal(
          (await store.claimNextJob({ workerId: 'w', taskTypes: ['api-role'], leaseMs: 60_000 }))?.jobId,
          'from-api-role',
        );
      } finally {
        await store.close();
      }
    } finally {
      await admin.query(`DROP OWNED BY ${role}`).catch(() => {});
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });

  test('an insert notifies the listening store, and a listener whose connection is killed comes back', async () => {
    const store = await PostgresJobStore.open(database.url, { ensureSchema: true });
    const api = await apiConnection(database.url);
    const controller = new AbortController();
    let changes = 0;
    try {
      store.watchQueue(() => {
        changes += 1;
      }, controller.signal);
      // The first report says the listener is in place (it looks once on every connect).
      await waitFor(() => changes === 1, 'the listener to connect');
      await api.insertJob({ jobId: 'notified', taskType: 't', priority: 5 });
      await waitFor(() => changes === 2, 'the insert to be notified');
      await api.raw.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()",
      );
      await waitFor(() => changes === 3, 'the listener to reconnect');
      await api.insertJob({ jobId: 'notified-again', taskType: 't', priority: 5 });
      await waitFor(() => changes === 4, 'the next insert to be notified');
    } finally {
      controller.abort();
      await api.close();
      await store.close();
    }
  });
});
