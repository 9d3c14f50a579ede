/**
 * Connections to a PostgreSQL server: a node-postgres pool under Kysely's PostgreSQL dialect, with
 * the timeouts a worker needs so that nothing waits for ever on a lock, a statement or a server.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '../schema.js';
import { connectionStringOf } from './url.js';

/** How long a statement may run, and how long it may wait for a row lock, before it fails as busy. */
const STATEMENT_TIMEOUT_MS = 30_000;
const LOCK_TIMEOUT_MS = 10_000;
/** A transaction left open (a frozen process) gives its locks back after this. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_CONNECTION_MS = 30_000;

/** BIGINT (int8) columns hold millisecond timestamps and counts: numbers, not strings. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PostgresConnectionOptions {
  /** The pool's size: the most statements this process runs at once. */
  connections: number;
  /** How long a statement may wait for a row lock. */
  lockTimeoutMs?: number;
}

export function clientConfig(databaseUrl: string, lockTimeoutMs = LOCK_TIMEOUT_MS): pg.ClientConfig {
  return {
    connectionString: connectionStringOf(databaseUrl),
    application_name: 'media-worker',
    statement_timeout: STATEMENT_TIMEOUT_MS,
    // 0 turns PostgreSQL's lock timeout off; the worker's 0 means "do not wait".
    lock_timeout: Math.max(1, lockTimeoutMs),
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    types,
  };
}

export function createPool(databaseUrl: string, options: PostgresConnectionOptions): pg.Pool {
  const pool = new pg.Pool({
    ...clientConfig(databaseUrl, options.lockTimeoutMs),
    max: options.connections,
    idleTimeoutMillis: IDLE_CONNECTION_MS,
  });
  // An idle connection the server closed (a restart) is dropped from the pool; the next query
  // opens another. Without a listener the error would end the process.
  pool.on('error', () => {});
  return pool;
}

export function kyselyOn(pool: pg.Pool): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
