/**
 * The dashboard's HTTP side against a real `media-worker dashboard` process: only files under the
 * storage root are served (traversal, symlinks out, odd names), the token and Host checks, the
 * action header, byte ranges, and paged job lists.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { runCli, startDashboard } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace } from '../helpers/workspace.js';

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request sent exactly as written: no client-side resolution of `..` or `%2e%2e` (fetch would). */
function rawRequest(
  origin: string,
  rawPath: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: hostname, port, path: rawPath, method: options.method ?? 'GET', headers: options.headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

const SECRET = 'secret outside the storage root';
const TOKEN = 'a-token-of-enough-length-0123456789';

describe('dashboard over HTTP', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('serves files under the storage root only: traversal, symlinks out and odd names', async () => {
    fs.writeFileSync(path.join(workspace.dir, 'secret.txt'), SECRET);
    const output = path.join(workspace.storageRoot, 'jobs', 'job-1', 'output');
    fs.mkdirSync(output, { recursive: true });
    const oddName = `a b #?%&'"\n😀.png`;
    fs.writeFileSync(path.join(output, oddName), 'odd bytes');
    fs.writeFileSync(path.join(output, 'plain.txt'), '0123456789');
    fs.writeFileSync(
      path.join(output, 'image.svg'),
      '<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>',
    );
    fs.symlinkSync(path.join(workspace.dir, 'secret.txt'), path.join(output, 'link-out.txt'));
    fs.symlinkSync(workspace.dir, path.join(output, 'dir-out'));
    fs.symlinkSync(path.join(output, 'plain.txt'), path.join(output, 'link-in.txt'));
    const dashboard = await startDashboard(workspace.dir);

    const encoded = `/files/jobs/job-1/output/${encodeURIComponent(oddName)}`;
    const odd = await rawRequest(dashboard.origin, encoded);
    assert.equal(odd.status, 200);
    assert.equal(odd.body.toString(), 'odd bytes');
    assert.equal(odd.headers['content-type'], 'image/png');
    assert.equal(
      (await rawRequest(dashboard.origin, '/files/jobs/job-1/output/link-in.txt')).body.toString(),
      '0123456789',
    );

    // `..` and `%2e%2e` segments are resolved by the server's URL parser before the file lookup
    // (to a route that does not exist); everything else reaches the lookup, which refuses it.
    const refused: [string, number][] = [
      ['/files/../secret.txt', 404],
      ['/files/%2e%2e/secret.txt', 404],
      ['/files/jobs/%2e%2e%2f%2e%2e%2f..%2fsecret.txt', 400],
      ['/files/jobs/job-1/output/..%2F..%2F..%2F..%2Fsecret.txt', 400],
      ['/files/jobs/job-1/output/..%5C..%5C..%5C..%5Csecret.txt', 400],
      [`/files/${encodeURIComponent(path.join(workspace.dir, 'secret.txt'))}`, 400],
      ['/files//etc/passwd', 400],
      ['/files/jobs/job-1/output/link-out.txt', 403],
      ['/files/jobs/job-1/output/dir-out/secret.txt', 403],
      ['/files/jobs/job-1/output/plain.txt%00.png', 400],
      ['/files/jobs/job-1/output/%E0%A4%A', 400],
      ['/files/jobs/job-1/output', 404],
      ['/files/jobs/job-1/output/missing.png', 404],
    ];
    for (const [rawPath, status] of refused) {
      const response = await rawRequest(dashboard.origin, rawPath);
      assert.equal(response.status, status, rawPath);
      assert.ok(!response.body.toString().includes(SECRET), rawPath);
    }

    const range = await rawRequest(dashboard.origin, '/files/jobs/job-1/output/plain.txt', {
      headers: { range: 'bytes=2-5' },
    });
    assert.equal(range.status, 206);
    assert.equal(range.body.toString(), '2345');
    assert.equal(range.headers['content-range'], 'bytes 2-5/10');
    const past = await rawRequest(dashboard.origin, '/files/jobs/job-1/output/plain.txt', {
      headers: { range: 'bytes=10-' },
    });
    assert.equal(past.status, 416);

    // An output may be shown, never run as part of the dashboard's page.
    const svg = await rawRequest(dashboard.origin, '/files/jobs/job-1/output/image.svg');
    assert.match(String(svg.headers['content-security-policy']), /^sandbox/);
    assert.equal(svg.headers['x-content-type-options'], 'nosniff');
  });

  test('on loopback without a token: the Host must be loopback, and actions need their header', async () => {
    const jobId = await workspace.addJob('noop');
    const dashboard = await startDashboard(workspace.dir);
    assert.equal((await rawRequest(dashboard.origin, '/api/state')).status, 200);
    const rebound = await rawRequest(dashboard.origin, '/api/state', {
      headers: { host: 'attacker.example' },
    });
    assert.equal(rebound.status, 403);

    const cancel = `/api/jobs/${encodeURIComponent(jobId)}/cancel`;
    const forged = await rawRequest(dashboard.origin, cancel, { method: 'POST' });
    assert.equal(forged.status, 403);
    assert.equal((await workspace.store.getJob(jobId))?.status, 'queued');
    const done = await rawRequest(dashboard.origin, cancel, {
      method: 'POST',
      headers: { 'x-media-worker-action': '1' },
    });
    assert.equal(done.status, 200);
    assert.deepEqual(JSON.parse(done.body.toString()), { kind: 'cancelled' });
    const again = await rawRequest(dashboard.origin, cancel, {
      method: 'POST',
      headers: { 'x-media-worker-action': '1' },
    });
    assert.equal(again.status, 409);
    assert.match(JSON.parse(again.body.toString()).reason, /already ended/);
  });

  test('any address but loopback needs a token, and every request then carries it', async () => {
    const refused = await runCli(['dashboard', '--host', '0.0.0.0', '--port', '0'], {
      CL_SERVER_DIR: workspace.dir,
      BROADCAST_TYPE: 'noop',
    });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /listen on 0\.0\.0\.0 with no token: set DASHBOARD_TOKEN/);
    const short = await runCli(['dashboard', '--port', '0', '--token', 'short'], {
      CL_SERVER_DIR: workspace.dir,
      BROADCAST_TYPE: 'noop',
    });
    assert.equal(short.code, 2);
    assert.match(short.stderr, /at least 16 characters/);

    const dashboard = await startDashboard(workspace.dir, ['--host', '0.0.0.0'], { DASHBOARD_TOKEN: TOKEN });
    const origin = dashboard.origin.replace('0.0.0.0', '127.0.0.1');
    for (const rawPath of ['/', '/api/state', '/api/jobs', '/files/jobs/x', '/assets/dashboard.js']) {
      assert.equal((await rawRequest(origin, rawPath)).status, 401, rawPath);
    }
    assert.equal(
      (await rawRequest(origin, '/api/state', { headers: { authorization: 'Bearer wrong' } })).status,
      401,
    );
    assert.equal(
      (await rawRequest(origin, '/api/state', { headers: { authorization: `Bearer ${TOKEN}` } })).status,
      200,
    );
    const opened = await rawRequest(origin, `/?token=${TOKEN}`);
    assert.equal(opened.status, 303);
    assert.equal(opened.headers.location, '/');
    const cookie = String(opened.headers['set-cookie']?.[0]).split(';')[0] ?? '';
    assert.match(String(opened.headers['set-cookie']?.[0]), /HttpOnly; SameSite=Strict/);
    assert.equal((await rawRequest(origin, '/api/state', { headers: { cookie } })).status, 200);
    // With a token, the Host may be any name the machine is reached by.
    assert.equal(
      (await rawRequest(origin, '/api/state', { headers: { cookie, host: 'media.example:8080' } })).status,
      200,
    );
  });

  test('job lists come in pages, newest first, and a job in full', async () => {
    for (let index = 0; index < 120; index += 1) {
      await workspace.addJob('noop', {}, { jobId: `job-${String(index).padStart(3, '0')}` });
    }
    const dashboard = await startDashboard(workspace.dir);
    const page = async (query: string) =>
      JSON.parse((await rawRequest(dashboard.origin, `/api/jobs?${query}`)).body.toString()) as {
        hasMore: boolean;
        jobs: { job_id: string }[];
      };
    const first = await page('page=1');
    assert.equal(first.jobs.length, 50);
    assert.equal(first.hasMore, true);
    assert.equal(first.jobs[0]?.job_id, 'job-119');
    const last = await page('page=3');
    assert.deepEqual([last.jobs.length, last.hasMore, last.jobs.at(-1)?.job_id], [20, false, 'job-000']);
    const queued = await page('status=queued&page=1');
    assert.equal(queued.jobs[0]?.job_id, 'job-000', 'queued jobs in claim order');
    assert.equal((await rawRequest(dashboard.origin, '/api/jobs?status=bogus')).status, 400);
    assert.equal((await rawRequest(dashboard.origin, '/api/jobs?page=0')).status, 400);

    const one = JSON.parse((await rawRequest(dashboard.origin, '/api/jobs/job-007')).body.toString());
    assert.equal(one.job.job_id, 'job-007');
    assert.deepEqual(
      one.inputs.map((input: { url: string }) => input.url),
      ['/files/jobs/job-007/input/input.txt'],
    );
    assert.equal((await rawRequest(dashboard.origin, '/api/jobs/no-such-job')).status, 404);
  });
});

describe('dashboard over HTTP on PostgreSQL', () => {
  let workspace: Workspace;
  useWorkspace(
    (created) => {
      workspace = created;
    },
    { postgres: true },
  );

  test('the live state, a page of jobs and a retry, through the PostgreSQL store', async () => {
    const queued = await workspace.addJob('noop');
    const dashboard = await startDashboard(workspace.dir, [], { DATABASE_URL: workspace.databaseUrl });
    const stream = await fetch(`${dashboard.origin}/api/events`);
    const reader = stream.body?.getReader();
    let events = '';
    while (!events.includes('"snapshot"')) {
      const chunk = await reader?.read();
      assert.ok(chunk && !chunk.done, 'the event stream ended');
      events += Buffer.from(chunk.value).toString('utf8');
    }
    const state = JSON.parse(events.slice(events.lastIndexOf('data: ') + 6).split('\n')[0] ?? '');
    assert.deepEqual(state.queue.snapshot.overview.totals, [{ status: 'queued', jobs: 1 }]);
    assert.equal(state.queue.snapshot.queuedHead[0].job_id, queued);
    await reader?.cancel();

    const list = JSON.parse((await rawRequest(dashboard.origin, '/api/jobs?status=queued')).body.toString());
    assert.deepEqual(
      list.jobs.map((job: { job_id: string }) => job.job_id),
      [queued],
    );
    const cancel = await rawRequest(dashboard.origin, `/api/jobs/${queued}/cancel`, {
      method: 'POST',
      headers: { 'x-media-worker-action': '1' },
    });
    assert.deepEqual(JSON.parse(cancel.body.toString()), { kind: 'cancelled' });
    const retry = await rawRequest(dashboard.origin, `/api/jobs/${queued}/retry`, {
      method: 'POST',
      headers: { 'x-media-worker-action': '1' },
    });
    assert.deepEqual(JSON.parse(retry.body.toString()), { kind: 'requeued' });
    assert.equal((await workspace.store.getJob(queued))?.status, 'queued');
  });
});
