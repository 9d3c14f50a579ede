import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { near } from '../helpers/images.js';
import {
  audioStream,
  ffmpegProcessesMentioning,
  ffprobe,
  frameAt,
  makeAudio,
  makeClip,
  videoStream,
} from '../helpers/media.js';
import { type Broker, type Subscriber, startBroker, subscribe } from '../helpers/mosquitto.js';
import { BUILT_IN_MODULES, drainBuiltIn, runCli, startWorker } from '../helpers/worker-process.js';
import { completedJob, errorMessageOf, useWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

/** The order of an MP4's top-level boxes (ftyp, moov, mdat…). */
function topLevelBoxes(file: Buffer): string[] {
  const types: string[] = [];
  for (let offset = 0; offset + 8 <= file.length; ) {
    const size = file.readUInt32BE(offset);
    types.push(file.toString('latin1', offset + 4, offset + 8));
    if (size < 8) break;
    offset += size;
  }
  return types;
}

describe('ffmpeg_render through the daemon (real ffmpeg, clips made with lavfi)', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  const media = (name: string) => path.join(workspace.dir, name);
  /** Queues a render whose inputs are copies of `files`, stored under `storageRoot` as `name`. */
  const addRenderUnder = (
    storageRoot: string,
    params: Record<string, unknown>,
    files: { file: string; name: string }[],
    options: Record<string, unknown> = {},
  ) => {
    const jobId =
      typeof options.jobId === 'string' ? options.jobId : `render-${Math.random().toString(36).slice(2, 10)}`;
    const inputFiles = files.map(({ file, name }, index) => {
      const relative = path.posix.join('jobs', jobId, 'input', name);
      fs.mkdirSync(path.dirname(path.join(storageRoot, relative)), { recursive: true });
      fs.copyFileSync(file, path.join(storageRoot, relative));
      return { path: relative, ...(index === 0 ? { metadata: params } : {}) };
    });
    return workspace.addJob('ffmpeg_render', params, { jobId, inputFiles, ...options });
  };
  const addRender = (
    params: Record<string, unknown>,
    files: string[],
    options: Record<string, unknown> = {},
  ) =>
    addRenderUnder(
      workspace.storageRoot,
      params,
      files.map((file) => ({ file, name: path.basename(file) })),
      options,
    );
  const outputOf = (jobId: string, filename: string) =>
    path.join(workspace.storageRoot, 'jobs', jobId, 'output', filename);
  async function completed(jobId: string) {
    const { taskOutput, outputs } = await completedJob(workspace, jobId);
    return { output: taskOutput, files: outputs };
  }
  const failed = (jobId: string) => errorMessageOf(workspace.store, jobId);

  test('transcode: size never enlarged, codecs, trimming, faststart; progress rises to 100; nvenc falls back to the CPU', async () => {
    let broker: Broker | undefined;
    let events: Subscriber | undefined;
    try {
      broker = await startBroker();
      events = await subscribe(broker.url, ['inference/events', 'inference/workers/#']);
      const clip = makeClip(media('clip.mp4'), { seconds: 4, width: 640, height: 360 });
      const small = await addRender({ operation: 'transcode', width: 320, preset: 'veryfast' }, [clip]);
      const webm = await addRender(
        { container: 'webm', start: 1, duration: 1.5, height: 180, preset: 'ultrafast', crf: 40 },
        [clip],
      );
      const noUpscale = await addRender(
        { operation: 'transcode', width: 1920, audio_codec: 'none', preset: 'ultrafast' },
        [clip],
      );
      const nvenc = await addRender(
        { operation: 'transcode', hardware: 'nvenc', preset: 'ultrafast', width: 160 },
        [clip],
      );
      await drainBuiltIn(workspace.dir, ['ffmpeg_render'], [], {
        BROADCAST_TYPE: 'mqtt',
        MQTT_BROKER: broker.url,
      });

      const mp4 = await completed(small);
      assert.deepEqual(
        [
          mp4.output.width,
          mp4.output.height,
          mp4.output.video_codec,
          mp4.output.audio_codec,
          mp4.output.encoder,
        ],
        [320, 180, 'h264', 'aac', 'libx264'],
      );
      assert.ok(Math.abs(Number(mp4.output.duration) - 4) < 0.2, `duration ${mp4.output.duration}`);
      assert.equal(mp4.output.hardware_fallback, undefined, 'auto without a GPU is not a fallback');
      assert.deepEqual(
        mp4.files.map((file) => file.filename),
        ['transcoded.mp4'],
      );
      const written = ffprobe(outputOf(small, 'transcoded.mp4'));
      assert.deepEqual([videoStream(written)?.width, videoStream(written)?.height], [320, 180]);
      assert.equal(mp4.files[0]?.metadata.size_bytes, fs.statSync(outputOf(small, 'transcoded.mp4')).size);
      const boxes = topLevelBoxes(fs.readFileSync(outputOf(small, 'transcoded.mp4')));
      assert.ok(boxes.indexOf('moov') < boxes.indexOf('mdat'), `faststart: moov before mdat (${boxes})`);

      const vp9 = ffprobe(outputOf(webm, 'transcoded.webm'));
      assert.deepEqual(
        [videoStream(vp9)?.codec_name, audioStream(vp9)?.codec_name, videoStream(vp9)?.height],
        ['vp9', 'opus', 180],
      );
      assert.ok(
        Math.abs(Number(vp9.format.duration) - 1.5) < 0.15,
        `trimmed duration ${vp9.format.duration}`,
      );

      const kept = await completed(noUpscale);
      assert.deepEqual([kept.output.width, kept.output.height, kept.output.audio_codec], [640, 360, 'none']);

      const cpu = await completed(nvenc);
      assert.equal(cpu.output.encoder, 'libx264');
      assert.equal(cpu.output.hardware, 'none');
      assert.match(String(cpu.output.hardware_fallback), /h264_nvenc .*; used libx264$/);

      await events.waitFor(
        (message) => message.payload.includes(small) && message.payload.includes('"completed"'),
        'completed',
      );
      const progress = events.messages
        .filter((message) => message.topic === 'inference/events')
        .map(
          (message) =>
            JSON.parse(message.payload) as { job_id: string; progress: number; event_type: string },
        )
        .filter((event) => event.job_id === small)
        .map((event) => event.progress);
      assert.ok(progress.length >= 3, `progress events: ${progress}`);
      assert.deepEqual(
        [...progress].sort((a, b) => a - b),
        progress,
        `monotonic: ${progress}`,
      );
      assert.equal(progress.at(-1), 100);
      const announcement = events.messages.find(
        (message) => message.topic.startsWith('inference/workers/') && message.payload !== '',
      );
      const announced = JSON.parse(announcement?.payload ?? '{}') as {
        module_versions?: { ffmpeg_render?: { ffmpeg?: string; ffprobe?: string } };
      };
      assert.match(
        announced.module_versions?.ffmpeg_render?.ffmpeg ?? '',
        /^\d+\.\d+/,
        'the ffmpeg version is announced',
      );
    } finally {
      await events?.close();
      await broker?.stop();
    }
  });

  test('every container and codec the module offers writes what it says', async () => {
    const clip = makeClip(media('short.mp4'), { seconds: 1, width: 320, height: 240 });
    const silent = makeClip(media('silent.mp4'), { seconds: 2, width: 320, height: 240, audio: false });
    const combinations = [
      { container: 'mkv', video_codec: 'hevc', audio_codec: 'opus', expect: ['matroska', 'hevc', 'opus'] },
      { container: 'mov', video_codec: 'h264', audio_codec: 'mp3', expect: ['mov', 'h264', 'mp3'] },
      { container: 'webm', video_codec: 'av1', expect: ['matroska', 'av1', 'opus'] },
      { container: 'mp4', video_codec: 'av1', audio_codec: 'copy', expect: ['mov', 'av1', 'aac'] },
      { container: 'mp4', bitrate: 300, expect: ['mov', 'h264', 'aac'] },
    ];
    const jobs = [];
    for (const { expect, ...params } of combinations) {
      jobs.push({
        expect,
        container: params.container,
        jobId: await addRender({ ...params, preset: 'ultrafast' }, [clip]),
      });
    }
    const hlsSilent = await addRender(
      { operation: 'hls', variants: [{ height: 120, bitrate: 200 }], preset: 'ultrafast' },
      [silent],
    );
    await drainBuiltIn(workspace.dir, ['ffmpeg_render']);
    for (const { expect, container, jobId } of jobs) {
      const { output } = await completed(jobId);
      const probed = ffprobe(outputOf(jobId, `transcoded.${container}`));
      assert.deepEqual(
        [
          probed.format.format_name?.split(',')[0],
          videoStream(probed)?.codec_name,
          audioStream(probed)?.codec_name,
        ],
        expect,
        JSON.stringify(output),
      );
      assert.equal(output.video_codec, expect[1]);
    }
    const hls = await completed(hlsSilent);
    assert.equal(hls.output.audio_codec, 'none');
    assert.equal(audioStream(ffprobe(outputOf(hlsSilent, 'v0/segment_000.ts'))), undefined);
  });

  test('hls: variants no taller than the input, the original passed through, segments and adaptive.m3u8', async () => {
    const clip = makeClip(media('clip.mp4'), { seconds: 4, width: 640, height: 360 });
    const jobId = await addRender(
      {
        operation: 'hls',
        variants: [
          { height: 720, bitrate: 3000 },
          { height: 360, bitrate: 800 },
          { height: 240, bitrate: 400 },
        ],
        segment_seconds: 1,
        include_original: true,
        preset: 'ultrafast',
      },
      [clip],
    );
    await drainBuiltIn(workspace.dir, ['ffmpeg_render']);
    const { output, files } = await completed(jobId);
    const master = fs.readFileSync(outputOf(jobId, 'adaptive.m3u8'), 'utf8');
    assert.equal((master.match(/#EXT-X-STREAM-INF/g) ?? []).length, 3, master);
    assert.match(master, /RESOLUTION=426x240/);
    assert.doesNotMatch(master, /x720/);
    const names = files.map((file) => file.filename);
    for (const playlist of ['adaptive.m3u8', 'v0/index.m3u8', 'v1/index.m3u8', 'v2/index.m3u8']) {
      assert.ok(names.includes(playlist), `${playlist} in ${names}`);
    }
    const segments = names.filter((name) => name.endsWith('.ts'));
    assert.equal(output.segments, segments.length);
    assert.ok(segments.length >= 9, `about 4 one-second segments per variant, got ${segments.length}`);
    assert.equal(files.find((file) => file.filename === 'adaptive.m3u8')?.metadata.role, 'main');
    assert.deepEqual(
      (output.variants as { height: number }[]).map((variant) => variant.height),
      [360, 240, 360],
    );
    const firstSegment = ffprobe(outputOf(jobId, 'v1/segment_000.ts'));
    assert.equal(videoStream(firstSegment)?.height, 240);
    assert.equal(audioStream(firstSegment)?.codec_name, 'aac');
    assert.deepEqual(
      fs
        .readdirSync(path.join(workspace.storageRoot, 'jobs', jobId, 'output'))
        .filter((entry) => entry.startsWith('.')),
      [],
    );
  });

  test('thumbnail: a frame at a time, and a contact sheet of rows × columns', async () => {
    // A clip whose colour changes every second, so frames can be told apart.
    const clip = makeClip(media('colours.mp4'), {
      seconds: 4,
      width: 320,
      height: 240,
      audio: false,
      source: 'testsrc',
    });
    const single = await addRender({ operation: 'thumbnail', at_seconds: 1.5, format: 'png' }, [clip]);
    const percent = await addRender({ operation: 'thumbnail', at_percent: 50, width: 160 }, [clip]);
    const sheet = await addRender(
      { operation: 'thumbnail', sheet: { rows: 2, columns: 3 }, width: 100, format: 'webp' },
      [clip],
    );
    const late = await addRender({ operation: 'thumbnail', at_seconds: 99 }, [clip]);
    const end = await addRender({ operation: 'thumbnail', at_percent: 100 }, [clip]);
    await drainBuiltIn(workspace.dir, ['ffmpeg_render']);

    const png = await sharp(outputOf(single, 'thumbnail.png')).metadata();
    assert.deepEqual([png.format, png.width, png.height], ['png', 320, 240]);
    const jpeg = await sharp(outputOf(percent, 'thumbnail.jpg')).metadata();
    assert.deepEqual([jpeg.format, jpeg.width, jpeg.height], ['jpeg', 160, 120]);
    assert.equal((await completed(percent)).output.at_seconds, 2);
    const contact = await completed(sheet);
    assert.equal(contact.output.output, 'contact_sheet.webp');
    const sheetMeta = await sharp(outputOf(sheet, 'contact_sheet.webp')).metadata();
    assert.deepEqual([sheetMeta.format, sheetMeta.width, sheetMeta.height], ['webp', 300, 150]);
    const stats = await sharp(outputOf(sheet, 'contact_sheet.webp'))
      .extract({ left: 200, top: 75, width: 100, height: 75 })
      .stats();
    assert.ok(
      stats.channels.some((channel) => channel.mean > 20),
      'the last tile holds a frame, not padding',
    );
    assert.equal((await completed(end)).output.at_seconds, 3.96, 'the last frame, not past it');
    assert.equal(await failed(late), 'at_seconds=99 is past the end of colours.mp4 (4.00 s long)');
  });

  test('concat: clips of different sizes, one without sound, joined with a watermark', async () => {
    const first = makeClip(media('first.mp4'), { seconds: 2, width: 640, height: 360 });
    const second = makeClip(media('second.mp4'), { seconds: 1.5, width: 320, height: 240, audio: false });
    const mark = media('mark.png');
    await sharp({ create: { width: 64, height: 64, channels: 4, background: '#ff0000ff' } })
      .png()
      .toFile(mark);
    const jobId = await addRender(
      {
        operation: 'concat',
        watermark: { input: 2, position: 'top-left', margin: 10, width_percent: 20 },
        preset: 'ultrafast',
      },
      [first, second, mark],
    );
    await drainBuiltIn(workspace.dir, ['ffmpeg_render']);
    const { output } = await completed(jobId);
    assert.deepEqual(
      [output.width, output.height, output.video_codec, output.audio_codec],
      [640, 360, 'h264', 'aac'],
    );
    assert.ok(Math.abs(Number(output.duration) - 3.5) < 0.2, `duration ${output.duration}`);
    const render = outputOf(jobId, 'render.mp4');
    for (const at of [0.5, 2.8]) {
      const frame = frameAt(render, at);
      const pixel = (x: number, y: number) => [...frame.subarray((y * 640 + x) * 3, (y * 640 + x) * 3 + 3)];
      assert.ok(near(pixel(30, 30), [255, 0, 0], 40), `watermark at ${at}s: ${pixel(30, 30)}`);
      assert.ok(!near(pixel(320, 200), [255, 0, 0], 40), 'and only there');
    }
    const letterboxed = frameAt(render, 2.8);
    const left = [...letterboxed.subarray((180 * 640 + 5) * 3, (180 * 640 + 5) * 3 + 3)];
    assert.ok(near(left, [0, 0, 0], 20), `the 4:3 clip is pillarboxed, not stretched: ${left}`);
  });

  test('bad inputs end before any encoding, with the file and the cause', async () => {
    const clip = makeClip(media('clip.mp4'), { seconds: 2, width: 320, height: 240 });
    const junk = media('junk.mp4');
    fs.writeFileSync(junk, Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919) % 251)));
    const tone = makeAudio(media('tone.m4a'), 1);
    const whole = fs.readFileSync(clip);
    const cut = media('cut.mp4');
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const corrupt = await addRender({}, [junk]);
    const audioOnly = await addRender({}, [tone]);
    const truncated = await addRender({}, [cut]);
    const badCrf = await addRender({ crf: 99 }, [clip]);
    const badOperation = await addRender({ operation: 'explode' }, [clip]);
    const webmH264 = await addRender({ container: 'webm', video_codec: 'h264' }, [clip]);
    const lateStart = await addRender({ start: 30 }, [clip]);
    const twoInputs = await addRender({ operation: 'thumbnail' }, [clip, clip]);
    const all = [corrupt, audioOnly, truncated, badCrf, badOperation, webmH264, lateStart, twoInputs];
    // Not drained: the process table is read while the runners live (a drain's exit kills their groups).
    const worker = startWorker(workspace.dir, [
      '--modules-dir',
      BUILT_IN_MODULES,
      '--tasks',
      'ffmpeg_render',
    ]);
    await waitFor(async () => {
      const jobs = await Promise.all(all.map((jobId) => workspace.store.getJob(jobId)));
      return jobs.every((job) => job?.status === 'error');
    }, 'every bad job to fail');
    // Transcode starts ffmpeg while it probes: a failed probe or plan must take it down too.
    for (const jobId of [corrupt, audioOnly, truncated, lateStart]) {
      assert.deepEqual(ffmpegProcessesMentioning(jobId), [], `no ffmpeg left for ${jobId}`);
      const outputDir = path.join(workspace.storageRoot, 'jobs', jobId, 'output');
      const left = fs.existsSync(outputDir) ? fs.readdirSync(outputDir) : [];
      assert.deepEqual(left, [], `nothing left in the output folder of ${jobId}`);
    }
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0, worker.stderr());

    assert.match(
      await failed(corrupt),
      /^Cannot read input junk\.mp4: not a media file ffprobe can open, or corrupt \(.*Invalid data/,
    );
    assert.equal(await failed(audioOnly), 'Input tone.m4a has no video stream (only audio (aac))');
    assert.match(
      await failed(truncated),
      /^Cannot read input cut\.mp4: .*(moov atom not found|Invalid data)/,
    );
    assert.match(await failed(badCrf), /^Invalid parameters: crf: /);
    assert.match(await failed(badOperation), /^Invalid parameters: operation: /);
    assert.equal(await failed(webmH264), 'Invalid parameters: video_codec: webm holds vp9 or av1, not h264');
    assert.equal(await failed(lateStart), 'start=30 is past the end of clip.mp4 (2.00 s long)');
    assert.equal(await failed(twoInputs), 'ffmpeg_render thumbnail requires exactly 1 input file, got 2');
    for (const jobId of [corrupt, audioOnly, truncated]) {
      assert.equal((await workspace.store.getJob(jobId))?.retry_count, 0, 'not retried');
    }
  });

  /** 720 lines tall, so HLS keeps both of its default variants (720p and 480p). */
  const hlsClip = (name: string, audio = true) =>
    makeClip(media(name), { seconds: 1, width: 1280, height: 720, fps: 10, audio });
  const claimsOf = (worker: { logs: Record<string, unknown>[] }, jobId: string) =>
    worker.logs
      .filter((line) => line.msg === 'job claimed' && line.job_id === jobId)
      .map((line) => line.attempt);

  test('every operation completes with its default parameters ({operation} and nothing else), with and without sound', async () => {
    const clip = hlsClip('clip.mp4');
    const silent = hlsClip('silent.mp4', false);
    const jobs = {
      transcode: await addRender({ operation: 'transcode' }, [clip]),
      hls: await addRender({ operation: 'hls' }, [clip]),
      hlsSilent: await addRender({ operation: 'hls' }, [silent]),
      thumbnail: await addRender({ operation: 'thumbnail' }, [clip]),
      concat: await addRender({ operation: 'concat' }, [clip, silent]),
    };
    await drainBuiltIn(workspace.dir, ['ffmpeg_render']);

    for (const [operation, jobId] of Object.entries(jobs)) {
      await completed(jobId);
      assert.equal((await workspace.store.getJob(jobId))?.retry_count, 0, `${operation}: first attempt`);
    }
    const transcoded = await completed(jobs.transcode);
    assert.deepEqual(
      [transcoded.output.width, transcoded.output.video_codec, transcoded.output.audio_codec],
      [1280, 'h264', 'aac'],
    );
    for (const [jobId, audio] of [
      [jobs.hls, 'aac'],
      [jobs.hlsSilent, undefined],
    ] as const) {
      const master = fs.readFileSync(outputOf(jobId, 'adaptive.m3u8'), 'utf8');
      assert.deepEqual(
        master.match(/RESOLUTION=\d+x\d+/g),
        ['RESOLUTION=1280x720', 'RESOLUTION=854x480'],
        master,
      );
      for (const variant of ['v0', 'v1']) {
        const segment = ffprobe(outputOf(jobId, `${variant}/segment_000.ts`));
        assert.equal(audioStream(segment)?.codec_name, audio, `${variant} of ${jobId}`);
      }
    }
    const thumbnail = await sharp(outputOf(jobs.thumbnail, 'thumbnail.jpg')).metadata();
    assert.deepEqual([thumbnail.format, thumbnail.width, thumbnail.height], ['jpeg', 1280, 720]);
    const joined = await completed(jobs.concat);
    assert.deepEqual([joined.output.audio_codec, joined.output.width], ['aac', 1280]);
    assert.ok(Math.abs(Number(joined.output.duration) - 2) < 0.2, `duration ${joined.output.duration}`);
  });

  test('arguments reach ffmpeg as they are: spaces in the storage root and file names, quotes, a one-space var_stream_map', async () => {
    const recorder = ffmpegWrapper('recorder', []);
    // One space in the root: fluent-ffmpeg's option arrays split a value holding exactly one.
    const storageRoot = path.join(workspace.dir, 'storage root');
    const clip = hlsClip('clip.mp4');
    const mark = media('mark.png');
    await sharp({ create: { width: 32, height: 32, channels: 4, background: '#ff0000ff' } })
      .png()
      .toFile(mark);
    const hls = await addRenderUnder(storageRoot, { operation: 'hls' }, [
      { file: clip, name: 'my clip.mp4' },
    ]);
    const odd = `-it's  a "clip".mp4`;
    const concat = await addRenderUnder(
      storageRoot,
      { operation: 'concat', watermark: { input: 1 }, preset: 'ultrafast' },
      [
        { file: clip, name: odd },
        { file: mark, name: 'my mark.png' },
      ],
    );
    // ffmpeg's image muxer would read `%d` in the path as a frame number and write elsewhere.
    const thumbnail = await addRenderUnder(
      storageRoot,
      { operation: 'thumbnail' },
      [{ file: clip, name: '100%d.mp4' }],
      { jobId: `thumbnail-%d-${Math.random().toString(36).slice(2, 10)}` },
    );
    await drainBuiltIn(workspace.dir, ['ffmpeg_render'], ['--storage', storageRoot], {
      FFMPEG_BINARY: recorder.binary,
    });

    await completed(hls);
    await completed(concat);
    await completed(thumbnail);
    const inputOf = (jobId: string, name: string) => path.join(storageRoot, 'jobs', jobId, 'input', name);
    const outputDir = path.join(storageRoot, 'jobs', hls, 'output');
    const hlsCalls = recorder.callsMentioning(hls);
    assert.equal(hlsCalls.length, 1, JSON.stringify(hlsCalls));
    const [hlsCall] = hlsCalls;
    assert.equal(argumentAfter(hlsCall, '-i'), inputOf(hls, 'my clip.mp4'));
    assert.equal(argumentAfter(hlsCall, '-var_stream_map'), 'v:0,a:0 v:1,a:1');
    const staging = path.dirname(path.dirname(hlsCall?.at(-1) ?? ''));
    assert.equal(path.dirname(staging), outputDir);
    assert.equal(hlsCall?.at(-1), path.join(staging, 'v%v', 'index.m3u8'));
    assert.equal(
      argumentAfter(hlsCall, '-hls_segment_filename'),
      path.join(staging, 'v%v', 'segment_%03d.ts'),
    );
    assert.deepEqual(
      hlsCall?.filter((arg) => arg.includes(storageRoot)).length,
      3,
      'the input, the segments and the playlist, each one whole argument',
    );
    assert.ok(fs.existsSync(path.join(outputDir, 'v1', 'segment_000.ts')));

    const [concatCall] = recorder.callsMentioning(concat);
    assert.deepEqual(
      concatCall?.flatMap((arg, index) => (concatCall[index - 1] === '-i' ? [arg] : [])),
      [inputOf(concat, odd), inputOf(concat, 'my mark.png')],
    );
    assert.match(argumentAfter(concatCall, '-filter_complex') ?? '', /^\[0:v\]scale=.*overlay=.*\[vout\]$/);
    const rendered = concatCall?.at(-1) ?? '';
    assert.deepEqual(
      [path.dirname(path.dirname(rendered)), path.basename(rendered)],
      [path.join(storageRoot, 'jobs', concat, 'output'), 'render.mp4'],
    );

    const [thumbnailCall] = recorder.callsMentioning(thumbnail);
    assert.equal(argumentAfter(thumbnailCall, '-i'), inputOf(thumbnail, '100%d.mp4'));
    const image = await sharp(
      path.join(storageRoot, 'jobs', thumbnail, 'output', 'thumbnail.jpg'),
    ).metadata();
    assert.deepEqual([image.width, image.height], [1280, 720]);
  });

  test('arguments ffmpeg rejects end the job at once with ffmpeg’s cause first; a crashed ffmpeg is still retried', async () => {
    const clip = hlsClip('clip.mp4');
    const small = makeClip(media('small.mp4'), { seconds: 1, width: 320, height: 240 });
    // The original bug, replayed by the wrapper below: the default HLS map split at its space.
    const splitMap = await addRender({ operation: 'hls' }, [clip]);
    // Parameters the schema takes and the mov muxer refuses.
    const movOpus = await addRender({ container: 'mov', audio_codec: 'opus', preset: 'ultrafast' }, [small]);
    const unknownOption = await addRender({ preset: 'ultrafast' }, [small]);
    const crashOnce = await addRender({ preset: 'ultrafast' }, [small]);
    const crashed = media('crashed-once');
    const scratch = media('scratch');
    fs.mkdirSync(scratch);
    const wrapper = ffmpegWrapper('rejecting', [
      // Split, `-master_pl_name adaptive.m3u8` is relative to a second output named `v:1,a:1`: it
      // lands in the working directory, so that is a scratch folder.
      `  *${splitMap}*) cd '${scratch}'; set -f; exec ffmpeg $* ;;`,
      `  *${unknownOption}*) exec ffmpeg -no_such_option 1 "$@" ;;`,
      `  *${crashOnce}*) [ -e '${crashed}' ] || { touch '${crashed}'; kill -KILL $$; } ;;`,
    ]);
    // No backoff: a retry, if one were made, would happen within this drain.
    const worker = await drainBuiltIn(workspace.dir, ['ffmpeg_render'], ['--retry-backoff', '0'], {
      FFMPEG_BINARY: wrapper.binary,
    });

    const causes = {
      [splitMap]: /^ffmpeg rejected its arguments: \[hls\] Unable to find mapping variant stream/,
      [movOpus]: /^ffmpeg rejected its arguments: \[mov\] opus only supported in MP4\./,
      [unknownOption]: /^ffmpeg rejected its arguments: Unrecognized option 'no_such_option'\./,
    };
    for (const [jobId, cause] of Object.entries(causes)) {
      const message = await errorMessageOf(workspace.store, jobId, { retried: false });
      assert.match(message, cause);
      assert.match(message, /\(exit code 1\)$/);
      assert.ok(message.length < 500, `short: ${message}`);
      assert.doesNotMatch(message, /frame=|frame I:|kb\/s|Stream mapping/, 'no statistics');
      assert.deepEqual(claimsOf(worker, jobId), [1], `${jobId}: one attempt`);
      assert.deepEqual(fs.readdirSync(path.join(workspace.storageRoot, 'jobs', jobId, 'output')), []);
    }

    await completed(crashOnce);
    assert.equal((await workspace.store.getJob(crashOnce))?.retry_count, 1);
    assert.deepEqual(claimsOf(worker, crashOnce), [1, 2]);
    const retried = worker.logs.find(
      (line) => line.msg === 'job failed; will retry' && line.job_id === crashOnce,
    );
    assert.match(String(retried?.error), /^ffmpeg failed: .*killed by SIGKILL/);
  });

  test('a timeout, a shutdown, a cancel and a deleted job each kill ffmpeg itself: no ffmpeg process is left', async () => {
    const clip = makeClip(media('long.mp4'), { seconds: 10, width: 1280, height: 720, audio: false });
    // AV1 at its slowest setting: many minutes for this clip, so only the daemon can end it.
    const endless = { video_codec: 'av1', preset: 'veryslow' };
    const daemonArgs = ['--modules-dir', BUILT_IN_MODULES, '--tasks', 'ffmpeg_render', '--kill-grace', '1'];
    const ffmpegStarted = (jobId: string) =>
      waitFor(() => ffmpegProcessesMentioning(jobId).length > 0, `ffmpeg to start on ${jobId}`);
    const outputsOf = (jobId: string) => {
      const outputDir = path.join(workspace.storageRoot, 'jobs', jobId, 'output');
      return fs.existsSync(outputDir)
        ? fs.readdirSync(outputDir).filter((entry) => !entry.startsWith('.render-'))
        : [];
    };

    const timedOut = await addRender({ ...endless, timeout_s: 3 }, [clip], { maxRetries: 0 });
    const drained = startWorker(workspace.dir, [...daemonArgs, '--drain']);
    await ffmpegStarted(timedOut);
    assert.equal((await drained.exited).code, 0, drained.stderr());
    assert.match(await failed(timedOut), /timed out after 3 s/);
    assert.deepEqual(ffmpegProcessesMentioning(timedOut), [], 'no orphaned ffmpeg after a timeout');
    assert.deepEqual(outputsOf(timedOut), [], 'nothing half-written is published');

    const interrupted = await addRender(endless, [clip]);
    const stopped = startWorker(workspace.dir, [...daemonArgs, '--shutdown-grace', '0.5']);
    await ffmpegStarted(interrupted);
    stopped.child.kill('SIGTERM');
    assert.equal((await stopped.exited).code, 0, stopped.stderr());
    assert.deepEqual(ffmpegProcessesMentioning(interrupted), [], 'no orphaned ffmpeg after a shutdown');
    const requeued = await workspace.store.getJob(interrupted);
    assert.deepEqual(
      [requeued?.status, requeued?.retry_count],
      ['queued', 0],
      'back in the queue, no retry spent',
    );

    // Cancelled by an operator: the same, and the job ends in error "cancelled". A lease of a few
    // seconds: on a loaded machine a shorter one lapses under the encoding, and the job goes back
    // to the queue before the cancel reaches it (the runner gives a job up when renewals stop).
    const watching = startWorker(workspace.dir, [...daemonArgs, '--lease-ttl', '3']);
    await ffmpegStarted(interrupted);
    const cancel = await runCli(['jobs', 'cancel', interrupted], { CL_SERVER_DIR: workspace.dir });
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /: cancelled \(worker .* stopped it\)/);
    await waitFor(
      () => ffmpegProcessesMentioning(interrupted).length === 0,
      'ffmpeg of the cancelled job to be gone',
    );
    // Removed once "cancelled" is written, which `jobs cancel` has just seen: waited for.
    await waitFor(
      () => !fs.existsSync(path.join(workspace.storageRoot, 'jobs', interrupted, 'output')),
      'the cancelled job’s output to be removed',
    );
    assert.equal((await workspace.store.getJob(interrupted))?.error_message, 'cancelled');

    const deleted = await addRender(endless, [clip]);
    await ffmpegStarted(deleted);
    const raw = new Database(workspace.databasePath);
    raw.prepare('DELETE FROM jobs WHERE job_id = ?').run(deleted);
    raw.close();
    // Whichever notices first (the lease renewal, or the runner's next progress write) says so.
    await watching.waitForLog((entry) =>
      String(entry.msg).startsWith('job was taken back, deleted or finished elsewhere'),
    );
    await waitFor(
      () => ffmpegProcessesMentioning(deleted).length === 0,
      'ffmpeg of the deleted job to be gone',
    );
    watching.child.kill('SIGTERM');
    assert.equal((await watching.exited).code, 0, watching.stderr());
  });

  /**
   * The real ffmpeg behind a shell wrapper that records the exact arguments of every call (each
   * one as ffmpeg receives it: spaces, quotes and all); `cases` are sh `case` branches on all the
   * arguments joined, tried before the real ffmpeg runs.
   */
  function ffmpegWrapper(
    name: string,
    cases: string[],
  ): { binary: string; callsMentioning(marker: string): string[][] } {
    const binary = media(`${name}/ffmpeg`);
    const log = media(`${name}.log`);
    fs.mkdirSync(path.dirname(binary));
    fs.writeFileSync(
      binary,
      [
        '#!/bin/sh',
        // One record per call: the argument count, then each argument, all NUL-terminated.
        `printf '%s\\0' "$#" "$@" >> '${log}'`,
        'case "$*" in',
        ...cases,
        'esac',
        'exec ffmpeg "$@"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const calls = () => {
      const fields = fs.readFileSync(log, 'utf8').split('\0');
      const found: string[][] = [];
      for (let index = 0; index < fields.length - 1; ) {
        const count = Number(fields[index]);
        found.push(fields.slice(index + 1, index + 1 + count));
        index += 1 + count;
      }
      return found;
    };
    return {
      binary,
      callsMentioning: (marker) => calls().filter((call) => call.some((arg) => arg.includes(marker))),
    };
  }

  /** The argument after `option` in one ffmpeg call. */
  function argumentAfter(call: readonly string[] | undefined, option: string): string | undefined {
    const index = call?.indexOf(option) ?? -1;
    assert.ok(index >= 0, `${option} in ${JSON.stringify(call)}`);
    return call?.[index + 1];
  }

  test('an ffmpeg that does not take its graph on stdin (ffmpeg 9) gets it on the command line', async () => {
    const ffmpeg9 = ffmpegWrapper('ffmpeg9', [
      `  *-filter_complex_script*) echo "Unrecognized option 'filter_complex_script'." >&2; exit 8 ;;`,
    ]);
    const clip = makeClip(media('clip.mp4'), { seconds: 2, width: 640, height: 480 });
    const jobId = await addRender({ width: 320 }, [clip]);
    await drainBuiltIn(workspace.dir, ['ffmpeg_render'], [], { FFMPEG_BINARY: ffmpeg9.binary });

    const { output } = await completed(jobId);
    assert.deepEqual([output.width, output.height], [320, 240]);
    const written = videoStream(ffprobe(outputOf(jobId, 'transcoded.mp4')));
    assert.deepEqual([written?.width, written?.height], [320, 240]);
    const renders = ffmpeg9.callsMentioning(jobId);
    assert.equal(renders.length, 1, renders.join('\n'));
    assert.match(argumentAfter(renders[0], '-filter_complex') ?? '', /^\[0:v:0\]scale=320:240/);
  });

  test('a GPU encoder that passes its test but fails on the job is redone on the CPU in the same attempt', async () => {
    // This machine has no GPU: the wrapper plays one whose one-frame test encode works and whose
    // real encode fails, as a driver fault would; GPU_DEVICE names a file standing in for its node.
    const gpu = ffmpegWrapper('flaky-gpu', [
      '  *h264_vaapi*color=size=*|*color=size=*h264_vaapi*) exit 0 ;;',
      '  *h264_vaapi*) echo "[h264_vaapi @ 0x1] Failed to upload frame: -5 (Input/output error)" >&2; exit 1 ;;',
    ]);
    // One space: an input option value fluent-ffmpeg's option arrays used to split in two.
    const renderNode = media('render node');
    fs.writeFileSync(renderNode, '');
    const clip = makeClip(media('clip.mp4'), { seconds: 2, width: 640, height: 480 });
    const jobId = await addRender({ width: 320, hardware: 'vaapi' }, [clip], { maxRetries: 0 });
    await drainBuiltIn(workspace.dir, ['ffmpeg_render'], [], {
      FFMPEG_BINARY: gpu.binary,
      GPU_DEVICE: renderNode,
    });

    const { output } = await completed(jobId);
    assert.equal(output.encoder, 'libx264');
    assert.equal(output.hardware, 'none');
    assert.match(
      String(output.hardware_fallback),
      /^h264_vaapi failed mid-job \(ffmpeg failed: .*Failed to upload frame.*\); re-encoded with libx264$/s,
    );
    const renders = gpu.callsMentioning(jobId);
    assert.equal(renders.length, 2, renders.join('\n'));
    assert.equal(argumentAfter(renders[0], '-vaapi_device'), renderNode);
    assert.equal(argumentAfter(renders[0], '-c:v'), 'h264_vaapi');
    assert.equal(argumentAfter(renders[1], '-c:v'), 'libx264');
    const written = videoStream(ffprobe(outputOf(jobId, 'transcoded.mp4')));
    assert.deepEqual([written?.codec_name, written?.width, written?.height], ['h264', 320, 240]);
  });

  test('without ffmpeg: asking for ffmpeg_render fails at start-up saying how to install it; other modules run', async () => {
    const missing = { FFMPEG_BINARY: path.join(workspace.dir, 'no-such-dir', 'ffmpeg') };
    const asked = await runCli(
      ['run', '--modules-dir', BUILT_IN_MODULES, '--tasks', 'ffmpeg_render', '--drain'],
      {
        ...missing,
        CL_SERVER_DIR: workspace.dir,
        BROADCAST_TYPE: 'noop',
      },
    );
    assert.equal(asked.code, 2);
    assert.match(
      asked.stderr,
      /module ffmpeg_render: ffmpeg not found at .*no-such-dir\/ffmpeg \(FFMPEG_BINARY\); install it \(Debian\/Ubuntu: apt-get install ffmpeg/,
    );
    await drainBuiltIn(workspace.dir, ['image_resize'], [], missing);
    const everything = startWorker(workspace.dir, ['--modules-dir', BUILT_IN_MODULES, '--drain'], missing);
    assert.equal((await everything.exited).code, 0, everything.stderr());
    const leftOut = everything.logs.find((line) => line.msg === 'module left out: its preflight failed');
    assert.equal(leftOut?.task_type, 'ffmpeg_render');
    const started = everything.logs.find((line) => line.msg === 'worker started');
    assert.deepEqual(started?.tasks, ['image_conversion', 'image_resize']);

    const found = startWorker(workspace.dir, [
      '--modules-dir',
      BUILT_IN_MODULES,
      '--tasks',
      'ffmpeg_render',
      '--drain',
    ]);
    assert.equal((await found.exited).code, 0, found.stderr());
    const ready = found.logs.find((line) => line.msg === 'module ready') as
      | { versions?: { ffmpeg?: string } }
      | undefined;
    assert.match(ready?.versions?.ffmpeg ?? '', /^\d+\.\d+/);
  });
});
