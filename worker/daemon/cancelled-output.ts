/**
 * A job an operator cancelled keeps nothing its attempt wrote: half a result is worse than none.
 * Whichever way the cancel ended the attempt (its runner stopped, the daemon shut down, or the job
 * was taken back from a daemon that died), the daemon that wrote "cancelled" removes the output.
 */
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import { jobFolderProblem, jobOutputDir } from '../jobs/job-row.js';

export async function removeCancelledOutput(storageRoot: string, jobId: string, log: Logger): Promise<void> {
  if (jobFolderProblem(jobId)) return; // such a job never ran, so it has no folder
  const outputDir = jobOutputDir(storageRoot, jobId);
  await fs
    .rm(outputDir, { recursive: true, force: true })
    .catch((error: unknown) =>
      log.warn(
        { err: error, job_id: jobId, output_dir: outputDir },
        'could not remove the cancelled job’s output',
      ),
    );
}
