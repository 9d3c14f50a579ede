import path from 'node:path';
import type { TranscodeParams } from '../params.js';
import type { RenderPlan } from '../plan.js';
import type { MediaInfo } from '../probe.js';
import { audioOptions, checkWithin, defaultVideoCodec, fitSize, videoFileOptions } from './common.js';

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
  const mainOutput = `transcoded.${params.container}`;
  const filters = [
    `scale=${size.width}:${size.height}`,
    ...(params.fps ? [`fps=${params.fps}`] : []),
    'format=yuv420p',
  ];
  const videoCodec = params.video_codec ?? defaultVideoCodec(params.container);
  return {
    expectedDurationS,
    videoCodec,
    mainOutput,
    produces: {
      ...size,
      codecs: {
        video: videoCodec,
        audio: audio.codec === 'copy' ? (input.audio?.codec ?? 'none') : audio.codec,
      },
    },
    build: (stagingDir, encoder) => ({
      inputs: [
        {
          path: input.path,
          options: [...(encoder?.inputOptions ?? []), ...(start > 0 ? ['-ss', String(start)] : [])],
        },
      ],
      outputs: [
        {
          path: path.join(stagingDir, mainOutput),
          options: [
            '-map',
            '0:v:0',
            ...(audio.codec === 'none' ? [] : ['-map', '0:a:0']),
            '-vf',
            filters.join(',') + (encoder?.filterSuffix ?? ''),
            ...(params.duration === undefined ? [] : ['-t', String(params.duration)]),
            ...videoFileOptions(params, encoder, audio),
          ],
        },
      ],
    }),
    describe: () => ({ trimmed: { start, duration: expectedDurationS } }),
  };
}
