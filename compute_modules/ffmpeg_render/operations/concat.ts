import path from 'node:path';
import type { ConcatParams } from '../params.js';
import type { RenderPlan } from '../plan.js';
import type { MediaInfo } from '../probe.js';
import { audioOptions, defaultVideoCodec, fitSize, videoFileOptions } from './common.js';

const OVERLAY_POSITIONS: Readonly<Record<string, (margin: number) => string>> = {
  'top-left': (m) => `x=${m}:y=${m}`,
  'top-right': (m) => `x=main_w-overlay_w-${m}:y=${m}`,
  'bottom-left': (m) => `x=${m}:y=main_h-overlay_h-${m}`,
  'bottom-right': (m) => `x=main_w-overlay_w-${m}:y=main_h-overlay_h-${m}`,
  center: () => 'x=(main_w-overlay_w)/2:y=(main_h-overlay_h)/2',
};

/**
 * Clips in the job's input order, each scaled into one frame size (letterboxed, never stretched)
 * and frame rate, joined into one render; clips without sound get silence when others have it.
 * An optional image from the inputs is overlaid as a watermark.
 */
export function planConcat(
  params: ConcatParams,
  clips: readonly MediaInfo[],
  watermarkPath: string | undefined,
): RenderPlan {
  const first = clips[0];
  if (first === undefined) throw new Error('concat planned without clips');
  const size =
    params.width === undefined && params.height === undefined
      ? fitSize(first.video, {}, false)
      : fitSize(first.video, params, true);
  const fps = params.fps ?? Math.min(60, Math.round(first.video.fps * 1000) / 1000);
  const withAudio = clips.some((clip) => clip.audio !== undefined) && params.audio_codec !== 'none';
  const audio = audioOptions(params.audio_codec, params.container, params.audio_bitrate, withAudio);
  const mainOutput = `render.${params.container}`;
  const { width: w, height: h } = size;
  const videoCodec = params.video_codec ?? defaultVideoCodec(params.container);
  return {
    expectedDurationS: clips.reduce((total, clip) => total + clip.durationS, 0),
    videoCodec,
    mainOutput,
    produces: { width: w, height: h, codecs: { video: videoCodec, audio: audio.codec } },
    build(stagingDir, encoder) {
      const graph: string[] = [];
      clips.forEach((clip, index) => {
        graph.push(
          `[${index}:v]scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2,` +
            `setsar=1,fps=${fps},format=yuv420p[v${index}]`,
        );
        if (!withAudio) return;
        graph.push(
          clip.audio === undefined
            ? `anullsrc=r=48000:cl=stereo,atrim=duration=${clip.durationS}[a${index}]`
            : `[${index}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a${index}]`,
        );
      });
      const pads = clips.map((_, index) => `[v${index}]${withAudio ? `[a${index}]` : ''}`).join('');
      graph.push(
        `${pads}concat=n=${clips.length}:v=1:a=${withAudio ? 1 : 0}[joined]${withAudio ? '[aout]' : ''}`,
      );
      const suffix = encoder?.filterSuffix ?? '';
      const { watermark } = params;
      if (watermark !== undefined && watermarkPath !== undefined) {
        const markWidth = 2 * Math.max(1, Math.round((w * watermark.width_percent) / 200));
        graph.push(
          `[${clips.length}:v]scale=${markWidth}:-1,format=rgba,colorchannelmixer=aa=${watermark.opacity}[mark]`,
          `[joined][mark]overlay=${OVERLAY_POSITIONS[watermark.position]?.(watermark.margin)}:eof_action=repeat,` +
            `format=yuv420p${suffix}[vout]`,
        );
      } else {
        graph.push(`[joined]null${suffix}[vout]`);
      }
      return {
        inputs: [
          ...clips.map((clip, index) => ({
            path: clip.path,
            options: index === 0 ? [...(encoder?.inputOptions ?? [])] : [],
          })),
          ...(watermarkPath === undefined ? [] : [{ path: watermarkPath }]),
        ],
        filterComplex: graph.join(';'),
        outputs: [
          {
            path: path.join(stagingDir, mainOutput),
            options: [
              '-map',
              '[vout]',
              ...(withAudio ? ['-map', '[aout]'] : []),
              ...videoFileOptions(params, encoder, audio),
            ],
          },
        ],
      };
    },
    describe: () => ({
      clips: clips.map((clip) => ({
        name: clip.name,
        duration: clip.durationS,
        width: clip.video.width,
        height: clip.video.height,
      })),
      ...(params.watermark === undefined ? {} : { watermark: { position: params.watermark.position } }),
    }),
  };
}
