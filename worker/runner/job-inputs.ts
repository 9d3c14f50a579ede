/**
 * Turning a claimed job's input_files into what a module gets: validated parameters and input paths
 * that are proven to lie under the storage root. Every failure here is the job's fault, not the
 * worker's, so each one is a non-retryable error with a message a user can act on.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { BadInputError, InvalidParametersError } from '../errors.js';
import { boundText, QUOTED_VALUE_LIMIT } from '../jobs/bounded-text.js';
import { isWithin } from '../jobs/path-within.js';
import { RESERVED_PARAMS } from '../modules/module-contract.js';
import type { InputFile } from '../store/schema.js';

export function readParams<Params>(schema: z.ZodType<Params>, inputFiles: readonly InputFile[]): Params {
  const metadata = inputFiles[0]?.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidParametersError('Invalid parameters: input_files[0].metadata must be a JSON object');
  }
  const params: Record<string, unknown> = { ...metadata };
  for (const key of RESERVED_PARAMS) delete params[key];
  const result = schema.safeParse(params);
  if (result.success) return result.data;
  // A module's own message about the parameters as a whole (a custom issue at the root) is used
  // verbatim, so a module can keep the exact messages its clients already match on.
  const verbatim = result.error.issues.filter((issue) => issue.code === 'custom' && issue.path.length === 0);
  const named = result.error.issues
    .filter((issue) => !verbatim.includes(issue))
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(parameters)'}: ${issue.message}`);
  const parts = verbatim.map((issue) => issue.message);
  if (named.length > 0) parts.push(`Invalid parameters: ${named.join('; ')}`);
  throw new InvalidParametersError(parts.join('; '));
}

/**
 * Where a job may read: 'job', only under its own `jobs/<job_id>/` (where the API service puts every
 * upload, and its symlinks to external files), so one job cannot name another's files; 'root',
 * anywhere under the storage root, for deployments that share inputs between jobs.
 */
export type InputScope = 'job' | 'root';

/**
 * Resolves each input against the storage root. The stored path itself must stay inside the root
 * (no absolute paths, no `..`) and, in the 'job' scope, inside the job's own folder; a symlink the
 * API placed there for an "external" file is followed.
 */
export async function resolveInputPaths(
  storageRoot: string,
  inputFiles: readonly InputFile[],
  { jobId, scope }: { jobId: string; scope: InputScope },
): Promise<string[]> {
  const root = path.resolve(storageRoot);
  const jobFolder = path.join(root, 'jobs', jobId);
  return Promise.all(
    inputFiles.map(async (file, index) => {
      const stored = file?.path;
      if (typeof stored !== 'string' || stored.trim() === '') {
        throw new BadInputError(`Input file ${index + 1} has no path`);
      }
      if (path.isAbsolute(stored) || stored.split(/[\\/]/).includes('..') || stored.includes('\0')) {
        throw new BadInputError(
          `Input path refused (must be relative to the storage root, without '..'): ${shown(stored)}`,
        );
      }
      const resolved = path.resolve(root, stored);
      if (!isWithin(resolved, root)) {
        throw new BadInputError(`Input path refused (escapes the storage root): ${shown(stored)}`);
      }
      if (scope === 'job' && !isWithin(resolved, jobFolder)) {
        throw new BadInputError(
          `Input path refused (outside the job's own folder jobs/${shown(jobId)}/; ` +
            `--input-scope root allows the whole storage root): ${shown(stored)}`,
        );
      }
      await checkReadableFile(resolved, stored);
      return resolved;
    }),
  );
}

/** A stored path as a message quotes it: whole when it is of a sane length. */
const shown = (stored: string) => boundText(stored, QUOTED_VALUE_LIMIT);

async function checkReadableFile(resolved: string, raw: string): Promise<void> {
  const stored = shown(raw);
  let stats: import('node:fs').Stats;
  try {
    stats = await fs.stat(resolved);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new BadInputError(`Input file not found: ${stored}`);
    throw new BadInputError(`Input file unreadable: ${stored} (${code ?? String(error)})`);
  }
  if (!stats.isFile()) throw new BadInputError(`Input is not a regular file: ${stored}`);
  try {
    await fs.access(resolved, fs.constants.R_OK);
  } catch {
    throw new BadInputError(`Input file unreadable (permission denied): ${stored}`);
  }
}
