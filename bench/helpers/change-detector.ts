/**
 * Child process of bench/change-detection.ts: notices commits by another process to a SQLite
 * database, either the way the store does (fs.watch + data_version, `watch`) or by polling
 * `PRAGMA data_version` every N ms (`poll-N`), and reports when it noticed each one.
 */
import Database from 'better-sqlite3';
import { watchDatabaseChanges } from '../../worker/store/sqlite/change-watch.js';

const [databasePath, mode] = process.argv.slice(2) as [string, string];
const db = new Database(databasePath);
const send = (message: unknown) => process.send?.(message);
const noticed = () => send({ type: 'noticed', at: performance.timeOrigin + performance.now() });

const stop = new AbortController();
if (mode === 'watch') {
  if (!watchDatabaseChanges(db, databasePath, noticed, stop.signal)) throw new Error('fs.watch unavailable');
} else {
  const intervalMs = Number(mode.replace('poll-', ''));
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  let seen = dataVersion.get();
  const timer = setInterval(() => {
    const version = dataVersion.get();
    if (version !== seen) {
      seen = version;
      noticed();
    }
  }, intervalMs);
  stop.signal.addEventListener('abort', () => clearInterval(timer));
}

process.on('message', (message: { type: string; seconds?: number }) => {
  if (message.type === 'measure-idle') {
    const before = process.cpuUsage();
    const startedAt = performance.now();
    setTimeout(
      () => {
        const used = process.cpuUsage(before);
        const wallMs = performance.now() - startedAt;
        send({ type: 'idle-cpu', percent: ((used.user + used.system) / 1000 / wallMs) * 100 });
      },
      (message.seconds ?? 5) * 1000,
    );
  } else if (message.type === 'stop') {
    stop.abort();
    db.close();
    process.disconnect();
  }
});
send({ type: 'ready' });
