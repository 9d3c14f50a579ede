/** The store for a DATABASE_URL. Only SQLite today; a postgres:// URL will pick the PostgreSQL store. */
import type { JobStore, StoreOpenOptions } from './job-store.js';
import { SqliteJobStore } from './sqlite/sqlite-job-store.js';

export function openJobStore(databaseUrl: string, options: StoreOpenOptions): JobStore {
  return SqliteJobStore.open(databaseUrl, options);
}
