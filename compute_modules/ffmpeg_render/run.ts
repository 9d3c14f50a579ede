import fs from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, InvalidParametersError } from '../../worker/errors.js';
import { defineRun, type JobContext } from '../../worker/modules/module-contract.js';
import { type FfmpegBinaries, resolveBinaries } from './binaries.js';
import type { VideoCodec } from './codecs.js';
import { takesGraphOnStdin } from './deferred-graph.js';
import {
  availableEncoders,
  chooseVideoEncoder,
  type EncoderChoice,
  softwareEncoder,
  type VideoEncoder,
} from './encoders.js';
import { FfmpegRunError } from './ffmpeg-failure.js';
import { type FfmpegInvocation, runFfmpeg } from './fluent.js';
import { planConcat } from './operations/concat.js';
import { planHls } from './operations/hls.js';
import { planThumbnail } from './operations/thumbnail.js';
import { planTranscode, startTranscode } from './operations/transcode.js';
import type { ConcatParams, FfmpegRenderParams } from './params.js';
import type { EarlyStart, RenderPlan } from './plan.js';
import { type MediaInfo, probeMedia } from './probe.js';
import type { FfmpegSettings } from './settings.js';
import { createStaging, publishStaging } from './staging.js';

/** Probing the inputs is the first few percent; moving the files into place the last few. */
const PROGRESS_AFTER_PROBE = 3;
const PROGRESS_RENDERED = 95;

/**
 * Runs at runner start: the encoder list (and fluent-ffmpeg's capability cache) is read then, and
 * whether ffmpeg takes its graph on stdin.
 */
export async function warmUp(settings: FfmpegSettings): Promise<void> {
  const binaries = resolveBinaries(settings);
  await Promise.all([availableEncoders(binaries), takesGraphOnStdin(binaries)]);
}

export default defineRun<FfmpegRenderParams, FfmpegSettings>(async (params, context) => {
  const binaries = resolveBinaries(context.settings);
  const { planned, early: earlyStart } = startPlanning(params, context.inputPaths, binaries);
  // Progress is ffmpeg's output time against this; ffmpeg reports none before it has its graph,
  // so none before the plan is made. The second handler keeps a failed probe from counting as
  // unhandled before it is awaited.
  let expectedDurationS = 0;
  void planned.then(
    (plan) => {
      expectedDurationS = plan.expectedDurationS;
      context.reportProgress(PROGRESS_AFTER_PROBE);
    },
    () => {},
  );
  const early = earlyStart && (await takesGraphOnStdin(binaries)) ? earlyStart : undefined;

  const videoCodec = early ? early.videoCodec : (await planned).videoCodec;
  const choice = videoCodec
    ? await chooseVideoEncoder(
        binaries,
        videoCodec,
        'hardware' in params ? params.hardware : 'none',
        context.settings.gpuDevice,
      )
    : undefined;
  const { staging, durationS, encoder, fallbackReason } = await renderWithFallback({
    binaries,
    context,
    videoCodec,
    choice,
    // The first attempt takes the early start when there is one; a redo on the CPU, the plan.
    invocation: (stagingDir, chosen, redo) =>
      early && !redo
        ? early.build(stagingDir, chosen, planned)
        : planned.then((plan) => plan.build(stagingDir, chosen)),
    expectedDurationS: () => expectedDurationS,
  });
  const plan = await planned;
  const files = await publishStaging(staging, context.outputDir);
  if (!files.includes(plan.mainOutput)) {
    // ffmpeg can succeed without writing anything (a seek past the last decodable frame).
    throw new BadInputError(
      `ffmpeg finished without writing ${plan.mainOutput}: nothing decodable where asked`,
    );
  }
  context.reportProgress(PROGRESS_RENDERED);
  return describeResult(plan, files, context.outputDir, {
    operation: params.operation,
    durationS,
    encoder,
    fallbackReason,
  });
});

/**
 * Validates the input count at once and starts probing; the plan follows from the probes. Transcode
 * also gives an early start, so ffmpeg loads while its input is probed (see EarlyStart).
 */
function startPlanning(
  params: FfmpegRenderParams,
  paths: readonly string[],
  binaries: FfmpegBinaries,
): { planned: Promise<RenderPlan>; early?: EarlyStart } {
  if (params.operation === 'concat') return { planned: planConcatInputs(params, paths, binaries) };
  const [only, ...extra] = paths;
  if (only === undefined || extra.length > 0) {
    throw new InvalidParametersError(
      `ffmpeg_render ${params.operation} requires exactly 1 input file, got ${paths.length}`,
    );
  }
  const probed = probeMedia(binaries, only);
  switch (params.operation) {
    case 'transcode':
      return {
        planned: probed.then((input) => planTranscode(params, input)),
        early: startTranscode(params, only),
      };
    case 'hls':
      return { planned: probed.then((input) => planHls(params, input)) };
    case 'thumbnail':
      return { planned: probed.then((input) => planThumbnail(params, input)) };
  }
}

async function planConcatInputs(
  params: ConcatParams,
  paths: readonly string[],
  binaries: FfmpegBinaries,
): Promise<RenderPlan> {
  const markIndex = params.watermark?.input;
  if (markIndex !== undefined && markIndex >= paths.length) {
    throw new InvalidParametersError(
      `watermark.input=${markIndex}, but the job has ${paths.length} input file(s) (counted from 0)`,
    );
  }
  const clipPaths = paths.filter((_, index) => index !== markIndex);
  if (clipPaths.length === 0)
    throw new InvalidParametersError('ffmpeg_render concat needs at least 1 video input');
  const clips: MediaInfo[] = [];
  for (const clip of clipPaths) clips.push(await probeMedia(binaries, clip));
  const watermarkPath = markIndex === undefined ? undefined : paths[markIndex];
  if (watermarkPath !== undefined) await probeMedia(binaries, watermarkPath, { needVideo: false });
  return planConcat(params, clips, watermarkPath);
}

interface Rendered {
  /** The folder ffmpeg wrote into, to be published. */
  staging: string;
  durationS: number | undefined;
  encoder: VideoEncoder | undefined;
  fallbackReason: string | undefined;
}

/**
 * Renders with the chosen encoder; a GPU encoder that passed its test can still fail on a real
 * input (memory, a driver fault, an option it refuses), and then the job is redone once on the CPU
 * rather than failed, retryable or not. Only ffmpeg failing counts (FfmpegRunError): a failed probe
 * or plan is the job's own failure. Whatever fails, no staging folder is left behind.
 */
async function renderWithFallback(job: {
  binaries: FfmpegBinaries;
  context: JobContext<FfmpegSettings>;
  videoCodec: VideoCodec | undefined;
  choice: EncoderChoice | undefined;
  invocation(
    staging: string,
    encoder: VideoEncoder | undefined,
    redo: boolean,
  ): FfmpegInvocation | Promise<FfmpegInvocation>;
  expectedDurationS(): number;
}): Promise<Rendered> {
  const { binaries, context, videoCodec, choice } = job;
  const attempt = (encoder: VideoEncoder | undefined, redo: boolean) =>
    inStaging(context.outputDir, async (staging) =>
      render(binaries, await job.invocation(staging, encoder, redo), job.expectedDurationS, context),
    );
  const encoder = choice?.encoder;
  try {
    const { staging, result } = await attempt(encoder, false);
    return { staging, durationS: result, encoder, fallbackReason: choice?.fallbackReason };
  } catch (error) {
    const gpuFailed =
      error instanceof FfmpegRunError && encoder?.accelerator !== undefined && videoCodec !== undefined;
    if (!gpuFailed || context.signal.aborted) throw error;
    const software = softwareEncoder(videoCodec, await availableEncoders(binaries));
    context.log.warn({ encoder: encoder.name, err: error }, 'hardware encode failed; re-encoding on the CPU');
    const { staging, result } = await attempt(software, true);
    return {
      staging,
      durationS: result,
      encoder: software,
      fallbackReason: `${encoder.name} failed mid-job (${error.message}); re-encoded with ${software.name}`,
    };
  }
}

/** Runs `work` in a fresh staging folder under `outputDir`, which is removed if the work fails. */
async function inStaging<T>(
  outputDir: string,
  work: (staging: string) => Promise<T>,
): Promise<{ staging: string; result: T }> {
  const staging = await createStaging(outputDir);
  try {
    return { staging, result: await work(staging) };
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Runs one ffmpeg call; resolves with the last output time ffmpeg reported (its duration). */
async function render(
  binaries: FfmpegBinaries,
  invocation: FfmpegInvocation,
  expectedDurationS: () => number,
  context: JobContext,
): Promise<number | undefined> {
  const span = PROGRESS_RENDERED - PROGRESS_AFTER_PROBE;
  let lastTime: number | undefined;
  await runFfmpeg(binaries, invocation, {
    signal: context.signal,
    onTime: (seconds) => {
      lastTime = seconds;
      const expected = expectedDurationS();
      if (expected <= 0) return;
      const done = Math.min(1, seconds / expected);
      context.reportProgress(PROGRESS_AFTER_PROBE + Math.floor(span * done));
    },
  });
  return lastTime;
}

/**
 * task_output and output_files from what the plan asked for and what ffmpeg reported (its final
 * output time is the duration), without probing the output again: a second ffprobe would add
 * ≈70 ms to every job for facts already known.
 */
async function describeResult(
  plan: RenderPlan,
  files: readonly string[],
  outputDir: string,
  how: {
    operation: string;
    durationS: number | undefined;
    encoder: VideoEncoder | undefined;
    fallbackReason: string | undefined;
  },
) {
  const sizes = new Map(
    await Promise.all(
      files.map(async (file) => [file, (await fs.stat(path.join(outputDir, file))).size] as const),
    ),
  );
  const { produces } = plan;
  const durationS = how.durationS ?? plan.expectedDurationS;
  const singleFile = files.length === 1;
  const totalBytes = [...sizes.values()].reduce((total, size) => total + size, 0);
  const main = {
    ...(produces.codecs ? { duration: Number(durationS.toFixed(3)) } : {}),
    width: produces.width,
    height: produces.height,
    ...(produces.codecs ? { video_codec: produces.codecs.video, audio_codec: produces.codecs.audio } : {}),
    ...(produces.format ? { format: produces.format } : {}),
    ...(produces.codecs && singleFile && durationS > 0
      ? { bitrate_kbps: Math.round((totalBytes * 8) / durationS / 1000) }
      : {}),
    size_bytes: totalBytes,
  };
  const outputFiles = files.map((file) => {
    const role =
      file === plan.mainOutput
        ? 'main'
        : file.endsWith('.m3u8')
          ? 'playlist'
          : file.endsWith('.ts')
            ? 'segment'
            : 'file';
    const size_bytes = sizes.get(file) ?? 0;
    const metadata = role === 'main' ? { ...main, size_bytes } : { size_bytes };
    return { file_id: file, filename: file, metadata: { role, ...metadata } };
  });
  return {
    outputFiles,
    taskOutput: {
      success: true,
      operation: how.operation,
      output: plan.mainOutput,
      ...main,
      ...(how.encoder === undefined
        ? {}
        : { encoder: how.encoder.name, hardware: how.encoder.accelerator ?? 'none' }),
      ...(how.fallbackReason === undefined ? {} : { hardware_fallback: how.fallbackReason }),
      ...plan.describe?.(files),
    },
  };
}
