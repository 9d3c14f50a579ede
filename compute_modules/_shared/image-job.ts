/**
 * The skeleton both image modules share: one input, opened and checked (progress 10), transformed
 * and encoded (progress 85), written atomically as `<base>.<ext>`. A module supplies the transform
 * and turns the outcome into its contract's result.
 */
import type { Sharp } from 'sharp';
import type { JobContext } from '../../worker/modules/module-contract.js';
import { IMAGE_FORMATS } from './image-formats.js';
import { type InputImage, openInputImage, singleInputPath } from './image-input.js';
import { type EncodedImage, type EncodeRequest, encodeImage, writeEncodedImage } from './image-output.js';
import { describeSharpFailure } from './sharp-errors.js';

export interface ImageJobOutcome {
  input: InputImage;
  encoded: EncodedImage;
  filename: string;
  sizeBytes: number;
}

export async function runImageJob(
  taskType: string,
  context: JobContext,
  output: { basename: string; params: EncodeRequest },
  transform: (image: Sharp) => Sharp = (image) => image,
): Promise<ImageJobOutcome> {
  const { params } = output;
  const inputPath = singleInputPath(taskType, context.inputPaths);
  const traits = IMAGE_FORMATS[params.format];
  const input = await openInputImage(inputPath, {
    maxInputPixels: context.limits.maxInputPixels,
    animated: traits.animated,
  });
  context.reportProgress(10);
  context.signal.throwIfAborted();
  const filename = `${output.basename}.${traits.extension}`;
  try {
    const encoded = await encodeImage(transform(input.image), params);
    context.reportProgress(85);
    context.signal.throwIfAborted();
    const written = await writeEncodedImage(context.outputDir, filename, encoded);
    return { input, encoded, filename, sizeBytes: written.sizeBytes };
  } catch (error) {
    throw describeSharpFailure(error, input.name);
  }
}
