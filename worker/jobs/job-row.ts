/**
 * Checks on the row data a claimed job brings before anything is built from it: the `input_files`
 * column and the `job_id` that names the job's folder. Both come from the API's database, so both
 * may be anything; a row that fails here ends in `error` at once (the same row fails the same way
 * every time) and never reaches a runner.
 */
import path from 'node:path';
import { MAX_TIMER_S } from '../config/timer-limit.js';
import { BadInputError, InvalidParametersError } from '../errors.js';
import type { InputFile } from '../store/schema.js';
import { boundText, quoteValue } from './bounded-text.js';
import { isWithin } from './path-within.js';

/** Deeper values are refused: a runner receives the row over IPC, whose JSON encoder recurses. */
export const MAX_INPUT_FILES_DEPTH = 64;
/** A folder name, in bytes, on every common filesystem. */
const MAX_FOLDER_NAME_BYTES = 255;

/** `input_files` as the worker's modules expect it, or a BadInputError saying what is wrong with it. */
export function parseInputFilesColumn(text: string): InputFile[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new BadInputError(`input_files is not valid JSON: ${boundText((error as Error).message, 200)}`);
  }
  if (!Array.isArray(parsed)) {
    throw new BadInputError(
      `input_files must be a JSON array of input files ([{"path": …}, …]), got ${describeType(parsed)}`,
    );
  }
  const depth = nestingDepth(parsed, MAX_INPUT_FILES_DEPTH);
  if (depth > MAX_INPUT_FILES_DEPTH) {
    throw new BadInputError(`input_files is nested more than ${MAX_INPUT_FILES_DEPTH} levels deep; refused`);
  }
  parsed.forEach((entry, index) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new BadInputError(
        `input_files[${index}] must be an object with a "path", got ${describeType(entry)}`,
      );
    }
  });
  return parsed as InputFile[];
}

/**
 * `metadata.timeout_s`: undefined when absent, the number of seconds when valid; anything else is
 * refused, so a job never runs under a timeout it did not ask for.
 */
export function jobTimeoutOverride(inputFiles: readonly InputFile[]): number | undefined {
  const metadata = inputFiles[0]?.metadata;
  const value = typeof metadata === 'object' && metadata !== null ? metadata.timeout_s : undefined;
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_TIMER_S) return value;
  throw new InvalidParametersError(
    `Invalid parameters: timeout_s: expected a number of seconds > 0 and at most ${MAX_TIMER_S} ` +
      `(about 24.8 days), got ${quoteValue(value)}`,
  );
}

/** Why this job_id cannot be a folder name under `<storage>/jobs/`, or undefined when it can. */
export function jobFolderProblem(jobId: string): string | undefined {
  let reason: string | undefined;
  if (jobId === '' || jobId === '.' || jobId === '..') reason = 'it is empty, "." or ".."';
  else if (/[/\\]/.test(jobId)) reason = 'it contains a path separator';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  else if (/[\u0000-\u001f\u007f]/.test(jobId)) reason = 'it contains a control character';
  else if (Buffer.byteLength(jobId) > MAX_FOLDER_NAME_BYTES)
    reason = `it is longer than ${MAX_FOLDER_NAME_BYTES} bytes`;
  return reason && `job_id ${quoteValue(jobId, 120)} cannot name a folder under the storage root: ${reason}`;
}

/** `<storage>/jobs/<job_id>/output`, proven to lie under the storage root. */
export function jobOutputDir(storageRoot: string, jobId: string): string {
  const problem = jobFolderProblem(jobId);
  if (problem) throw new BadInputError(problem);
  const jobsDir = path.resolve(storageRoot, 'jobs');
  const outputDir = path.join(jobsDir, jobId, 'output');
  if (!isWithin(outputDir, jobsDir)) {
    throw new BadInputError(`job_id ${quoteValue(jobId, 120)} escapes the storage root`);
  }
  return outputDir;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type} (${quoteValue(value, 60)})`;
}

/** Depth of nested arrays/objects, counted without recursion and only up to `stopAfter + 1`. */
function nestingDepth(root: unknown, stopAfter: number): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[root, 1]];
  while (pending.length > 0) {
    const [value, depth] = pending.pop() as [unknown, number];
    if (typeof value !== 'object' || value === null) continue;
    deepest = Math.max(deepest, depth);
    if (deepest > stopAfter) return deepest;
    for (const child of Object.values(value)) pending.push([child, depth + 1]);
  }
  return deepest;
}
