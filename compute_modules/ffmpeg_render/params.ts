/** The parameters of ffmpeg_render: one zod schema per operation, chosen by `operation`. */
import { z } from 'zod';
import { HARDWARE, PRESETS, VIDEO_CODECS } from './codecs.js';

export const CONTAINERS = ['mp4', 'webm', 'mkv', 'mov'] as const;
export type Container = (typeof CONTAINERS)[number];
export const AUDIO_CODECS = ['aac', 'opus', 'mp3', 'copy', 'none'] as const;
export const WATERMARK_POSITIONS = [
  'top-left',
  'top-right',
  'bottom-left',
  'bottom-right',
  'center',
] as const;

const size = z.number().int().min(16).max(8192);
const hardware = z
  .enum(HARDWARE)
  .default('auto')
  .describe('auto uses a working GPU encoder when there is one');

/** Encoding settings shared by the operations that write a video file. */
const videoOutput = {
  container: z.enum(CONTAINERS).default('mp4'),
  video_codec: z.enum(VIDEO_CODECS).optional().describe('default: vp9 for webm, else h264'),
  crf: z.number().int().min(0).max(63).optional().describe('constant quality (lower is better); or bitrate'),
  bitrate: z.number().int().min(50).max(200_000).optional().describe('video kbit/s; or crf'),
  preset: z.enum(PRESETS).default('medium'),
  fps: z.number().positive().max(240).optional(),
  audio_codec: z.enum(AUDIO_CODECS).optional().describe('default: opus for webm, else aac; none drops audio'),
  audio_bitrate: z.number().int().min(16).max(1024).default(128).describe('kbit/s'),
  faststart: z.boolean().default(true).describe('mp4/mov: index at the front, playable while downloading'),
  hardware,
};

const transcode = z.object({
  operation: z.literal('transcode'),
  ...videoOutput,
  width: size.optional(),
  height: size.optional(),
  allow_upscale: z.boolean().default(false),
  start: z.number().min(0).optional().describe('seconds into the input'),
  duration: z.number().positive().optional().describe('seconds of output'),
});

const hls = z.object({
  operation: z.literal('hls'),
  variants: z
    .array(
      z.object({
        height: z.number().int().min(32).max(4320),
        bitrate: z.number().int().min(50).max(200_000),
      }),
    )
    .min(1)
    .max(8)
    .default([
      { height: 720, bitrate: 3500 },
      { height: 480, bitrate: 1500 },
    ])
    .describe('renditions, each {height, bitrate kbit/s}; those taller than the input are left out'),
  segment_seconds: z.number().min(1).max(60).default(6),
  include_original: z.boolean().default(false).describe('add the input itself as a variant, not re-encoded'),
  preset: z.enum(PRESETS).default('veryfast'),
  audio_bitrate: z.number().int().min(16).max(1024).default(128),
  hardware,
});

const thumbnail = z.object({
  operation: z.literal('thumbnail'),
  at_seconds: z.number().min(0).optional(),
  at_percent: z.number().min(0).max(100).optional().describe('default 10 when no time is given'),
  sheet: z
    .object({ rows: z.number().int().min(1).max(12), columns: z.number().int().min(1).max(12) })
    .optional()
    .describe('a contact sheet of rows × columns frames spread over the whole input'),
  format: z.enum(['jpeg', 'jpg', 'png', 'webp']).default('jpeg'),
  width: size.optional().describe('of one frame; default the input width (320 in a sheet)'),
  height: size.optional(),
});

const concat = z.object({
  operation: z.literal('concat'),
  ...videoOutput,
  width: size.optional().describe('default: the first input’s'),
  height: size.optional(),
  watermark: z
    .object({
      input: z.number().int().min(0).describe('index in input_files of the image to overlay'),
      position: z.enum(WATERMARK_POSITIONS).default('bottom-right'),
      margin: z.number().int().min(0).max(1000).default(16),
      width_percent: z.number().min(1).max(100).default(15).describe('of the output width'),
      opacity: z.number().min(0).max(1).default(1),
    })
    .optional(),
});

function checkVideoOutput(
  params: {
    container: string;
    video_codec?: string | undefined;
    audio_codec?: string | undefined;
    crf?: number | undefined;
    bitrate?: number | undefined;
  },
  context: z.RefinementCtx,
): void {
  if (params.crf !== undefined && params.bitrate !== undefined) {
    context.addIssue({ code: 'custom', path: ['crf'], message: 'give crf or bitrate, not both' });
  }
  if (params.container === 'webm') {
    if (params.video_codec === 'h264' || params.video_codec === 'hevc') {
      context.addIssue({
        code: 'custom',
        path: ['video_codec'],
        message: `webm holds vp9 or av1, not ${params.video_codec}`,
      });
    }
    if (params.audio_codec === 'aac' || params.audio_codec === 'mp3') {
      context.addIssue({
        code: 'custom',
        path: ['audio_codec'],
        message: `webm holds opus, not ${params.audio_codec}`,
      });
    }
  }
}

export const ffmpegRenderParams = z.preprocess(
  // `operation` may be left out for a plain transcode.
  (value) =>
    typeof value === 'object' && value !== null && !('operation' in value)
      ? { ...value, operation: 'transcode' }
      : value,
  z.discriminatedUnion('operation', [transcode, hls, thumbnail, concat]).superRefine((params, context) => {
    if (params.operation === 'transcode' || params.operation === 'concat') checkVideoOutput(params, context);
    if (params.operation === 'concat' && params.audio_codec === 'copy') {
      context.addIssue({
        code: 'custom',
        path: ['audio_codec'],
        message: 'concat re-encodes audio: copy is not possible',
      });
    }
    if (params.operation === 'thumbnail') {
      if (params.at_seconds !== undefined && params.at_percent !== undefined) {
        context.addIssue({
          code: 'custom',
          path: ['at_seconds'],
          message: 'give at_seconds or at_percent, not both',
        });
      }
      if (params.sheet !== undefined && (params.at_seconds ?? params.at_percent) !== undefined) {
        context.addIssue({
          code: 'custom',
          path: ['sheet'],
          message: 'a sheet spans the whole input: no at_seconds/at_percent',
        });
      }
    }
  }),
);

export type FfmpegRenderParams = z.infer<typeof ffmpegRenderParams>;
export type TranscodeParams = Extract<FfmpegRenderParams, { operation: 'transcode' }>;
export type HlsParams = Extract<FfmpegRenderParams, { operation: 'hls' }>;
export type ThumbnailParams = Extract<FfmpegRenderParams, { operation: 'thumbnail' }>;
export type ConcatParams = Extract<FfmpegRenderParams, { operation: 'concat' }>;
