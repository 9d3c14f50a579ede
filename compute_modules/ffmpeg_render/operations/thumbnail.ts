import path from 'node:path';
import type { ThumbnailParams } from '../params.js';
import type { RenderPlan } from '../plan.js';
import type { MediaInfo } from '../probe.js';
import { checkWithin, fitSize } from './common.js';

const SHEET_FRAME_WIDTH = 320;

function imageOptions(format: ThumbnailParams['format']): {
  extension: string;
  format: string;
  options: string[];
} {
  switch (format) {
    case 'png':
      return { extension: 'png', format: 'png', options: ['-c:v', 'png'] };
    case 'webp':
      return { extension: 'webp', format: 'webp', options: ['-c:v', 'libwebp', '-quality', '85'] };
    default:
      return {
        extension: 'jpg',
        format: 'jpeg',
        options: ['-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj420p'],
      };
  }
}

/**
 * One image written to the path as given: without `-update`, ffmpeg's image muxer reads a `%d` in
 * the path (the storage root, the job id) as a frame number, and warns on every other path.
 */
const SINGLE_IMAGE = ['-frames:v', '1', '-update', '1'];

/** One frame at a time or percentage, or a contact sheet of rows × columns frames over the whole input. */
export function planThumbnail(params: ThumbnailParams, input: MediaInfo): RenderPlan {
  const image = imageOptions(params.format);
  const { sheet } = params;
  if (sheet !== undefined) {
    const frames = sheet.rows * sheet.columns;
    const interval = input.durationS / frames;
    const frame = fitSize(
      input.video,
      params.width === undefined && params.height === undefined ? { width: SHEET_FRAME_WIDTH } : params,
      false,
      { even: false },
    );
    const mainOutput = `contact_sheet.${image.extension}`;
    // Frame k is taken at (k + 0.5) × interval: the middle of each slice, never the black first frame.
    const times = Array.from({ length: frames }, (_, index) => Number(((index + 0.5) * interval).toFixed(3)));
    return {
      expectedDurationS: input.durationS,
      mainOutput,
      produces: {
        width: frame.width * sheet.columns,
        height: frame.height * sheet.rows,
        format: image.format,
      },
      build: (stagingDir) => ({
        inputs: [{ path: input.path }],
        outputs: [
          {
            path: path.join(stagingDir, mainOutput),
            options: [
              '-vf',
              // The first frame from the middle of the first slice, then one per interval.
              `select='isnan(prev_selected_t)*gte(t,${interval / 2})+gte(t-prev_selected_t,${interval})',` +
                `scale=${frame.width}:${frame.height},tile=${sheet.columns}x${sheet.rows}`,
              ...SINGLE_IMAGE,
              ...image.options,
            ],
          },
        ],
      }),
      describe: () => ({ sheet: { rows: sheet.rows, columns: sheet.columns, frame_times: times } }),
    };
  }
  // A percentage is of the frames there are: 100 % is the last frame, not the end of the stream.
  const lastFrame = Math.max(0, input.durationS - 1 / input.video.fps);
  const at = params.at_seconds ?? Math.min(lastFrame, ((params.at_percent ?? 10) / 100) * input.durationS);
  if (params.at_seconds !== undefined) checkWithin(input.name, at, 'at_seconds', input.durationS);
  const size = fitSize(input.video, params, false, { even: false });
  const mainOutput = `thumbnail.${image.extension}`;
  return {
    expectedDurationS: 0,
    mainOutput,
    produces: { ...size, format: image.format },
    build: (stagingDir) => ({
      inputs: [{ path: input.path, options: ['-ss', at.toFixed(3)] }],
      outputs: [
        {
          path: path.join(stagingDir, mainOutput),
          options: ['-vf', `scale=${size.width}:${size.height}`, ...SINGLE_IMAGE, ...image.options],
        },
      ],
    }),
    describe: () => ({ at_seconds: Number(at.toFixed(3)) }),
  };
}
