/**
 * Turns sharp's (libvips') messages about an input it cannot decode into a BadInputError naming the
 * file and the cause: such a job fails the same way on every attempt. Anything else (out of memory,
 * a full disk) is returned unchanged and stays retryable.
 */
import { BadInputError, JobError } from '../../worker/errors.js';

const CAUSES: readonly { pattern: RegExp; describe: (name: string) => string }[] = [
  {
    pattern: /unsupported image format|Input buffer contains unsupported/i,
    describe: (name) => `Input file ${name} is not an image in a format this worker can read`,
  },
  {
    pattern: /premature end|truncated|unexpected end|end of file|EOF/i,
    describe: (name) => `Input image ${name} is truncated`,
  },
  {
    pattern: /exceeds pixel limit/i,
    describe: (name) => `Input image ${name} exceeds the pixel limit (--max-input-pixels)`,
  },
  {
    // libvips prefixes decoder failures with the loader's name (VipsJpeg:, vipspng:, heifload:, …).
    pattern: /corrupt|read error|bad seek|^vips\w*:|^\w+load:|VipsForeignLoad/i,
    describe: (name) => `Input image ${name} is corrupt or cannot be decoded`,
  },
];

export function describeSharpFailure(error: unknown, inputName: string): unknown {
  if (!(error instanceof Error) || error instanceof JobError) return error;
  const cause = CAUSES.find(({ pattern }) => pattern.test(error.message));
  if (cause === undefined) return error;
  return new BadInputError(`${cause.describe(inputName)} (${error.message.trim()})`);
}
