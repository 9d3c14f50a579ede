import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { renderWatch } from '../../worker/watch/render-watch.js';
import {
  applyCapabilityMessage,
  applyJobEvent,
  emptyWatchState,
  pruneJobs,
} from '../../worker/watch/watch-state.js';
import { type Broker, startBroker } from '../helpers/mosquitto.js';
import { CLI, startWorker } from '../helpers/worker-process.js';
import { createWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

describe('media-worker watch', () => {
  test('the view lists workers with idle/total slots, marks stale ones, and draws a bar per job', () => {
    const state = emptyWatchState();
    const now = 1_000_000_000_000;
    const announce = (id: string, timestamp: number, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        id,
        worker_id: id,
        capabilities: ['image_resize'],
        idle_count: 1,
        concurrency: 2,
        heartbeat_interval_s: 30,
        timestamp,
        ...extra,
      });
    applyCapabilityMessage(state, 'fresh', announce('fresh', now - 1000), now);
    applyCapabilityMessage(state, 'old', announce('old', now - 120_000), now);
    applyCapabilityMessage(state, 'gone', announce('gone', now), now);
    applyCapabilityMessage(state, 'gone', '', now);
    applyJobEvent(
      state,
      JSON.stringify({
        event_type: 'processing',
        job_id: 'abcdef123456',
        task_type: 'image_resize',
        worker_id: 'fresh',
        attempt: 1,
        progress: 50,
        data: { progress: 50 },
      }),
      now,
    );
    const screen = renderWatch(state, now, 'mqtt://broker:1883');
    assert.match(screen, /WORKERS \(2\)/);
    assert.match(screen, /fresh\s+1\/2 idle\s+1s ago\s+image_resize\n/);
    assert.match(screen, /old\s+1\/2 idle\s+2m ago\s+image_resize\s+STALE/);
    assert.doesNotMatch(screen, /gone/);
    assert.match(screen, /JOBS \(1 running\)/);
    assert.match(screen, /abcdef12 image_resize\s+fresh\s+#1 \[#{12}\.{12}\] {2}50%/);

    applyJobEvent(
      state,
      JSON.stringify({ event_type: 'completed', job_id: 'abcdef123456', progress: 100 }),
      now,
    );
    assert.match(renderWatch(state, now, 'b'), /\[#{24}\] 100% COMPLETED/);
    pruneJobs(state, now + 10_000);
    assert.match(renderWatch(state, now + 10_000, 'b'), /JOBS \(0 running\)\n {2}\(none\)/);
  });

  describe('--json against a real broker', () => {
    let workspace: Workspace;
    let broker: Broker;
    beforeEach(async () => {
      workspace = await createWorkspace();
      broker = await startBroker();
    });
    afterEach(async () => {
      await broker.stop();
      await workspace.cleanup();
    });

    test('prints one JSON line per capability and event message', async () => {
      const watcher = spawn(process.execPath, [CLI, 'watch', '--json', '--broker', broker.url], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines: Record<string, unknown>[] = [];
      let partial = '';
      watcher.stdout.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const part of parts) lines.push(JSON.parse(part) as Record<string, unknown>);
      });
      try {
        const jobId = await workspace.addJob('noop');
        const worker = startWorker(workspace.dir, ['--worker-id', 'w-watch', '--tasks', 'noop'], {
          BROADCAST_TYPE: 'mqtt',
          MQTT_BROKER: broker.url,
        });
        await waitFor(
          () =>
            lines.find(
              (line) =>
                line.topic === 'inference/events' &&
                (line.payload as { event_type?: string })?.event_type === 'completed',
            ),
          'the completed event',
        );
        const completed = lines.find((line) => (line.payload as { job_id?: string })?.job_id === jobId);
        assert.ok(completed, 'events name the job');
        assert.ok(
          lines.some(
            (line) =>
              line.topic === 'inference/workers/w-watch' &&
              (line.payload as { worker_id?: string })?.worker_id === 'w-watch',
          ),
        );
        worker.child.kill('SIGTERM');
        await worker.exited;
        await waitFor(
          () => lines.find((line) => line.topic === 'inference/workers/w-watch' && line.payload === null),
          'the cleared announcement',
        );
      } finally {
        if (watcher.exitCode === null && watcher.signalCode === null) {
          const exited = new Promise((resolve) => watcher.once('exit', resolve));
          watcher.kill('SIGINT');
          await exited;
        }
      }
    });
  });

  describe('into a pipe', () => {
    let workspace: Workspace;
    let broker: Broker;
    beforeEach(async () => {
      workspace = await createWorkspace();
      broker = await startBroker();
    });
    afterEach(async () => {
      await broker.stop();
      await workspace.cleanup();
    });

    /** Runs `watch` with its stdout a pipe; resolves lines as they come. */
    function watchInPipe(args: readonly string[], env: Record<string, string> = {}) {
      const child = spawn(process.execPath, [CLI, 'watch', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      const lines: string[] = [];
      let partial = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        lines.push(...parts);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
        return exited;
      };
      return { child, lines, stderr: () => stderr, exited, stop };
    }

    test('one plain line per change, with queued jobs per task type from the database, and no escape codes', async () => {
      await workspace.addJob('sleep', { seconds: 1 });
      await workspace.addJob('sleep', { seconds: 1 });
      const watcher = watchInPipe(['--broker', broker.url], { CL_SERVER_DIR: workspace.dir });
      try {
        await waitFor(
          () => watcher.lines.find((line) => line.includes('queued: sleep=2')),
          'the queued counts',
        );
        const worker = startWorker(workspace.dir, ['--worker-id', 'w-pipe', '--tasks', 'noop'], {
          BROADCAST_TYPE: 'mqtt',
          MQTT_BROKER: broker.url,
        });
        await waitFor(
          () => watcher.lines.find((line) => line.includes('workers: w-pipe 1/1 idle')),
          'the worker',
        );
        worker.child.kill('SIGTERM');
        await worker.exited;
        assert.equal(watcher.lines.join('\n').includes('\x1b'), false, 'no escape codes into a pipe');
        const count = watcher.lines.length;
        assert.ok(count < 20, `a line per change, not per redraw: ${count} lines`);
        for (const line of watcher.lines)
          assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z broker mqtt:\/\/127\.0\.0\.1:\d+ \| workers: /);
      } finally {
        assert.equal(await watcher.stop(), 0);
      }
    });

    test('a closed pipe ends it quietly', async () => {
      const pipeline = spawn(
        'bash',
        ['-o', 'pipefail', '-c', `"${process.execPath}" "${CLI}" watch --broker ${broker.url} | head -n 1`],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      pipeline.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      pipeline.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => pipeline.on('exit', (code) => resolve(code)));
      await waitFor(() => stdout.includes('broker'), 'the first line through head');
      // head has exited; the next change makes watch write into the closed pipe.
      const worker = startWorker(workspace.dir, ['--worker-id', 'w-epipe', '--tasks', 'noop'], {
        BROADCAST_TYPE: 'mqtt',
        MQTT_BROKER: broker.url,
      });
      try {
        assert.equal(await exited, 0, stderr);
        assert.equal(stderr, '', 'no EPIPE stack trace');
      } finally {
        worker.child.kill('SIGTERM');
        await worker.exited;
      }
    });

    test('a broker it cannot reach is shown with the reason, in --json too', async () => {
      const unreachable = 'mqtt://127.0.0.1:1';
      const plain = watchInPipe(['--broker', unreachable]);
      const json = watchInPipe(['--json', '--broker', unreachable]);
      try {
        await waitFor(
          () => plain.lines.find((line) => /cannot connect: .*ECONNREFUSED.*; retrying/.test(line)),
          'the reason in the plain line',
        );
        const status = await waitFor(
          () =>
            json.lines
              .map((line) => JSON.parse(line) as { broker?: { connected: boolean; error?: string } })
              .find((line) => line.broker),
          'the broker line in --json',
        );
        assert.equal(status.broker?.connected, false);
        assert.match(status.broker?.error ?? '', /ECONNREFUSED/);
      } finally {
        await plain.stop();
        await json.stop();
      }
    });
  });
});
