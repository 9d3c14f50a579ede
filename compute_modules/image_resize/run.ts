import { defineRun } from '../../worker/modules/module-contract.js';
import { IMAGE_FORMATS } from '../_shared/image-formats.js';
import { openInputImage, singleInputPath } from '../_shared/image-input.js';
import { encodeImage, writeEncodedImage } from '../_shared/image-output.js';
import { describeSharpFailure } from '../_shared/sharp-errors.js';
import type { ImageResizeParams } from './manifest.js';

export default defineRun<ImageResizeParams>(async (params, context) => {
  const inputPath = singleInputPath('image_resize', context.inputPaths);
  const traits = IMAGE_FORMATS[params.format];
  const input = await openInputImage(inputPath, {
    maxInputPixels: context.limits.maxInputPixels,
    animated: traits.animated,
  });
  context.reportProgress(10);
  context.signal.throwIfAborted();

  const filename = `resized.${traits.extension}`;
  try {
    const resized = input.image.resize(params.width, params.height, {
      fit: params.fit,
      position: params.position,
      withoutEnlargement: params.without_enlargement,
      background: params.background,
    });
    const encoded = await encodeImage(resized, {
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
            output_size_bytes: output.sizeBytes,
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
  } catch (error) {
    throw describeSharpFailure(error, input.name);
  }
});
