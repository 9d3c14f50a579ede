/**
 * The dashboard in a real browser: Debian's chromium, driven by playwright-core, against a real
 * daemon, a real broker and real media. It waits for what the page shows, never for time.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { solidJpeg } from '../helpers/images.js';
import { makeClip } from '../helpers/media.js';
import { type Broker, HANG_GUARD_MS, useBroker } from '../helpers/mosquitto.js';
import { DIST, drainBuiltIn, startDashboard, startWorker } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

/** Where the test leaves its screenshot of the overview (the README shows a copy: docs/dashboard.png). */
export const SCREENSHOT = path.join(DIST, 'screenshots', 'dashboard.png');

/** The parts of the page's elements the test reads (the project compiles without DOM types). */
interface LoadedImage {
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
}
interface PlayingVideo {
  readyState: number;
  videoWidth: number;
  currentTime: number;
  muted: boolean;
  play(): Promise<void>;
}

/** Starts a video muted (headless chromium plays only those unprompted) and waits for it to move. */
async function playsInPage(player: Locator, what: string): Promise<void> {
  await player.evaluate((element) => {
    const video = element as unknown as PlayingVideo;
    video.muted = true;
    return video.play();
  });
  await waitFor(
    () => player.evaluate((element) => (element as unknown as PlayingVideo).currentTime > 0),
    what,
  );
}

async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

describe('the dashboard in chromium', () => {
  let broker: Broker;
  useBroker((started) => {
    broker = started;
  });
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  async function openPage(url: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(HANG_GUARD_MS);
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(url);
    return Object.assign(page, { problems });
  }

  test('shows a live worker, progress that moves, a failure; Retry requeues it and it completes; Cancel stops a job', async () => {
    const okFile = path.join(workspace.dir, 'ok');
    const failing = await workspace.addJob('fail_until', { ok_file: okFile }, { maxRetries: 0 });
    // Runs until the test cancels it from the page.
    const slow = await workspace.addJob('progress', { steps: 3000, step_ms: 50 });
    // Twenty quick jobs, so the chart and the counts have something to show.
    for (let index = 0; index < 20; index += 1) await workspace.addJob('noop');
    await workspace.addJob('fail', {
      retryable: false,
      message: 'input is not a video: moov atom not found',
    });
    const mqttEnv = { BROADCAST_TYPE: 'mqtt', MQTT_BROKER: broker.url };
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'dash-worker', '--tasks', 'fail_until,progress,noop,fail', '--concurrency', '2'],
      mqttEnv,
    );
    const dashboard = await startDashboard(workspace.dir, [], mqttEnv);
    const page = await openPage(`${dashboard.origin}/`);

    const workerRow = page.locator('#workers tr.worker[data-worker-id="dash-worker"]');
    await workerRow.waitFor();
    assert.match(await workerRow.innerText(), /fail_until, progress, noop, fail/);
    assert.match(await workerRow.innerText(), /ready/);

    const bar = page.locator(`#running tr.job[data-job-id="${slow}"] progress`);
    const barValue = async () => ((await bar.count()) > 0 ? Number(await bar.getAttribute('value')) : 0);
    const seen = await waitFor(barValue, 'progress above 0');
    await waitFor(async () => (await barValue()) > seen, 'the progress bar to move again');

    const failureRow = page.locator(`#recent-failures tr.job[data-job-id="${failing}"]`);
    await failureRow.waitFor();
    assert.match(await failureRow.locator('.error').innerText(), /not yet: .*ok is missing/);

    fs.writeFileSync(okFile, '');
    await failureRow.locator('button.retry').click();
    await worker.waitForLog((line) => line.msg === 'job completed' && line.job_id === failing);
    assert.equal((await workspace.store.getJob(failing))?.status, 'completed');
    await failureRow.waitFor({ state: 'detached' });
    // The page learns of the completion from the database: the hour's count for its type.
    await page
      .locator('#queue tr.queue-row[data-task-type="fail_until"] td.done', { hasText: /^1$/ })
      .waitFor();
    await page.locator('#queue tr.queue-row[data-task-type="noop"] td.done', { hasText: /^20$/ }).waitFor();

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.locator(`#running tr.job[data-job-id="${slow}"] button.cancel`).click();
    await worker.waitForLog((line) => line.msg === 'job failed' && line.job_id === slow);
    const cancelled = await workspace.store.getJob(slow);
    assert.deepEqual([cancelled?.status, cancelled?.error_message], ['error', 'cancelled']);
    await page.locator(`#recent-failures tr.job[data-job-id="${slow}"]`).waitFor();
    assert.deepEqual((page as Page & { problems: string[] }).problems, []);
  });

  test('a job page shows parameters and timings, an image output as a thumbnail, a video and an HLS stream that play', async () => {
    const image = await workspace.addJob(
      'image_resize',
      { width: 64, height: 48 },
      { input: { name: 'photo.jpg', content: await solidJpeg(320, 240, '#3366cc') } },
    );
    const clip = makeClip(path.join(workspace.dir, 'clip.mp4'), { seconds: 2, width: 320, height: 240 });
    const video = await workspace.addJob(
      'ffmpeg_render',
      { operation: 'transcode', width: 160, preset: 'ultrafast' },
      { input: { name: 'clip.mp4', content: fs.readFileSync(clip) } },
    );
    const hls = await workspace.addJob(
      'ffmpeg_render',
      { operation: 'hls', variants: [{ height: 120, bitrate: 200 }], segment_seconds: 1 },
      { input: { name: 'clip.mp4', content: fs.readFileSync(clip) } },
    );
    await drainBuiltIn(workspace.dir, ['image_resize', 'ffmpeg_render']);
    const dashboard = await startDashboard(workspace.dir);

    const imagePage = await openPage(`${dashboard.origin}/#job/${encodeURIComponent(image)}`);
    await imagePage.locator('#job .badge.completed').waitFor();
    assert.match(await imagePage.locator('#parameters pre').innerText(), /"width": 64/);
    assert.match(await imagePage.locator('#job').innerText(), /ran \d/);
    const thumbnail = imagePage.locator('#outputs .file.image img');
    await thumbnail.waitFor();
    const size = await waitFor(
      () =>
        thumbnail.evaluate((element) => {
          const image = element as unknown as LoadedImage;
          return image.complete && image.naturalWidth > 0 ? [image.naturalWidth, image.naturalHeight] : false;
        }),
      'the thumbnail to load',
    );
    assert.deepEqual(size, [64, 48]);

    const videoPage = await openPage(`${dashboard.origin}/#job/${encodeURIComponent(video)}`);
    const player = videoPage.locator('#outputs .file.video video');
    await player.waitFor();
    // A frame is shown before anything is played: the poster the page gives is the first frame.
    await waitFor(
      () =>
        player.evaluate((element) => {
          const video = element as unknown as PlayingVideo;
          return video.readyState >= 2 && video.videoWidth === 160;
        }),
      'the first frame',
    );
    await playsInPage(player, 'the video to play');

    // HLS plays where the browser plays it itself; where it cannot, the page says so.
    const hlsPage = await openPage(`${dashboard.origin}/#job/${encodeURIComponent(hls)}`);
    await hlsPage.locator('#outputs details.supporting summary', { hasText: /more files/ }).waitFor();
    const playsHls = await hlsPage.evaluate(
      () =>
        (
          globalThis as unknown as {
            document: { createElement(tag: string): { canPlayType(type: string): string } };
          }
        ).document
          .createElement('video')
          .canPlayType('application/vnd.apple.mpegurl') !== '',
    );
    if (playsHls) {
      await playsInPage(hlsPage.locator('#outputs .file.hls video'), 'the HLS stream to play');
    } else {
      await hlsPage.locator('#outputs .file.hls', { hasText: /does not play HLS itself/ }).waitFor();
    }
    for (const page of [imagePage, videoPage, hlsPage]) {
      assert.deepEqual((page as Page & { problems: string[] }).problems, []);
    }
  });

  test('rows are shown as text, never as markup, and the job list pages on', async () => {
    const hostileId = '<img src=x onerror="window.pwned=1">';
    const hostileError = '<script>window.pwned=2</script><b>bold</b> & "quotes"';
    await workspace.addJob('fail', { retryable: false, message: hostileError }, { jobId: hostileId });
    for (let index = 0; index < 55; index += 1) await workspace.addJob('noop');
    const worker = startWorker(workspace.dir, ['--tasks', 'fail', '--drain']);
    assert.equal((await worker.exited).code, 0);
    const dashboard = await startDashboard(workspace.dir);

    const page = await openPage(`${dashboard.origin}/#jobs?status=error`);
    const row = page.locator('#jobs tr.job').first();
    await row.waitFor();
    assert.equal(await row.locator('td').first().innerText(), hostileId);
    assert.equal(await row.locator('td.error').innerText(), hostileError);
    assert.equal(await row.locator('script, b, img').count(), 0);
    await page.goto(`${dashboard.origin}/#overview`);
    await page.locator('#recent-failures tr.job').first().waitFor();
    assert.equal(await page.locator('#view img').count(), 0);
    assert.equal(await page.evaluate(() => (globalThis as { pwned?: unknown }).pwned), undefined);

    await page.goto(`${dashboard.origin}/#jobs`);
    await page.locator('#jobs tr.job').nth(49).waitFor();
    assert.equal(await page.locator('#jobs tr.job').count(), 50);
    await page.locator('#jobs button.next').click();
    await page.waitForFunction(
      () => (globalThis as unknown as { location: { hash: string } }).location.hash === '#jobs?page=2',
    );
    await waitFor(
      async () => (await page.locator('#jobs tr.job').count()) === 6,
      'the second page: 56 jobs, 50 a page',
    );
    assert.equal(await page.locator('#jobs button.next').isDisabled(), true);
    assert.deepEqual((page as Page & { problems: string[] }).problems, []);
  });
});
