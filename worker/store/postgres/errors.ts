/**
 * PostgreSQL's failures in the worker's own terms. A server that cannot be reached (down,
 * restarting, a dropped connection) and a wait for a lock or a statement past its timeout may
 * clear by themselves; a read-only server, a full disk, missing privileges or a missing table
 * will not, and are the worker's fault, never the job's. Anything else (a constraint, a bug)
 * passes as is.
 */
import {
  DatabaseBusyError,
  DatabaseLostError,
  DatabaseUnreachableError,
  WorkerFaultError,
} from '../../errors.js';

/** SQLSTATEs that say a wait ran out or a transaction lost a race: try again. */
const BUSY_STATES = new Set([
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
]);
/** The server is going away or not there yet. */
const UNREACHABLE_STATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** node-postgres says these in words only. */
const UNREACHABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|not queryable/i;
/** Worker-side faults that will not clear by themselves. */
const WORKER_SIDE_STATES = new Set([
  '25006', // read_only_sql_transaction
  '42501', // insufficient_privilege
  '42P01', // undefined_table
  '53100', // disk_full
  '53200', // out_of_memory
  '28000', // invalid_authorization_specification
  '28P01', // invalid_password
]);

export function translatePgError(error: unknown): unknown {
  if (error instanceof WorkerFaultError || error instanceof DatabaseLostError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const detail = typeof code === 'string' ? `${message} (${code})` : message;
  if (typeof code === 'string' && BUSY_STATES.has(code)) {
    return new DatabaseBusyError(`database is busy: ${detail}`, { cause: error });
  }
  if (
    (typeof code === 'string' &&
      (UNREACHABLE_STATES.has(code) || UNREACHABLE_CODES.has(code) || code.startsWith('08'))) ||
    UNREACHABLE_MESSAGES.test(message)
  ) {
    return new DatabaseUnreachableError(`database server unreachable: ${detail}`, { cause: error });
  }
  if (code === '3D000') {
    return new DatabaseLostError(`the database is gone: ${detail}`, { cause: error });
  }
  if (typeof code === 'string' && WORKER_SIDE_STATES.has(code)) {
    return new WorkerFaultError(`database cannot be used: ${detail}`, { cause: error });
  }
  return error;
}
