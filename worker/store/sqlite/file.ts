/**
 * The database file under a SQLite store: is it still the file that was opened, and could a
 * connection opened now (what a runner starting now would get) write it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DatabaseBusyError, DatabaseLostError, WorkerFaultError } from '../../errors.js';
import { translateSqliteError } from './errors.js';

/** Which file was opened, so that a file deleted or replaced under the worker is noticed. */
export interface DatabaseFileIdentity {
  path: string;
  dev: number;
  ino: number;
}

export function identifyFile(databasePath: string): DatabaseFileIdentity | undefined {
  const identity = statIdentity(databasePath);
  return identity && { path: path.resolve(databasePath), ...identity };
}

/** A write transaction that changes nothing: it fails the way a real write would (read-only…). */
export function writeNothing(sqlite: BetterSqlite3.Database): void {
  sqlite
    .transaction(() => sqlite.prepare('DELETE FROM worker_job_state WHERE job_id = ?').run(''))
    .immediate();
}

/**
 * Throws a WorkerFaultError unless a connection opened now could write the file. Permissions come
 * first: within one process SQLite reuses a descriptor it already holds for the file, so a new
 * connection here can still write a file made read-only since. `open` must not wait for a busy
 * lock: busy means another process writes, so the file is writable.
 */
export function probeWritable(file: DatabaseFileIdentity, open: () => BetterSqlite3.Database): void {
  for (const target of [file.path, path.dirname(file.path)]) {
    try {
      fs.accessSync(target, fs.constants.W_OK);
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException;
      throw new WorkerFaultError(`database cannot be written: ${code ?? String(error)} on ${target}`, {
        cause: error,
      });
    }
  }
  let probe: BetterSqlite3.Database | undefined;
  try {
    probe = open();
    writeNothing(probe);
  } catch (error) {
    const translated = translateSqliteError(error);
    if (translated instanceof DatabaseBusyError) return;
    if (translated instanceof WorkerFaultError) throw translated;
    throw new WorkerFaultError(`database cannot be used: ${(error as Error).message}`, { cause: error });
  } finally {
    probe?.close();
  }
}

/** Throws DatabaseLostError when the file at the path is gone or is another file. */
export function checkIdentity(file: DatabaseFileIdentity): void {
  const now = statIdentity(file.path);
  if (now === undefined) {
    throw new DatabaseLostError(`the database file ${file.path} was deleted under the running worker`);
  }
  if (now.dev !== file.dev || now.ino !== file.ino) {
    throw new DatabaseLostError(
      `the database file ${file.path} was replaced by another file under the running worker`,
    );
  }
}

function statIdentity(file: string): { dev: number; ino: number } | undefined {
  try {
    const { dev, ino } = fs.statSync(file);
    return { dev, ino };
  } catch {
    return undefined;
  }
}
