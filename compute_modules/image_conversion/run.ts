import { defineRun } from '../../worker/modules/module-contract.js';
import { IMAGE_FORMATS } from '../_shared/image-formats.js';
import { openInputImage, singleInputPath } from '../_shared/image-input.js';
import { encodeImage, writeEncodedImage } from '../_shared/image-output.js';
import { describeSharpFailure } from '../_shared/sharp-errors.js';
import type { ImageConversionParams } from './manifest.js';

/** The original reported the default quality whatever the format; kept for its clients. */
const REPORTED_DEFAULT_QUALITY = 95;

export default defineRun<ImageConversionParams>(async (params, context) => {
  const inputPath = singleInputPath('image_conversion', context.inputPaths);
  const traits = IMAGE_FORMATS[params.format];
  const input = await openInputImage(inputPath, {
    maxInputPixels: context.limits.maxInputPixels,
    animated: traits.animated,
  });
  context.reportProgress(10);
  context.signal.throwIfAborted();

  const filename = `converted.${traits.extension}`;
  try {
    const encoded = await encodeImage(input.image, {
      format: params.format,
      quality: params.quality,
      lossless: params.lossless,
      effort: params.effort,
      background: params.background,
      keepMetadata: params.keep_metadata,
    });
    context.reportProgress(85);
    context.signal.throwIfAborted();
    const output = await writeEncodedImage(context.outputDir, filename, encoded);
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
            output_size_bytes: output.sizeBytes,
            dimensions: [encoded.width, encoded.height],
            ...(params.lossless ? { lossless: true } : {}),
            ...(encoded.frames > 1 ? { frames: encoded.frames } : {}),
          },
        },
      ],
      taskOutput: { success: true, original_format: originalFormat, output_format: outputFormat, quality },
    };
  } catch (error) {
    throw describeSharpFailure(error, input.name);
  }
});
