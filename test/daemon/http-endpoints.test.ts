import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Broker, useBroker } from '../helpers/mosquitto.js';
import { startWorker, type WorkerProcess } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

/** The port the daemon's HTTP endpoints took (--http-port 0: any free one), from its log. */
async function httpBase(worker: WorkerProcess): Promise<string> {
  const line = await worker.waitForLog((entry) => String(entry.msg).startsWith('HTTP endpoints listening'));
  assert.equal(line.address, '127.0.0.1', 'bound to loopback unless --http-host says otherwise');
  return `http://127.0.0.1:${line.port}`;
}

const metricValue = (text: string, series: string) => {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('health and metrics over HTTP', () => {
  let broker: Broker;
  useBroker((started) => {
    broker = started;
  });
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('/healthz, /readyz (503 with the reason while paused) and /metrics', async () => {
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'scraped', '--tasks', 'noop,crash', '--http-port', '0', '--retry-backoff', '0'],
      { BROADCAST_TYPE: 'mqtt', MQTT_BROKER: broker.url },
    );
    const base = await httpBase(worker);
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'alive' });
    await worker.waitForLog((line) => line.msg === 'worker started');
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true });

    const done = await workspace.addJob('noop');
    const crashing = await workspace.addJob('crash', {}, { maxRetries: 0 });
    await worker.waitForLog((line) => line.msg === 'job completed' && line.job_id === done);
    await worker.waitForLog((line) => line.msg === 'job failed' && line.job_id === crashing);
    worker.child.kill('SIGTSTP');
    await worker.waitForLog((line) => String(line.msg).startsWith('paused'));
    await workspace.addJob('crash', {}, { maxRetries: 0 }); // stays queued while paused

    const paused = await fetch(`${base}/readyz`);
    assert.equal(paused.status, 503);
    assert.match(((await paused.json()) as { reason: string }).reason, /^paused/);

    const metrics = await fetch(`${base}/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    assert.equal(
      metricValue(text, 'media_worker_jobs_finished_total{task_type="noop",outcome="completed"}'),
      1,
    );
    assert.equal(
      metricValue(text, 'media_worker_jobs_finished_total{task_type="crash",outcome="failed"}'),
      1,
    );
    assert.equal(metricValue(text, 'media_worker_runner_crashes_total{task_type="crash"}'), 1);
    assert.equal(metricValue(text, 'media_worker_job_duration_seconds_count{task_type="noop"}'), 1);
    assert.equal(metricValue(text, 'media_worker_queue_depth{task_type="crash"}'), 1);
    assert.equal(metricValue(text, 'media_worker_queue_depth{task_type="noop"}'), 0);
    assert.equal(metricValue(text, 'media_worker_running_jobs'), 0);
    assert.equal(metricValue(text, 'media_worker_retries_total{task_type="noop"}'), 0);
    assert.equal(metricValue(text, 'media_worker_lease_losses_total{task_type="noop"}'), 0);
    assert.ok((metricValue(text, 'media_worker_runner_starts_total{task_type="crash"}') ?? 0) >= 1);
    assert.equal(metricValue(text, 'media_worker_mqtt_connected'), 1);
    assert.ok(
      (metricValue(text, 'media_worker_process_cpu_seconds_total') ?? 0) > 0,
      'default process metrics',
    );

    const missing = await fetch(`${base}/nothing`);
    assert.equal(missing.status, 404);
    worker.child.kill('SIGCONT');
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 'ready again after SIGCONT');
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
  });
});
