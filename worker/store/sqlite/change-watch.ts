/**
 * Noticing, without polling, that another process committed to the database. Every commit in WAL
 * mode writes the `-wal` file, and inotify (through fs.watch on the folder, which survives the file
 * being deleted and recreated) reports that at once, at no cost while nothing happens. The event can
 * arrive a moment before the commit is visible to readers, and checkpoints write without changing
 * any row, so `PRAGMA data_version` (which changes only when another connection committed) decides;
 * while it has not changed yet, it is looked at again a few times over the next ~30 ms.
 *
 * docs/design.md compares this with polling `PRAGMA data_version` on a timer. Where fs.watch is not
 * available, nothing is reported and the daemon's poll interval is all there is.
 */
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';

/** Delays of the second looks when an event came but data_version has not moved (yet). */
const RECHECK_DELAYS_MS = [1, 4, 25];

export function watchDatabaseChanges(
  sqlite: BetterSqlite3.Database,
  databasePath: string,
  onChange: () => void,
  signal: AbortSignal,
): boolean {
  const base = path.basename(databasePath);
  const watched = new Set([base, `${base}-wal`]);
  const dataVersion = sqlite.prepare('PRAGMA data_version').pluck();
  let seen = dataVersion.get() as number;
  let scheduled = false;
  let recheck: NodeJS.Timeout | undefined;

  const look = (attempt: number) => {
    scheduled = false;
    if (signal.aborted || !sqlite.open) return;
    let version: number;
    try {
      version = dataVersion.get() as number;
    } catch {
      return; // busy or gone: the poll interval and the daemon's own checks take over
    }
    if (version !== seen) {
      seen = version;
      onChange();
      return;
    }
    const delay = RECHECK_DELAYS_MS[attempt];
    if (delay !== undefined) recheck = setTimeout(() => look(attempt + 1), delay);
  };

  let watcher: fs.FSWatcher;
  try {
    watcher = fs.watch(path.dirname(databasePath), { persistent: false }, (_event, filename) => {
      if (scheduled || (filename !== null && !watched.has(filename))) return;
      scheduled = true;
      clearTimeout(recheck);
      setImmediate(() => look(0));
    });
  } catch {
    return false;
  }
  watcher.on('error', () => watcher.close());
  signal.addEventListener(
    'abort',
    () => {
      clearTimeout(recheck);
      watcher.close();
    },
    { once: true },
  );
  return true;
}
