/**
 * Installing the schema on a PostgreSQL database: the API's tables when they are missing (a
 * `jobs` of another shape is refused untouched), then the worker's own tables, the ready index and
 * its triggers. Daemons starting together take turns on an advisory lock; a daemon that finds the
 * current layout in place changes nothing, so a restart never locks the API's tables.
 */
import { type Kysely, sql } from 'kysely';
import { StartupError } from '../../errors.js';
import { type Database, JOBS_COLUMNS } from '../schema.js';
import {
  API_TABLES_DDL,
  POSTGRES_LAYOUT,
  REBUILD_READY_DDL,
  SCHEMA_LOCK_KEY,
  TRIGGER_NAMES,
  TRIGGERS_DDL,
  WORKER_TABLES_DDL,
} from './ddl.js';

/** Whether the API's tables were created here (the database had none). */
export async function ensurePostgresSchema(db: Kysely<Database>): Promise<{ createdApiTables: boolean }> {
  await refuseForeignJobsTable(db);
  if (await isInstalled(db)) return { createdApiTables: false };
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`.execute(trx);
    const createdApiTables = !(await refuseForeignJobsTable(trx));
    await sql.raw(API_TABLES_DDL).execute(trx);
    await sql.raw(WORKER_TABLES_DDL).execute(trx);
    if (await isInstalled(trx)) return { createdApiTables };
    // Creating the triggers locks `jobs` and `queue_entries` against writes until this
    // transaction ends, so no job slips between the rebuild below and the triggers.
    await sql.raw(TRIGGERS_DDL).execute(trx);
    await sql.raw(REBUILD_READY_DDL).execute(trx);
    await sql`
      INSERT INTO media_worker_meta (name, value) VALUES ('layout', ${POSTGRES_LAYOUT})
      ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`.execute(trx);
    return { createdApiTables };
  });
}

/**
 * This layout, with every trigger in place: a migration that rebuilt an API table, or a restore of
 * it, drops our triggers, and new jobs would never reach the ready index.
 */
async function isInstalled(db: Kysely<Database>): Promise<boolean> {
  if ((await installedLayout(db)) !== POSTGRES_LAYOUT) return false;
  const { rows } = await sql<{ tgname: string }>`
    SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE NOT t.tgisinternal AND c.relname IN ('jobs', 'queue_entries')
      AND c.relnamespace = current_schema()::regnamespace`.execute(db);
  const present = new Set(rows.map((row) => row.tgname));
  return TRIGGER_NAMES.every((name) => present.has(name));
}

async function installedLayout(db: Kysely<Database>): Promise<string | undefined> {
  const { rows } = await sql<{ value: string | null }>`
    SELECT value FROM media_worker_meta WHERE name = 'layout'`
    .execute(db)
    .catch((error: { code?: string }) => {
      if (error.code === '42P01') return { rows: [] }; // undefined_table: nothing installed yet
      throw error;
    });
  return rows[0]?.value ?? undefined;
}

/** Whether a `jobs` table is there; throws when it is not the API's. */
async function refuseForeignJobsTable(db: Kysely<Database>): Promise<boolean> {
  const { rows } = await sql<{ column_name: string }>`
    SELECT column_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'jobs'`.execute(db);
  if (rows.length === 0) return false;
  const existing = new Set(rows.map((row) => row.column_name));
  const missing = JOBS_COLUMNS.filter((column) => !existing.has(column));
  if (missing.length > 0) {
    throw new StartupError(
      `table 'jobs' in this database has another shape: missing column(s) ${missing.join(', ')}; ` +
        'refusing to start (see media_store-v1.sql for the expected DDL)',
    );
  }
  return true;
}
