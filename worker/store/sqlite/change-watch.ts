/**
 * Noticing, without polling, that another process committed to the database. Every commit in WAL
 * mode writes the `-wal` file, and inotify (through fs.watch on the folder, which survives the file
 * being deleted and recreated) reports that at once, at no cost while nothing happens. The event can
 * arrive a moment before the commit is visible to readers, and checkpoints write without changing
 * any row, so `PRAGMA data_version` (which changes only when another connection committed) decides,
 * looked at again a few times over the next ~400 ms after each event.
 *
 * docs/design.md compares this with polling `PRAGMA data_version` on a timer. Where fs.watch is not
 * available, nothing is reported and the daemon's poll interval is all there is.
 */
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * Delays of the further looks after an event: the commit that wrote the `-wal` may become visible
 * only a moment later (an `fsync` between the write and the commit, with `synchronous=FULL`).
 */
const RECHECK_DELAYS_MS = [1, 4, 25, 100, 250];

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

  // Every event starts the sequence again: one look now, then the rechecks, whether or not a look
  // saw a change (an earlier commit may have made that change while a later one is not visible yet).
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
