import { defineRun } from '../../worker/modules/module-contract.js';
import { runImageJob } from '../_shared/image-job.js';
import type { ImageResizeParams } from './manifest.js';
import { resizedSizeBound } from './output-size.js';

export default defineRun<ImageResizeParams>(async (params, context) => {
  const { input, encoded, filename, sizeBytes } = await runImageJob(
    'image_resize',
    context,
    { basename: 'resized', params, sizeBound: (input) => resizedSizeBound(input, params) },
    (image) =>
      image.resize(params.width, params.height, {
        fit: params.fit,
        position: params.position,
        withoutEnlargement: params.without_enlargement,
        background: params.background,
      }),
  );
  return {
    outputFiles: [
      {
        file_id: 'resized_image',
        filename,
        metadata: {
          original_width: input.width,
          original_height: input.height,
          resized_width: encoded.width,
          resized_height: encoded.height,
          original_size_bytes: input.sizeBytes,
          output_size_bytes: sizeBytes,
          preserve_aspect: params.preserve_aspect,
          fit: params.fit,
          format: params.format.toUpperCase(),
          ...(encoded.quality === undefined ? {} : { quality: encoded.quality }),
          ...(encoded.frames > 1 ? { frames: encoded.frames } : {}),
        },
      },
    ],
    taskOutput: {
      success: true,
      original_dimensions: [input.width, input.height],
      resized_dimensions: [encoded.width, encoded.height],
    },
  };
});
