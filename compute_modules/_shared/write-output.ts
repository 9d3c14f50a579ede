/** Writes an output file under a temporary name and renames it, so no reader sees half a file. */
import fs from 'node:fs/promises';
import path from 'node:path';

export async function writeOutputAtomically(
  outputDir: string,
  filename: string,
  write: (temporaryPath: string) => Promise<unknown>,
): Promise<{ path: string; sizeBytes: number }> {
  const finalPath = path.join(outputDir, filename);
  const temporaryPath = path.join(outputDir, `.${filename}.${process.pid}.${Date.now()}.tmp`);
  try {
    await write(temporaryPath);
    await fs.rename(temporaryPath, finalPath);
  } catch (error) {
    await fs.rm(temporaryPath, { force: true });
    throw error;
  }
  const { size } = await fs.stat(finalPath);
  return { path: finalPath, sizeBytes: size };
}
