/** A throwaway CL_SERVER_DIR per test: its own media_store.db and storage root, removed afterwards. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { JobRecord, JobStore, NewJob } from '../../worker/store/job-store.js';
import { openJobStore } from '../../worker/store/open-job-store.js';
import type { OutputFile } from '../../worker/store/schema.js';
import { createTestDatabase } from './postgres.js';
import { killLeftoverWorkers } from './worker-process.js';

export interface Workspace {
  dir: string;
  /** The SQLite file (unused when the workspace is on PostgreSQL). */
  databasePath: string;
  /** What the worker is given as DATABASE_URL: the SQLite file, or a PostgreSQL database of its own. */
  databaseUrl: string;
  storageRoot: string;
  store: JobStore;
  /** Inserts a queued job as the API does; returns its job_id. */
  addJob(
    taskType: string,
    params?: Record<string, unknown>,
    options?: Partial<NewJob> & { input?: TestInput },
  ): Promise<string>;
  /**
   * Inserts a queued job row as given, with no checks: `inputFiles` is the column's text, whatever
   * it holds (hostile rows). Returns the job_id.
   */
  addRawJob(jobId: string, taskType: string, inputFiles: string): string;
  /** Writes a file under the storage root and returns its relative path. */
  addInputFile(jobId: string, name: string, content: Buffer | string): string;
  cleanup(): Promise<void>;
}

/** The job's one input file; a small text file when not given. */
export interface TestInput {
  name: string;
  content: Buffer | string;
}

let counter = 0;

/** A source file of the repository (tests run from dist/, fixtures that are not TypeScript stay in test/). */
export const repoFile = (relative: string) => fileURLToPath(new URL(`../../../${relative}`, import.meta.url));

export interface WorkspaceOptions {
  /**
   * The workspace's database is a PostgreSQL database of its own, dropped at cleanup: on the
   * shared test server (`true`) or on the server `serverUrl` names.
   */
  postgres?: boolean | { serverUrl: string };
}

export async function createWorkspace({ postgres = false }: WorkspaceOptions = {}): Promise<Workspace> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-test-'));
  const databasePath = path.join(dir, 'media_store.db');
  const storageRoot = path.join(dir, 'compute');
  fs.mkdirSync(storageRoot);
  const postgresDatabase =
    postgres === false
      ? undefined
      : await createTestDatabase(postgres === true ? undefined : postgres.serverUrl);
  const databaseUrl = postgresDatabase?.url ?? databasePath;
  const store = await openJobStore(databaseUrl, { ensureSchema: true });
  const workspace: Workspace = {
    dir,
    databasePath,
    databaseUrl,
    storageRoot,
    store,
    async addJob(
      taskType,
      params = {},
      { input = { name: 'input.txt', content: 'input' }, ...options } = {},
    ) {
      counter += 1;
      const jobId =
        options.jobId ?? `job-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
      const inputPath = workspace.addInputFile(jobId, input.name, input.content);
      await store.insertJob({
        jobId,
        taskType,
        inputFileSource: 'upload',
        inputFiles: [{ path: inputPath, filename: input.name, metadata: params }],
        priority: 5,
        maxRetries: 3,
        createdBy: null,
        ...options,
      });
      return jobId;
    },
    addRawJob(jobId, taskType, inputFiles) {
      if (postgresDatabase) throw new Error('addRawJob writes SQLite only');
      const raw = new Database(databasePath);
      try {
        raw
          .prepare(
            `INSERT INTO jobs (job_id, task_type, input_file_source, input_file_path, input_files, output_files,
             status, progress, created_at, retry_count, max_retries) VALUES (?, ?, 'upload', '', ?, '[]', 'queued', 0, ?, 0, 3)`,
          )
          .run(jobId, taskType, inputFiles, Date.now());
      } finally {
        raw.close();
      }
      return jobId;
    },
    addInputFile(jobId, name, content) {
      const relative = path.posix.join('jobs', jobId, 'input', name);
      fs.mkdirSync(path.join(storageRoot, 'jobs', jobId, 'input'), { recursive: true });
      fs.writeFileSync(path.join(storageRoot, relative), content);
      return relative;
    },
    async cleanup() {
      await workspace.store.close();
      await postgresDatabase?.drop();
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
  return workspace;
}

/**
 * Gives each test of the enclosing suite a fresh workspace (handed to `use`), then kills any daemon
 * the test left running and removes the workspace.
 */
export function useWorkspace(use: (workspace: Workspace) => void, options: WorkspaceOptions = {}): void {
  let current: Workspace | undefined;
  beforeEach(async () => {
    current = await createWorkspace(options);
    use(current);
  });
  afterEach(async () => {
    killLeftoverWorkers();
    await current?.cleanup();
    current = undefined;
  });
}

/**
 * One workspace for a whole suite whose tests each check part of one run (one drain): made before
 * its first test, removed after its last.
 */
export function useSuiteWorkspace(use: (workspace: Workspace) => void, options: WorkspaceOptions = {}): void {
  let current: Workspace | undefined;
  before(async () => {
    current = await createWorkspace(options);
    use(current);
  });
  after(async () => {
    killLeftoverWorkers();
    await current?.cleanup();
    current = undefined;
  });
}

/**
 * Polls a condition (no fixed sleeps): resolves with its first truthy value. The timeout only guards
 * against a hang; it is no speed assertion, so it is generous.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 60_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Whether a process is still running (signal 0 checks without sending anything). A zombie has
 * exited: it only waits for its parent (a frozen daemon, say) to collect its status.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) STATE …"; comm may hold spaces and parentheses.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: signal 0 is all there is
  }
}

/**
 * Asserts that a job ended in `error` (and, with `retried: false`, that no retry was spent on it)
 * and returns its error_message.
 */
export async function errorMessageOf(
  store: JobStore,
  jobId: string,
  { retried }: { retried?: boolean } = {},
): Promise<string> {
  const job = await store.getJob(jobId);
  assert.equal(job?.status, 'error', `${jobId} should fail, got ${job?.status}`);
  if (retried === false) assert.equal(job?.retry_count, 0, 'a job that cannot succeed is not retried');
  return job?.error_message ?? '';
}

export interface CompletedJob {
  job: JobRecord;
  outputs: OutputFile[];
  taskOutput: Record<string, unknown>;
  /** Where an output file of the job is under the storage root. */
  outputPath(filename: string): string;
}

/** Asserts that a job completed (the error message says why not) and returns what it produced. */
export async function completedJob(workspace: Workspace, jobId: string): Promise<CompletedJob> {
  const job = await workspace.store.getJob(jobId);
  assert.equal(job?.status, 'completed', `${jobId}: ${job?.error_message}`);
  assert.ok(job);
  return {
    job,
    outputs: job.output_files as OutputFile[],
    taskOutput: job.task_output as Record<string, unknown>,
    outputPath: (filename) => path.join(workspace.storageRoot, 'jobs', jobId, 'output', filename),
  };
}
