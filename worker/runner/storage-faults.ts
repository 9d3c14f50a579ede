/**
 * A file-system error that says the storage cannot be written (read-only, full, no permission on the
 * job's output folder) is the worker's fault, not the job's, so it must not spend the job's retries.
 */
import path from 'node:path';
import { WorkerFaultError } from '../errors.js';
import { isWithin } from '../jobs/path-within.js';

/** Whatever path they name, these mean the storage itself is unusable. */
const STORAGE_WIDE = new Set(['EROFS', 'ENOSPC', 'EDQUOT']);
/** These are ours only on the output side: an input the job names may be unreadable by its own fault. */
const PERMISSION = new Set(['EACCES', 'EPERM']);

export function asStorageFault(error: unknown, outputDir: string): WorkerFaultError | undefined {
  const { code, path: failedPath } = (error ?? {}) as NodeJS.ErrnoException;
  if (code === undefined) return undefined;
  const ours =
    STORAGE_WIDE.has(code) ||
    (PERMISSION.has(code) && (failedPath === undefined || onOutputSide(failedPath, outputDir)));
  if (!ours) return undefined;
  return new WorkerFaultError(`storage cannot be written: ${code} on ${failedPath ?? outputDir}`, {
    cause: error,
  });
}

/** The output folder, something inside it, or a folder on the way to it (mkdir -p). */
function onOutputSide(failedPath: string, outputDir: string): boolean {
  const failed = path.resolve(failedPath);
  return failed === path.resolve(outputDir) || isWithin(failed, outputDir) || isWithin(outputDir, failed);
}
