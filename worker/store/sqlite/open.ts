/**
 * Opening media_store.db: the contract's pragmas, the API's tables when missing, the worker's own
 * and the ready index.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseBusyError, StartupError, WorkerFaultError } from '../../errors.js';
import type { StoreOpenOptions } from '../job-store.js';
import { JOBS_COLUMNS } from '../schema.js';
import { API_TABLES_DDL, FINISHED_INDEX_DDL, RETIRED_DDL, WORKER_TABLES, WORKER_TABLES_DDL } from './ddl.js';
import { translateSqliteError } from './errors.js';
import { type DatabaseFileIdentity, identifyFile, writeNothing } from './file.js';
import { ensureReadyIndex } from './ready-index.js';

export const BUSY_TIMEOUT_MS = 15_000;
const UPKEEP_CHECKPOINT_PAGES = 250;

/** Accepts SQLAlchemy-style `sqlite:////abs/path.db` and `sqlite:///relative.db`, or a plain path. */
export function sqlitePathFromUrl(databaseUrl: string): string {
  const match = /^sqlite(?:\+\w+)?:\/\/\/(.*)$/.exec(databaseUrl);
  if (match) return match[1] === '' ? ':memory:' : (match[1] as string);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(databaseUrl)) {
    throw new StartupError(
      `DATABASE_URL '${databaseUrl}' is not a SQLite URL (sqlite:////abs/path.db) or a path`,
    );
  }
  return databaseUrl;
}

export type OpenSqliteOptions = StoreOpenOptions;

export function openSqlite(
  databasePath: string,
  options: OpenSqliteOptions,
): { sqlite: Database.Database; file: DatabaseFileIdentity | undefined } {
  const inMemory = databasePath === ':memory:';
  if (!inMemory) {
    const directory = path.dirname(path.resolve(databasePath));
    if (!fs.existsSync(directory)) {
      throw new StartupError(
        `database directory ${directory} does not exist (from DATABASE_URL or CL_SERVER_DIR)`,
      );
    }
  }
  if (!inMemory && options.mustExist === true && !fs.existsSync(databasePath)) {
    throw new StartupError(
      `no database at ${path.resolve(databasePath)} (from DATABASE_URL or CL_SERVER_DIR); the worker or the API service creates it`,
    );
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  const sqlite = new Database(databasePath, {
    timeout: busyTimeoutMs,
    fileMustExist: options.mustExist === true,
  });
  // Before any pragma that writes (journal_mode = WAL would convert a stranger's file).
  if (!options.ensureSchema) refuseWithoutJobsTable(sqlite, databasePath);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
  sqlite.pragma('foreign_keys = ON');
  // A statement that fires a trigger inside a transaction keeps a statement journal: in memory,
  // not in a temporary file (measured: 4× faster writes inside a transaction; docs/design.md).
  sqlite.pragma('temp_store = MEMORY');
  // The worker writes most of the WAL, so it checkpoints it early and in small steps: the API's
  // connection (SQLite's default, 1,000 pages) then rarely finds it full at its commit and almost
  // never pays for a checkpoint, which was the slowest 1 % of its inserts (docs/design.md).
  if (options.upkeep) sqlite.pragma(`wal_autocheckpoint = ${UPKEEP_CHECKPOINT_PAGES}`);
  if (options.ensureSchema) {
    try {
      ensureSchema(sqlite);
      writeNothing(sqlite);
    } catch (error) {
      refuseUnwritable(error, sqlite, databasePath);
    }
  } else {
    createMissingWorkerTables(sqlite, databasePath);
  }
  return { sqlite, file: inMemory ? undefined : identifyFile(databasePath) };
}

/**
 * A store that does not create the schema (a runner, an operator's command, the dashboard) still
 * prepares statements on the worker's own tables. Nothing is written when they are in place; when
 * they are not (a database only the API has used) and cannot be created now, it says so.
 */
function createMissingWorkerTables(sqlite: Database.Database, databasePath: string): void {
  try {
    ensureWorkerTables(sqlite);
  } catch (error) {
    sqlite.close();
    throw new StartupError(
      `database ${path.resolve(databasePath)} lacks the worker's tables, and they could not be created now (${(error as Error).message}); start the daemon on it once, or check its permissions`,
    );
  }
}

/**
 * A connection opened on a file it cannot write stays read-only even once the file is writable
 * again, so a daemon must not start on one: it would claim nothing, ever. Busy means another
 * process writes, so the file is writable.
 */
function refuseUnwritable(error: unknown, sqlite: Database.Database, databasePath: string): void {
  const fault = translateSqliteError(error);
  if (fault instanceof DatabaseBusyError) return;
  if (!(fault instanceof WorkerFaultError)) throw error;
  sqlite.close();
  throw new StartupError(
    `database ${databasePath} cannot be written (${(error as Error).message}); check its permissions`,
  );
}

/** A store that does not create the schema needs the API's (or the daemon's) `jobs` table. */
function refuseWithoutJobsTable(sqlite: Database.Database, databasePath: string): void {
  let found: boolean;
  try {
    found =
      sqlite.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'jobs'").get() !==
      undefined;
  } catch (error) {
    sqlite.close();
    throw error;
  }
  if (found) return;
  sqlite.close();
  throw new StartupError(
    `database ${path.resolve(databasePath)} has no jobs table: it is not media_store.db, or neither the worker nor the API service has used it yet`,
  );
}

function ensureSchema(sqlite: Database.Database): void {
  const existing = sqlite.prepare("SELECT name FROM pragma_table_info('jobs')").pluck().all() as string[];
  if (existing.length > 0) {
    const missing = JOBS_COLUMNS.filter((column) => !existing.includes(column));
    if (missing.length > 0) {
      throw new StartupError(
        `table 'jobs' in this database has another shape: missing column(s) ${missing.join(', ')}; ` +
          'refusing to start (see media_store-v1.sql for the expected DDL)',
      );
    }
  }
  sqlite.exec(API_TABLES_DDL);
  ensureWorkerTables(sqlite);
  sqlite.exec(FINISHED_INDEX_DDL);
  sqlite.exec(RETIRED_DDL);
  ensureReadyIndex(sqlite);
}

/**
 * The worker's own tables, created when missing: a database only the API has used has none yet.
 * Looked for without the write lock, and written only when one is missing.
 */
function ensureWorkerTables(sqlite: Database.Database): void {
  const tables = new Set(sqlite.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all());
  if (WORKER_TABLES.every((table) => tables.has(table))) return;
  sqlite.transaction(() => sqlite.exec(WORKER_TABLES_DDL)).immediate();
}
