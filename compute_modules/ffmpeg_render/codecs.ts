/**
 * The codecs, hardware choices and presets a job may ask for: what `params.ts` validates and
 * `encoders.ts` turns into ffmpeg arguments. Kept apart from the encoders so that reading the
 * manifest (every command line does) does not load the code that runs ffmpeg.
 */
export const VIDEO_CODECS = ['h264', 'hevc', 'vp9', 'av1'] as const;
export type VideoCodec = (typeof VIDEO_CODECS)[number];
export const HARDWARE = ['auto', 'none', 'nvenc', 'vaapi', 'qsv'] as const;
export type Hardware = (typeof HARDWARE)[number];
export type Accelerator = Exclude<Hardware, 'auto' | 'none'>;
export const PRESETS = [
  'ultrafast',
  'superfast',
  'veryfast',
  'faster',
  'fast',
  'medium',
  'slow',
  'slower',
  'veryslow',
] as const;
export type Preset = (typeof PRESETS)[number];
