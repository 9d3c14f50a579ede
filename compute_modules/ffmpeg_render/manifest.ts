import { defineManifest } from '../../worker/modules/module-contract.js';
import { type FfmpegRenderParams, ffmpegRenderParams } from './params.js';
import { FFMPEG_SETTINGS, type FfmpegSettings } from './settings.js';

export default defineManifest<FfmpegRenderParams, FfmpegSettings>({
  description:
    'Render video with ffmpeg: transcode, HLS packaging, thumbnails and contact sheets, concatenation with a watermark.',
  params: ffmpegRenderParams,
  defaultTimeoutS: 3600,
  settings: FFMPEG_SETTINGS,
  async preflight(settings) {
    const { binaryVersion, resolveBinaries } = await import('./binaries.js');
    const binaries = resolveBinaries(settings);
    const [ffmpeg, ffprobe] = await Promise.all([
      binaryVersion(binaries.ffmpeg, 'ffmpeg', 'FFMPEG_BINARY'),
      binaryVersion(binaries.ffprobe, 'ffprobe', 'FFPROBE_BINARY'),
    ]);
    return { ffmpeg, ffprobe };
  },
});
