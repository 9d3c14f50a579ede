#!/usr/bin/env node
/**
 * Runs the built test files under dist/test with node's test runner.
 *
 *   node test/setup/run-tests.mjs          the quick suite (QUICK_SUITE below), for the edit-test loop
 *   node test/setup/run-tests.mjs --all    every test file: what CI runs
 *
 * Any other argument goes to `node --test` (`--test-name-pattern=…`, say); arguments ending in
 * .test.js replace the list of files.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * One file or more for each part of the daemon, through real processes on SQLite: the store, the
 * runner protocol, the image modules, the daemon's main paths, failures and hostile rows, MQTT, the
 * CLI's settings and the HTTP endpoints. The full suite adds PostgreSQL, ffmpeg, chromium, the
 * dashboard, and the fault matrix: broker outages, lost or read-only databases, killed and frozen
 * daemons, worker-side faults, hostile image files, races (four daemons on 2,000 jobs, lease
 * renewals against hundreds of completions a second), TLS and credentials, the operator commands
 * and `watch` against running daemons, and cleanup-mqtt on 5,000 retained topics. A new test file
 * is in the full suite; add it here only if the quick suite stays well under 40 s.
 */
const QUICK_SUITE = [
  // Longest first, so that two of them do not end the run alone.
  'broadcast/mqtt-broadcaster',
  'daemon/lifecycle',
  'daemon/failures',
  'cli/cli',
  'daemon/hostile-rows',
  'daemon/pause',
  'daemon/wake-up',
  'daemon/http-endpoints',
  'store/sqlite-job-store',
  'runner/ipc-protocol',
  'compute_modules/image-resize',
  'compute_modules/image-conversion',
  'unit/pure-functions',
  'deploy/systemd-unit',
  'compute_modules/encoder-arguments',
];

const SOURCE_ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILT_ROOT = fileURLToPath(new URL('../../dist/test', import.meta.url));

const args = process.argv.slice(2);
const all = args.includes('--all');
const named = args.filter((arg) => arg.endsWith('.test.js'));
const passed = args.filter((arg) => arg !== '--all' && !named.includes(arg));

// From the sources, so that a test file renamed or removed since the last build is not run.
const sources = fs
  .readdirSync(SOURCE_ROOT, { recursive: true })
  .filter((file) => file.endsWith('.test.ts'))
  .map((file) => file.slice(0, -'.test.ts'.length))
  .sort();
const unknown = QUICK_SUITE.filter((name) => !sources.includes(name));
if (unknown.length > 0) {
  console.error(`run-tests: the quick suite names test files that do not exist: ${unknown.join(', ')}`);
  process.exit(2);
}
const files =
  named.length > 0
    ? named
    : (all ? sources : QUICK_SUITE).map((name) => path.join(BUILT_ROOT, `${name}.test.js`));
// The quick suite's files mostly wait on the processes they start, so a third runs beside two on
// 2 cores (measured: 33 s against 37 s); the full suite's ffmpeg and PostgreSQL files do not.
const concurrency = all ? 2 : 3;

const runner = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...passed, ...files],
  { stdio: 'inherit' },
);
// Passed on, and this process waits to exit as the runner did. At a terminal the runner also gets
// Ctrl-C from the terminal itself (one process group): it stops at the first either way.
process.on('SIGINT', () => runner.kill('SIGINT'));
process.on('SIGTERM', () => runner.kill('SIGTERM'));
runner.on('exit', (code, signal) => {
  process.exitCode = code ?? 128 + (os.constants.signals[signal] ?? 0);
});
