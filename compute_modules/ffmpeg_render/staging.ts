/**
 * A render writes into a staging folder inside the job's output folder and its files are moved
 * into place only when ffmpeg has succeeded, so a reader never sees a half-written video or
 * playlist; a failed or killed attempt leaves nothing behind for the next one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

const STAGING_PREFIX = '.render-';

export async function createStaging(outputDir: string): Promise<string> {
  // Staging folders of attempts that were killed (a timeout, a crashed runner) are removed first.
  for (const entry of await fs.readdir(outputDir)) {
    if (entry.startsWith(STAGING_PREFIX))
      await fs.rm(path.join(outputDir, entry), { recursive: true, force: true });
  }
  return fs.mkdtemp(path.join(outputDir, STAGING_PREFIX));
}

/** Every file under `dir`, as sorted relative POSIX paths. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) =>
      path
        .relative(dir, path.join(entry.parentPath ?? entry.path, entry.name))
        .split(path.sep)
        .join('/'),
    )
    .sort();
}

/** Moves the staged files into the output folder (replacing older ones) and removes the staging folder. */
export async function publishStaging(stagingDir: string, outputDir: string): Promise<string[]> {
  const files = await listFiles(stagingDir);
  const topLevel = new Set(files.map((file) => file.split('/')[0] ?? file));
  for (const entry of topLevel) {
    const target = path.join(outputDir, entry);
    await fs.rm(target, { recursive: true, force: true });
    await fs.rename(path.join(stagingDir, entry), target);
  }
  await fs.rm(stagingDir, { recursive: true, force: true });
  return files;
}
