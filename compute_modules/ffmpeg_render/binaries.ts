/** Which ffmpeg and ffprobe a job runs: FFMPEG_BINARY / FFPROBE_BINARY, else the ones on PATH. */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { StartupError } from '../../worker/errors.js';
import type { FfmpegSettings } from './settings.js';

export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
}

const INSTALL_HINT =
  'install it (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg) or point FFMPEG_BINARY ' +
  'and FFPROBE_BINARY at it';

export function resolveBinaries(
  settings: Pick<FfmpegSettings, 'ffmpegBinary' | 'ffprobeBinary'>,
): FfmpegBinaries {
  const ffmpeg = settings.ffmpegBinary ?? 'ffmpeg';
  const besideFfmpeg =
    settings.ffmpegBinary === undefined
      ? undefined
      : path.join(path.dirname(settings.ffmpegBinary), 'ffprobe');
  const ffprobe =
    settings.ffprobeBinary ??
    (besideFfmpeg !== undefined && fs.existsSync(besideFfmpeg) ? besideFfmpeg : 'ffprobe');
  return { ffmpeg, ffprobe };
}

/** `ffmpeg -version`'s version word, e.g. `5.1.9-0+deb12u1`; a StartupError saying how to install it. */
export async function binaryVersion(
  binary: string,
  name: 'ffmpeg' | 'ffprobe',
  setting: string,
): Promise<string> {
  try {
    const { stdout } = await execa(binary, ['-version'], { timeout: 10_000 });
    return /version (\S+)/.exec(stdout)?.[1] ?? 'unknown';
  } catch (error) {
    const code = (error as { code?: string }).code;
    const where = binary === name ? 'on PATH' : `at ${binary} (${setting})`;
    const cause =
      code === 'ENOENT' ? 'not found' : `does not run (${(error as Error).message.split('\n')[0]})`;
    throw new StartupError(`${name} ${cause} ${where}; ${INSTALL_HINT}`);
  }
}
