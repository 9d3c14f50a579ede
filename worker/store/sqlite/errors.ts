/**
 * SQLite's failures in the worker's own terms. A busy database (another process holds the write
 * lock past busy_timeout) may clear by itself; a read-only, full, corrupt or vanished database will
 * not, and is the worker's fault, never the job's. Anything else (a constraint, a bug) passes as is.
 */
import { DatabaseBusyError, WorkerFaultError } from '../../errors.js';

const BUSY = /^SQLITE_(BUSY|LOCKED)/;
const WORKER_SIDE = /^SQLITE_(READONLY|IOERR|CANTOPEN|FULL|CORRUPT|NOTADB|PERM|AUTH)/;

export function translateSqliteError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return error;
  const message = (error as Error).message;
  if (BUSY.test(code))
    return new DatabaseBusyError(`database is busy: ${message} (${code})`, { cause: error });
  if (WORKER_SIDE.test(code) || /no such table/.test(message)) {
    return new WorkerFaultError(`database cannot be used: ${message} (${code})`, { cause: error });
  }
  return error;
}
