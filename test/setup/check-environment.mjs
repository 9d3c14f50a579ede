// Runs before the tests: proves the native SQLite addon was really built by `npm ci` (npm 11 skips
// install scripts it was not told to allow) and installs the system tools the tests use when missing.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { ensurePostgres } from './postgres-server.mjs';

const require = createRequire(import.meta.url);

try {
  const Database = require('better-sqlite3');
  const version = new Database(':memory:').prepare('select sqlite_version() as v').get().v;
  console.log(`better-sqlite3 native addon loads (SQLite ${version})`);
} catch (error) {
  console.error(`better-sqlite3 native addon is missing or broken: ${error.message}`);
  console.error('Its install script must run: package.json "allowScripts" has to allow better-sqlite3.');
  process.exit(1);
}

const wanted = [
  { command: 'mosquitto', probe: ['-h'], aptPackage: 'mosquitto' },
  { command: 'ffmpeg', probe: ['-version'], aptPackage: 'ffmpeg' },
  // test/deploy checks the systemd unit with it
  { command: 'systemd-analyze', probe: ['--version'], aptPackage: 'systemd' },
  // test/dashboard drives Debian's chromium through playwright-core (never a downloaded browser)
  { command: '/usr/bin/chromium', probe: ['--version'], aptPackage: 'chromium' },
];
const has = (command, probe) => {
  try {
    execFileSync(command, probe, { stdio: 'ignore' });
    return true;
  } catch (error) {
    return error.code !== 'ENOENT';
  }
};
const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
const run = (args) =>
  execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: 'inherit' });
let aptUpdated = false;
const install = (packages) => {
  console.log(`installing ${packages.join(', ')} with apt-get`);
  if (!aptUpdated) run(['apt-get', 'update', '-qq']);
  aptUpdated = true;
  run(['apt-get', 'install', '-y', '-qq', ...packages]);
};
const missing = wanted.filter(({ command, probe }) => !has(command, probe));
if (missing.length > 0) install(missing.map(({ aptPackage }) => aptPackage));

try {
  await ensurePostgres({ run, install });
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
