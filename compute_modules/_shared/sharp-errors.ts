import { BadInputError } from '../../worker/errors.js';

/** sharp's messages for inputs it cannot decode; such a job fails the same way on every attempt. */
const UNDECODABLE =
  /unsupported image format|Input file contains unsupported|corrupt|premature end|VipsJpeg|pngload|Input buffer|bad seek|not a known file format|exceeds pixel limit/i;

export function classifySharpError(error: unknown, inputName: string): unknown {
  if (error instanceof Error && UNDECODABLE.test(error.message)) {
    return new BadInputError(`Cannot decode input image ${inputName}: ${error.message}`);
  }
  return error;
}
