import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type Broker, type Subscriber, subscribe, useBroker } from '../helpers/mosquitto.js';
import { startedLines } from '../helpers/scenarios.js';
import { startWorker } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

describe('pause without stopping (SIGTSTP / SIGCONT)', () => {
  let broker: Broker;
  useBroker((started) => {
    broker = started;
  });
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('SIGTSTP stops claiming while the running job goes on, announced as paused; SIGCONT resumes', async () => {
    const announcements = await subscribe(broker.url, ['inference/workers/pausable']);
    try {
      await pauseAndResume(announcements);
    } finally {
      await announcements.close();
    }
  });

  async function pauseAndResume(announcements: Subscriber): Promise<void> {
    const startedFile = path.join(workspace.dir, 'started');
    const running = await workspace.addJob('sleep', { seconds: 1, started_file: startedFile });
    const worker = startWorker(workspace.dir, ['--worker-id', 'pausable', '--tasks', 'sleep,noop'], {
      BROADCAST_TYPE: 'mqtt',
      MQTT_BROKER: broker.url,
    });
    await waitFor(() => startedLines(startedFile)[0], 'the first job to start');
    worker.child.kill('SIGTSTP');
    await worker.waitForLog((line) => String(line.msg).startsWith('paused'));
    const isPaused = (message: { payload: string }) => {
      const payload = JSON.parse(message.payload || '{}');
      return payload.state === 'paused' && payload.idle_count === 0;
    };
    await announcements.waitFor(isPaused, 'the paused announcement');
    // Retained: whoever looks now (a dashboard, jobs stats) sees it paused.
    const newcomer = await subscribe(broker.url, ['inference/workers/pausable']);
    try {
      const retained = await newcomer.waitFor((message) => message.retain, 'the retained announcement');
      assert.ok(isPaused(retained), retained.payload);
    } finally {
      await newcomer.close();
    }

    const waiting = await workspace.addJob('noop');
    // The running job finishes while paused; its freed slot claims nothing.
    await worker.waitForLog((line) => line.msg === 'job completed' && line.job_id === running);
    worker.child.kill('SIGCONT');
    await worker.waitForLog((line) => line.msg === 'job completed' && line.job_id === waiting);
    const order = worker.logs.map((line) =>
      line.msg === 'job claimed' && line.job_id === waiting ? 'claimed' : String(line.msg),
    );
    assert.ok(
      order.indexOf('resumed: claiming again') < order.indexOf('claimed'),
      `the waiting job was claimed only after SIGCONT: ${order.join(' | ')}`,
    );
    await announcements.waitFor(
      (message) => JSON.parse(message.payload || '{}').state === 'ready',
      'ready again',
    );
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
  }
});
