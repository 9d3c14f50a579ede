/** The store a DATABASE_URL names: PostgreSQL for postgres:// URLs, SQLite for anything else. */
import type { JobStore, StoreOpenOptions } from './job-store.js';
import { PostgresJobStore } from './postgres/postgres-job-store.js';
import { isPostgresUrl } from './postgres/url.js';
import { SqliteJobStore } from './sqlite/sqlite-job-store.js';

export async function openJobStore(databaseUrl: string, options: StoreOpenOptions): Promise<JobStore> {
  if (isPostgresUrl(databaseUrl)) return PostgresJobStore.open(databaseUrl, options);
  return SqliteJobStore.open(databaseUrl, options);
}
