import path from 'node:path';
import type { VideoEncoder } from '../encoders.js';
import type { FfmpegInvocation } from '../fluent.js';
import type { TranscodeParams } from '../params.js';
import { type EarlyStart, filterGraphOf, type RenderPlan } from '../plan.js';
import type { MediaInfo } from '../probe.js';
import { audioOptions, checkWithin, defaultVideoCodec, fitSize, videoFileOptions } from './common.js';

const mainOutputOf = (params: TranscodeParams) => `transcoded.${params.container}`;
const videoCodecOf = (params: TranscodeParams) => params.video_codec ?? defaultVideoCodec(params.container);

/**
 * Everything in transcode's ffmpeg call but the filter graph follows from the parameters alone
 * (audio is mapped only if the input has any), which is what lets ffmpeg start before the probe.
 */
function transcodeCall(
  params: TranscodeParams,
  inputPath: string,
  stagingDir: string,
  encoder: VideoEncoder | undefined,
  filterGraph: string | Promise<string>,
): FfmpegInvocation {
  const start = params.start ?? 0;
  const audio = audioOptions(params.audio_codec, params.container, params.audio_bitrate, true);
  return {
    inputs: [
      {
        path: inputPath,
        options: [...(encoder?.inputOptions ?? []), ...(start > 0 ? ['-ss', String(start)] : [])],
      },
    ],
    filterComplex: filterGraph,
    outputs: [
      {
        path: path.join(stagingDir, mainOutputOf(params)),
        options: [
          '-map',
          '[v]',
          ...(audio.codec === 'none' ? [] : ['-map', '0:a:0?']),
          ...(params.duration === undefined ? [] : ['-t', String(params.duration)]),
          ...videoFileOptions(params, encoder, audio),
        ],
      },
    ],
  };
}

export function startTranscode(params: TranscodeParams, inputPath: string): EarlyStart {
  return {
    videoCodec: videoCodecOf(params),
    build: (stagingDir, encoder, plan) =>
      transcodeCall(params, inputPath, stagingDir, encoder, filterGraphOf(plan, stagingDir, encoder)),
  };
}

export function planTranscode(params: TranscodeParams, input: MediaInfo): RenderPlan {
  const start = params.start ?? 0;
  if (start > 0) checkWithin(input.name, start, 'start', input.durationS);
  const expectedDurationS = Math.min(params.duration ?? Number.POSITIVE_INFINITY, input.durationS - start);
  const size = fitSize(input.video, params, params.allow_upscale);
  const audio = audioOptions(
    params.audio_codec,
    params.container,
    params.audio_bitrate,
    input.audio !== undefined,
  );
  const filters = [
    `scale=${size.width}:${size.height}`,
    ...(params.fps ? [`fps=${params.fps}`] : []),
    'format=yuv420p',
  ];
  const videoCodec = videoCodecOf(params);
  return {
    expectedDurationS,
    videoCodec,
    mainOutput: mainOutputOf(params),
    produces: {
      ...size,
      codecs: {
        video: videoCodec,
        audio: audio.codec === 'copy' ? (input.audio?.codec ?? 'none') : audio.codec,
      },
    },
    build: (stagingDir, encoder) =>
      transcodeCall(
        params,
        input.path,
        stagingDir,
        encoder,
        `[0:v:0]${filters.join(',')}${encoder?.filterSuffix ?? ''}[v]`,
      ),
    describe: () => ({ trimmed: { start, duration: expectedDurationS } }),
  };
}
