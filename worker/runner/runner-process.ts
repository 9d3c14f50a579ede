/**
 * One runner process seen from the daemon: spawned with execa in its own process group (a Ctrl-C
 * in the daemon's terminal does not reach it; a kill reaches the module's own children too), fed
 * one job at a time over IPC, and killed with SIGTERM then SIGKILL when it must stop.
 */
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { RunnerCrashedError } from '../errors.js';
import {
  type DaemonToRunner,
  type InitMessage,
  parseMessage,
  type RunnerInit,
  type RunnerJob,
  type RunnerOutcome,
  type RunnerToDaemon,
  RunnerToDaemonSchema,
} from './protocol.js';

const RUNNER_MAIN = fileURLToPath(new URL('./runner-main.js', import.meta.url));
/** How long a dead runner's group may take to vanish after SIGKILL (a zombie nobody reaps never does). */
const GROUP_EXIT_WAIT_MS = 1000;
const STDERR_TAIL_BYTES = 2048;
/** Loading Node, the module and its warm-up (itself bounded at 30 s in the runner). */
const READY_LIMIT_MS = 60_000;

const SPAWN_OPTIONS = {
  ipc: true,
  serialization: 'json',
  detached: true,
  stdin: 'ignore',
  stdout: 'inherit',
  stderr: 'pipe',
  buffer: false,
  reject: false,
} as const;

type RunnerSubprocess = ResultPromise<typeof SPAWN_OPTIONS>;

export interface RunnerExit {
  exitCode: number | undefined;
  signal: string | undefined;
  stderrTail: string;
  /** Why the daemon killed it, when it was for something the runner did (a malformed message). */
  killedBecause?: string;
}

export type RunResult =
  | { kind: 'finished'; outcome: RunnerOutcome; message?: string }
  | { kind: 'exited'; exit: RunnerExit }
  /** The job could not be handed over (the IPC encoder refused it); the runner is still fit. */
  | { kind: 'not-sent'; reason: string };

export interface RunHooks {
  onStarted(): void;
  onProgress(progress: number): void;
}

export interface RunnerProcessOptions {
  init: RunnerInit;
  killGraceMs: number;
  maxMemoryMb: number | undefined;
}

export class RunnerProcess {
  jobsServed = 0;
  private stderrTail = '';
  /** Set once it has been told to exit: from then on it must not be given another job. */
  private dying = false;
  private exitInfo: RunnerExit | undefined;
  private readonly exited: Promise<RunnerExit>;
  private current: { job: RunnerJob; hooks: RunHooks; settle: (result: RunResult) => void } | undefined;
  /** What was wrong with a message it sent, when that is why it was killed. */
  private protocolError: string | undefined;
  /** Set while spawn() waits for the runner's `ready`. */
  private onReady: (() => void) | undefined;

  private constructor(
    private readonly subprocess: RunnerSubprocess,
    private readonly killGraceMs: number,
  ) {
    subprocess.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    subprocess.on('message', (raw: unknown) => {
      const message = parseMessage(RunnerToDaemonSchema, raw, 'runner');
      if (message instanceof Error) {
        // The two ends disagree: this runner cannot be trusted with the job. Its exit, as the
        // daemon reports it, quotes what was wrong.
        this.protocolError = message.message;
        this.dying = true;
        this.killGroup('SIGKILL');
        return;
      }
      if (message.type === 'ready') this.onReady?.();
      else this.onMessage(message);
    });
    this.exited = subprocess.then(async (result) => {
      this.exitInfo = {
        exitCode: result.exitCode,
        signal: result.signal,
        stderrTail: this.stderrTail.trim(),
        ...(this.protocolError === undefined ? {} : { killedBecause: this.protocolError }),
      };
      // Whatever the module left behind in the group (an ffmpeg) is killed, and waited for, so
      // that once a runner counts as gone, nothing it started is still running.
      this.killGroup('SIGKILL');
      await this.groupGone(GROUP_EXIT_WAIT_MS);
      const running = this.current;
      this.current = undefined;
      running?.settle({ kind: 'exited', exit: this.exitInfo });
      return this.exitInfo;
    });
  }

  get pid(): number | undefined {
    return this.subprocess.pid;
  }

  /** Running and not told to exit: fit for another job. */
  get alive(): boolean {
    return this.exitInfo === undefined && !this.dying;
  }

  /**
   * Starts a runner; `ready` resolves once its module is loaded, or rejects with the reason it died
   * (killing it while it starts rejects it too).
   */
  static spawn({ init, killGraceMs, maxMemoryMb }: RunnerProcessOptions): {
    runner: RunnerProcess;
    ready: Promise<RunnerProcess>;
  } {
    const nodeOptions = maxMemoryMb ? [`--max-old-space-size=${maxMemoryMb}`] : [];
    const subprocess = execa(process.execPath, [...nodeOptions, RUNNER_MAIN], SPAWN_OPTIONS);
    const runner = new RunnerProcess(subprocess, killGraceMs);
    try {
      // Queued by Node until the child's end of the channel is up.
      subprocess.send({ type: 'init', init } satisfies InitMessage);
    } catch {
      // The channel closed at once: the exit below rejects `ready` with the runner's own account.
    }
    // A module whose loading hangs must not hold the daemon's start-up or shutdown: past the limit
    // the runner is killed and counts as failed to start.
    const slow = setTimeout(() => void runner.kill(), READY_LIMIT_MS);
    const ready = new Promise<RunnerProcess>((resolve, reject) => {
      runner.onReady = () => {
        runner.onReady = undefined;
        resolve(runner);
      };
      runner.exited.then((exit) => {
        runner.onReady = undefined;
        const cause =
          runner.dying && runner.protocolError === undefined
            ? 'stopped before it was ready'
            : describeExit(exit);
        reject(new RunnerCrashedError(`runner for ${init.moduleName} failed to start: ${cause}`));
      });
    }).finally(() => clearTimeout(slow));
    return { runner, ready };
  }

  /** Sends the job; resolves with the runner's report, or with its exit if it died first. */
  run(job: RunnerJob, hooks: RunHooks): Promise<RunResult> {
    if (this.current) throw new Error(`runner ${this.pid} is already running job ${this.current.job.jobId}`);
    if (this.exitInfo) return Promise.resolve({ kind: 'exited', exit: this.exitInfo });
    if (this.dying) throw new Error(`runner ${this.pid} is being stopped and takes no more jobs`);
    try {
      this.subprocess.send({ type: 'run', job } satisfies DaemonToRunner);
    } catch (error) {
      if (!this.subprocess.connected) return this.exited.then((exit) => ({ kind: 'exited', exit }));
      return Promise.resolve({ kind: 'not-sent', reason: (error as Error).message });
    }
    this.jobsServed += 1;
    return new Promise<RunResult>((settle) => {
      this.current = { job, hooks, settle };
    });
  }

  /** Tells the runner its job's lease was renewed (see LeaseClock); a gone runner is ignored. */
  renewLease(jobId: string, validForMs: number): void {
    if (this.current?.job.jobId !== jobId || !this.subprocess.connected) return;
    try {
      this.subprocess.send({ type: 'lease', jobId, validForMs } satisfies DaemonToRunner);
    } catch {
      // The channel closed: the exit is on its way and settles the job.
    }
  }

  /** SIGTERM to the whole process group, SIGKILL after the grace; resolves once it has exited. */
  kill(): Promise<RunnerExit> {
    return this.stop(() => this.killGroup('SIGTERM'));
  }

  /** Asks an idle runner to exit by closing its IPC channel (SIGKILL after the grace). */
  async retire(): Promise<void> {
    await this.stop(() => {
      if (this.subprocess.connected) this.subprocess.disconnect();
    });
  }

  /** Marks it dying, asks it to exit, and force-kills the group if it has not exited in the grace. */
  private async stop(ask: () => void): Promise<RunnerExit> {
    if (this.exitInfo) return this.exitInfo;
    this.dying = true;
    ask();
    const forceKill = setTimeout(() => this.killGroup('SIGKILL'), this.killGraceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(forceKill);
    }
  }

  private onMessage(message: Exclude<RunnerToDaemon, { type: 'ready' }>): void {
    const running = this.current;
    if (!running || message.jobId !== running.job.jobId) return;
    if (message.type === 'started') running.hooks.onStarted();
    else if (message.type === 'progress') running.hooks.onProgress(message.progress);
    else if (message.type === 'finished') {
      this.current = undefined;
      running.settle({
        kind: 'finished',
        outcome: message.outcome,
        ...(message.message === undefined ? {} : { message: message.message }),
      });
    }
  }

  /** Polls until no process of the runner's group is left, or the wait is over. */
  private async groupGone(maxWaitMs: number): Promise<void> {
    const pid = this.subprocess.pid;
    if (pid === undefined) return;
    const deadline = Date.now() + maxWaitMs;
    while (Date.now() < deadline) {
      try {
        process.kill(-pid, 0);
      } catch {
        return; // ESRCH: the group is empty
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private killGroup(signal: NodeJS.Signals): void {
    const pid = this.subprocess.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }
}

/** "exit code 3", "killed by SIGKILL (out of memory?)", plus the tail of stderr. */
export function describeExit(exit: RunnerExit): string {
  const outOfMemory = /heap out of memory|ENOMEM|Cannot allocate memory/i.test(exit.stderrTail);
  let cause: string;
  if (exit.killedBecause) cause = `killed by the daemon: ${exit.killedBecause}`;
  else if (outOfMemory) cause = 'ran out of memory';
  else if (exit.signal === 'SIGKILL') cause = 'killed by SIGKILL (out of memory, or killed from outside)';
  else if (exit.signal) cause = `killed by ${exit.signal}`;
  else cause = `exit code ${exit.exitCode ?? 'unknown'}`;
  const tail = exit.stderrTail.split('\n').slice(-5).join('\n').slice(-600);
  return tail ? `${cause}; stderr: ${tail}` : cause;
}
