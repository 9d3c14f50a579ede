/** The store a DATABASE_URL names: PostgreSQL for postgres:// URLs, SQLite for anything else. */
import type { JobStore, StoreOpenOptions } from './job-store.js';
import { isPostgresUrl } from './postgres/url.js';

/** Only the store in use is loaded: a SQLite worker never loads the PostgreSQL client, nor the reverse. */
export async function openJobStore(databaseUrl: string, options: StoreOpenOptions): Promise<JobStore> {
  if (isPostgresUrl(databaseUrl)) {
    const { PostgresJobStore } = await import('./postgres/postgres-job-store.js');
    return PostgresJobStore.open(databaseUrl, options);
  }
  const { SqliteJobStore } = await import('./sqlite/sqlite-job-store.js');
  return SqliteJobStore.open(databaseUrl, options);
}
