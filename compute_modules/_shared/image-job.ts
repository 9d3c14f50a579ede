/**
 * The skeleton both image modules share: one input, opened and checked (progress 10), transformed
 * and encoded (progress 85), written atomically as `<base>.<ext>`. A module supplies the transform
 * and turns the outcome into its contract's result.
 */
import type { Sharp } from 'sharp';
import { InvalidParametersError } from '../../worker/errors.js';
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
  output: {
    basename: string;
    params: EncodeRequest;
    /** The largest frame the transform can give this input (default: the input's own size). */
    sizeBound?: (input: InputImage) => { width: number; height: number };
  },
  transform: (image: Sharp) => Sharp = (image) => image,
): Promise<ImageJobOutcome> {
  const { params } = output;
  const inputPath = singleInputPath(taskType, context.inputPaths);
  const traits = IMAGE_FORMATS[params.format];
  const input = await openInputImage(inputPath, {
    maxInputPixels: context.limits.maxInputPixels,
    animated: traits.animated,
  });
  const frames = traits.animated ? (input.metadata.pages ?? 1) : 1;
  const bound = output.sizeBound?.(input) ?? input;
  checkOutputPixels(bound.width, bound.height, frames, context.limits.maxOutputPixels);
  context.reportProgress(10);
  context.signal.throwIfAborted();
  const filename = `${output.basename}.${traits.extension}`;
  try {
    const encoded = await encodeImage(transform(input.image), params);
    // A bound that missed a case must still not let an oversized file out.
    checkOutputPixels(encoded.width, encoded.height, encoded.frames, context.limits.maxOutputPixels);
    context.reportProgress(85);
    context.signal.throwIfAborted();
    const written = await writeEncodedImage(context.outputDir, filename, encoded);
    return { input, encoded, filename, sizeBytes: written.sizeBytes };
  } catch (error) {
    throw describeSharpFailure(error, input.name);
  }
}

/** The parameters ask for more pixels than the operator lets a module write. */
function checkOutputPixels(width: number, height: number, frames: number, limit: number): void {
  const pixels = width * height * frames;
  if (pixels <= limit) return;
  const frameNote = frames > 1 ? ` × ${frames} frames` : '';
  throw new InvalidParametersError(
    `Output of ${width}x${height}${frameNote} = ${pixels} pixels is over the limit of ${limit} ` +
      '(the limit is --max-output-pixels)',
  );
}
