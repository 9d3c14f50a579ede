import { defineRun } from '../../worker/modules/module-contract.js';
import { runImageJob } from '../_shared/image-job.js';
import type { ImageConversionParams } from './manifest.js';

/** The original reported the default quality whatever the format; kept for its clients. */
const REPORTED_DEFAULT_QUALITY = 95;

export default defineRun<ImageConversionParams>(async (params, context) => {
  const { input, encoded, filename, sizeBytes } = await runImageJob('image_conversion', context, {
    basename: 'converted',
    params,
  });
  const originalFormat = (input.metadata.format ?? 'unknown').toUpperCase();
  const outputFormat = params.format.toUpperCase();
  const quality = encoded.quality ?? params.quality ?? REPORTED_DEFAULT_QUALITY;
  return {
    outputFiles: [
      {
        file_id: 'converted_image',
        filename,
        metadata: {
          original_format: originalFormat,
          output_format: outputFormat,
          quality,
          original_size_bytes: input.sizeBytes,
          output_size_bytes: sizeBytes,
          dimensions: [encoded.width, encoded.height],
          ...(params.lossless ? { lossless: true } : {}),
          ...(encoded.frames > 1 ? { frames: encoded.frames } : {}),
        },
      },
    ],
    taskOutput: { success: true, original_format: originalFormat, output_format: outputFormat, quality },
  };
});
