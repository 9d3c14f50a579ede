/**
 * `media-worker submit`: inserts a job exactly as the API service does — every NOT NULL column,
 * millisecond timestamps, the files copied under `<storage>/jobs/<job_id>/input/`, the parameters
 * in `input_files[0].metadata`, and a `queue_entries` row.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidParametersError } from '../errors.js';
import { discoverModules } from '../modules/discover-modules.js';
import { readParams } from '../runner/job-inputs.js';
import { openJobStore } from '../store/open-job-store.js';
import type { InputFile } from '../store/schema.js';
import { UsageError } from './usage-error.js';

export interface SubmitRequest {
  databaseUrl: string;
  storageRoot: string;
  taskType: string;
  files: readonly string[];
  paramsJson: string | undefined;
  priority: number;
  maxRetries: number;
}

export function parseParamsJson(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--params is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--params must be a JSON object, e.g. {"width": 128}');
  }
  return parsed as Record<string, unknown>;
}

/**
 * Refuses, before anything is written, a task type no module serves and parameters its schema
 * rejects, with the message the job would otherwise have failed with.
 */
export async function checkSubmission(
  modulesDir: string,
  taskType: string,
  params: Record<string, unknown>,
): Promise<void> {
  const modules = await discoverModules(modulesDir);
  const module = modules.get(taskType);
  if (!module) {
    throw new UsageError(
      `unknown task type '${taskType}'; the modules are: ${[...modules.keys()].join(', ')}`,
    );
  }
  try {
    readParams(module.manifest.params, [{ path: '', metadata: params }]);
  } catch (error) {
    if (error instanceof InvalidParametersError) throw new UsageError(`${taskType}: ${error.message}`);
    throw error;
  }
}

export async function submitJob(request: SubmitRequest): Promise<string> {
  const params = parseParamsJson(request.paramsJson);
  const jobId = randomUUID();
  const inputDir = path.join(request.storageRoot, 'jobs', jobId, 'input');
  await fs.mkdir(inputDir, { recursive: true });
  const inputFiles: InputFile[] = [];
  for (const [index, file] of request.files.entries()) {
    const filename = path.basename(file);
    const content = await fs.readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${file}: ${error.code ?? error.message}`);
    });
    await fs.writeFile(path.join(inputDir, filename), content);
    inputFiles.push({
      path: path.posix.join('jobs', jobId, 'input', filename),
      filename,
      size: content.length,
      hash: createHash('sha256').update(content).digest('hex'),
      ...(index === 0 ? { metadata: params } : {}),
    });
  }
  const store = await openJobStore(request.databaseUrl, { ensureSchema: true });
  try {
    await store.insertJob({
      jobId,
      taskType: request.taskType,
      inputFileSource: 'upload',
      inputFiles,
      priority: request.priority,
      maxRetries: request.maxRetries,
      createdBy: null,
    });
  } finally {
    await store.close();
  }
  return jobId;
}
