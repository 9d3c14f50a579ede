/**
 * Daemons that die or freeze mid-job. A killed daemon's job is taken back once its lease expires.
 * A daemon frozen mid-job (SIGSTOP, a debugger, a swap storm) stops renewing its leases, and another
 * daemon takes its jobs back. Its runners must not go on working on those jobs: each ends its job by
 * itself once the lease has run out by its own clock, before the lease runs out in the database.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { killedDaemonJobIsRecovered } from '../helpers/scenarios.js';
import { startWorker } from '../helpers/worker-process.js';
import { isAlive, useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

let workspace: Workspace;
useWorkspace((created) => {
  workspace = created;
});

test('kill -9 of a daemon mid-job: another daemon completes the job after the lease expires', () =>
  killedDaemonJobIsRecovered(workspace));

test('a frozen daemon’s runner gives its job up before another daemon re-runs it', async (t) => {
  const startedFile = path.join(workspace.dir, 'started');
  const starts = () =>
    (fs.existsSync(startedFile) ? fs.readFileSync(startedFile, 'utf8') : '')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [, pid, at] = line.split(' ');
        return { pid: Number(pid), at: Number(at) };
      });
  const jobId = await workspace.addJob('sleep', { seconds: 30, started_file: startedFile });
  // The runner gives up a sixth of the lease (1 s here) before the lease runs out in the database.
  const lease = ['--lease-ttl', '6', '--tasks', 'sleep', '--shutdown-grace', '0'];
  const frozen = startWorker(workspace.dir, ['--worker-id', 'frozen', ...lease]);
  const [first] = await waitFor(() => (starts().length === 1 ? starts() : undefined), 'the first run');
  frozen.child.kill('SIGSTOP');
  const frozenAt = Date.now();
  const rescuer = startWorker(workspace.dir, ['--worker-id', 'rescuer', ...lease]);

  let firstRunnerGoneAt: number | undefined;
  const second = await waitFor(() => {
    if (firstRunnerGoneAt === undefined && !isAlive(first?.pid as number)) firstRunnerGoneAt = Date.now();
    const runs = starts();
    return runs.length === 2 ? { ...runs[1], firstRunnerAlive: isAlive(first?.pid as number) } : undefined;
  }, 'the second run, by the other daemon');
  assert.equal(
    second.firstRunnerAlive,
    false,
    'the frozen daemon’s runner still ran when the job started again',
  );
  assert.ok(firstRunnerGoneAt !== undefined);
  t.diagnostic(
    `frozen runner gone ${firstRunnerGoneAt - frozenAt} ms after the freeze; ` +
      `job restarted ${(second.at as number) - frozenAt} ms after it; ` +
      `gap between the two runs ≥ ${(second.at as number) - firstRunnerGoneAt} ms`,
  );

  frozen.child.kill('SIGCONT');
  // Thawed, the daemon meets its runner's "gave up" message and its own failed renewal in either
  // order: it logs the one it handles first, and writes nothing either way.
  await frozen.waitForLog(
    (line) =>
      String(line.msg).startsWith('the runner gave the job up') ||
      String(line.msg).startsWith('job was taken back, deleted or finished elsewhere'),
  );
  const taken = await workspace.store.getJob(jobId);
  assert.equal(taken?.worker?.worker_id, 'rescuer', 'the job stays with the daemon that took it back');
  assert.equal(taken?.status, 'processing');
  rescuer.child.kill('SIGTERM');
  frozen.child.kill('SIGTERM');
  assert.equal((await rescuer.exited).code, 0);
  assert.equal((await frozen.exited).code, 0);
});
