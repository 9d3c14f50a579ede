/** Whether job folders can be created under the storage root: what every job's output needs. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { WorkerFaultError } from '../errors.js';

export async function probeStorageWritable(storageRoot: string): Promise<void> {
  const jobsDir = path.join(storageRoot, 'jobs');
  let probe: string | undefined;
  try {
    await fs.mkdir(jobsDir, { recursive: true });
    // mkdtemp picks a name no folder had, so the probe never touches a job's own folder.
    probe = await fs.mkdtemp(path.join(jobsDir, '.media-worker-probe-'));
    await fs.writeFile(path.join(probe, 'probe'), '');
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    throw new WorkerFaultError(
      `storage cannot be written: ${code ?? (error as Error).message} under ${jobsDir}`,
      {
        cause: error,
      },
    );
  } finally {
    if (probe) await fs.rm(probe, { recursive: true, force: true }).catch(() => {});
  }
}
