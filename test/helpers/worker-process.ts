/** Runs the real `media-worker` CLI as a child process, the way an operator would. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const DIST = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = `${DIST}worker/cli/main.js`;
export const TEST_MODULES = `${DIST}test/fixtures/modules`;

const EXIT_LIMIT_MS = 90_000;
const running = new Set<ChildProcess>();

/** Kills every daemon a test left running (call from afterEach). */
export function killLeftoverWorkers(): void {
  for (const child of running) child.kill('SIGKILL');
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Every stdout line parsed as JSON (pino). */
  logs: Record<string, unknown>[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
}

export function startWorker(
  serverDir: string,
  args: readonly string[],
  env: Record<string, string> = {},
  /** Run as this user (tests run as root, whom file permissions do not stop). */
  user?: { uid: number; gid: number },
): WorkerProcess {
  return startCli(
    serverDir,
    ['run', '--modules-dir', TEST_MODULES, '--poll-interval', '0.05', ...args],
    env,
    user,
  );
}

/** Starts a long-running `media-worker` command (`run`, `dashboard`) and follows its log. */
export function startCli(
  serverDir: string,
  args: readonly string[],
  env: Record<string, string> = {},
  user?: { uid: number; gid: number },
): WorkerProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, CL_SERVER_DIR: serverDir, BROADCAST_TYPE: 'noop', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exitedForever = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  running.add(child);
  void exitedForever.then(() => running.delete(child));
  // A test never waits forever for a daemon: past the limit it is killed and the test fails, naming it.
  const exited = Promise.race([
    exitedForever,
    new Promise<never>((_, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `worker ${args.join(' ')} did not exit within ${EXIT_LIMIT_MS} ms; stderr: ${stderr.slice(-800)}; last logs: ${JSON.stringify(logs.slice(-10))}`,
          ),
        );
      }, EXIT_LIMIT_MS);
      timer.unref();
      void exitedForever.then(() => clearTimeout(timer));
    }),
  ]);
  exited.catch(() => {});
  return {
    child,
    logs,
    stderr: () => stderr,
    exited,
    waitForLog(predicate, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = logs.find(predicate);
          if (!found) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-500)}; last logs: ${JSON.stringify(logs.slice(-10))}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Runs a Node script of the project to completion and returns its output. */
export function runScript(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the `media-worker` CLI to completion and returns its output. */
export const runCli = (args: readonly string[], env: Record<string, string> = {}) =>
  runScript(CLI, args, env);

export const BUILT_IN_MODULES = `${DIST}compute_modules`;

/** Runs the project's own modules with `--drain` until the queue is empty; fails on a non-zero exit. */
export async function drainBuiltIn(
  serverDir: string,
  tasks: readonly string[],
  extraArgs: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const worker = startWorker(
    serverDir,
    ['--modules-dir', BUILT_IN_MODULES, '--tasks', tasks.join(','), '--drain', ...extraArgs],
    env,
  );
  const { code } = await worker.exited;
  if (code !== 0) throw new Error(`worker exited with ${code}: ${worker.stderr().slice(-800)}`);
  return worker;
}

export interface DashboardProcess extends WorkerProcess {
  /** http://127.0.0.1:<port> (no trailing slash). */
  origin: string;
}

/** Starts `media-worker dashboard` on a free port and waits until it listens. */
export async function startDashboard(
  serverDir: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<DashboardProcess> {
  const dashboard = startCli(serverDir, ['dashboard', '--port', '0', ...args], {
    BROADCAST_TYPE: 'noop',
    ...env,
  });
  const listening = await Promise.race([
    dashboard.waitForLog((line) => String(line.msg).startsWith('dashboard listening')),
    dashboard.exited.then(({ code }) => {
      throw new Error(`the dashboard exited with ${code} before listening: ${dashboard.stderr()}`);
    }),
  ]);
  return { ...dashboard, origin: String(listening.url).replace(/\/$/, '') };
}
