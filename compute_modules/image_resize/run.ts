import fs from 'node:fs/promises';
import path from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { BadInputError } from '../../worker/errors.js';
import { defineRun } from '../../worker/modules/module-contract.js';
import { classifySharpError } from '../_shared/sharp-errors.js';
import { writeOutputAtomically } from '../_shared/write-output.js';
import type { ImageResizeParams } from './manifest.js';

const OUTPUT_FILENAME = 'resized.jpg';

export default defineRun<ImageResizeParams>(async (params, context) => {
  const [inputPath, ...extra] = context.inputPaths;
  if (inputPath === undefined || extra.length > 0) {
    throw new BadInputError(`image_resize requires exactly 1 input file, got ${context.inputPaths.length}`);
  }
  const inputName = path.basename(inputPath);
  try {
    const image = sharp(inputPath, { failOn: 'error' }).rotate();
    const original = await image.metadata();
    const originalSize = (await fs.stat(inputPath)).size;
    context.reportProgress(10);
    const resized = image
      .resize(params.width, params.height, {
        fit: params.preserve_aspect ? 'inside' : 'fill',
        withoutEnlargement: params.preserve_aspect,
      })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 90 });
    let info: OutputInfo | undefined;
    const output = await writeOutputAtomically(context.outputDir, OUTPUT_FILENAME, async (temporaryPath) => {
      info = await resized.toFile(temporaryPath);
    });
    const originalWidth = original.autoOrient?.width ?? original.width ?? 0;
    const originalHeight = original.autoOrient?.height ?? original.height ?? 0;
    const resizedDimensions = [info?.width ?? 0, info?.height ?? 0];
    return {
      outputFiles: [
        {
          file_id: 'resized_image',
          filename: OUTPUT_FILENAME,
          metadata: {
            original_width: originalWidth,
            original_height: originalHeight,
            resized_width: resizedDimensions[0],
            resized_height: resizedDimensions[1],
            original_size_bytes: originalSize,
            output_size_bytes: output.sizeBytes,
            preserve_aspect: params.preserve_aspect,
          },
        },
      ],
      taskOutput: {
        success: true,
        original_dimensions: [originalWidth, originalHeight],
        resized_dimensions: resizedDimensions,
      },
    };
  } catch (error) {
    throw classifySharpError(error, inputName);
  }
});
