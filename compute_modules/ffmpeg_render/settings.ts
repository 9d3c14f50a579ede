/** What the operator may set for ffmpeg_render: which ffmpeg and ffprobe it runs, and which GPU. */
import { z } from 'zod';
import type { ModuleSettings } from '../../worker/modules/module-contract.js';

/** The render node VAAPI and QSV encode on unless the operator names another. */
export const DEFAULT_GPU_DEVICE = '/dev/dri/renderD128';

export type FfmpegSettings = {
  /** Undefined: `ffmpeg` on PATH. */
  ffmpegBinary: string | undefined;
  /** Undefined: the ffprobe beside ffmpegBinary, else `ffprobe` on PATH. */
  ffprobeBinary: string | undefined;
  gpuDevice: string;
};

const path = z.string().trim().min(1);

export const FFMPEG_SETTINGS: ModuleSettings<FfmpegSettings> = {
  ffmpegBinary: {
    env: 'FFMPEG_BINARY',
    flag: '--ffmpeg-binary',
    accepts: 'a path to ffmpeg (default: ffmpeg on PATH)',
    schema: path.optional(),
  },
  ffprobeBinary: {
    env: 'FFPROBE_BINARY',
    flag: '--ffprobe-binary',
    accepts: 'a path to ffprobe (default: ffprobe beside FFMPEG_BINARY, else on PATH)',
    schema: path.optional(),
  },
  gpuDevice: {
    env: 'GPU_DEVICE',
    flag: '--gpu-device',
    accepts:
      'a path to the DRM render node VAAPI and QSV encoders use (a machine with several GPUs picks one)',
    schema: path.default(DEFAULT_GPU_DEVICE),
  },
};
