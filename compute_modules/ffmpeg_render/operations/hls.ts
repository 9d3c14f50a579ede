import path from 'node:path';
import { InvalidParametersError } from '../../../worker/errors.js';
import type { HlsParams } from '../params.js';
import type { RenderPlan } from '../plan.js';
import type { MediaInfo } from '../probe.js';
import { fitSize } from './common.js';

export const MASTER_PLAYLIST = 'adaptive.m3u8';

/**
 * Adaptive HLS: each variant is scaled from one decode (split), encoded at its bitrate with key
 * frames on segment boundaries, and segmented into `v<N>/`; `adaptive.m3u8` lists them all.
 */
export function planHls(params: HlsParams, input: MediaInfo): RenderPlan {
  const fitting = params.variants.filter((variant) => variant.height <= input.video.height);
  const lowest = [...params.variants].sort((a, b) => a.bitrate - b.bitrate)[0];
  const variants =
    fitting.length > 0 || lowest === undefined
      ? fitting
      : [{ height: input.video.height, bitrate: lowest.bitrate }];
  if (params.include_original && input.video.codec !== 'h264') {
    throw new InvalidParametersError(
      `include_original needs an H.264 input for HLS; ${input.name} is ${input.video.codec}`,
    );
  }
  const sizes = variants.map((variant) => fitSize(input.video, { height: variant.height }, false));
  const hasAudio = input.audio !== undefined;
  const streams = variants.length + (params.include_original ? 1 : 0);
  const streamMap = Array.from({ length: streams }, (_, index) =>
    hasAudio ? `v:${index},a:${index}` : `v:${index}`,
  );
  const seg = params.segment_seconds;
  return {
    expectedDurationS: input.durationS,
    videoCodec: 'h264',
    mainOutput: MASTER_PLAYLIST,
    produces: {
      width: sizes[0]?.width ?? input.video.width,
      height: sizes[0]?.height ?? input.video.height,
      codecs: { video: 'h264', audio: hasAudio ? 'aac' : 'none' },
    },
    build(stagingDir, encoder) {
      const suffix = encoder?.filterSuffix ?? '';
      const split = `[0:v]split=${variants.length}${variants.map((_, index) => `[s${index}]`).join('')}`;
      const scaled = sizes.map(
        (size, index) => `[s${index}]scale=${size.width}:${size.height},format=yuv420p${suffix}[v${index}]`,
      );
      const options: string[] = [];
      variants.forEach((variant, index) => {
        options.push('-map', `[v${index}]`);
        if (hasAudio) options.push('-map', '0:a:0');
        options.push(
          ...(encoder?.streamOptions(
            { preset: params.preset, bitrateKbps: variant.bitrate },
            `:v:${index}`,
          ) ?? []),
        );
      });
      if (params.include_original) {
        options.push('-map', '0:v:0', `-c:v:${variants.length}`, 'copy');
        if (hasAudio) options.push('-map', '0:a:0');
      }
      if (hasAudio) options.push('-c:a', 'aac', '-b:a', `${params.audio_bitrate}k`, '-ac', '2');
      options.push(
        '-force_key_frames',
        `expr:gte(t,n_forced*${seg})`,
        '-f',
        'hls',
        '-hls_time',
        String(seg),
        '-hls_playlist_type',
        'vod',
        '-hls_flags',
        'independent_segments',
        '-hls_segment_filename',
        path.join(stagingDir, 'v%v', 'segment_%03d.ts'),
        '-master_pl_name',
        MASTER_PLAYLIST,
        '-var_stream_map',
        streamMap.join(' '),
      );
      return {
        inputs: [{ path: input.path, options: [...(encoder?.inputOptions ?? [])] }],
        filterComplex: [split, ...scaled].join(';'),
        outputs: [{ path: path.join(stagingDir, 'v%v', 'index.m3u8'), options }],
      };
    },
    describe: (files) => ({
      segments: files.filter((file) => file.endsWith('.ts')).length,
      variants: [
        ...variants.map((variant, index) => ({
          playlist: `v${index}/index.m3u8`,
          width: sizes[index]?.width,
          height: sizes[index]?.height,
          bitrate_kbps: variant.bitrate,
        })),
        ...(params.include_original
          ? [
              {
                playlist: `v${variants.length}/index.m3u8`,
                width: input.video.width,
                height: input.video.height,
                original: true,
              },
            ]
          : []),
      ],
    }),
  };
}
