/**
 * Warm runner processes, per module. Runners are started before the first claim (`prewarm`); a job
 * takes an idle runner of its module or starts one; a runner returns to the pool until it has
 * served `reuseLimit` jobs (0 = no limit). When the runner a job takes will retire after it, a
 * spare is started in the background, so that even with a fresh process per job (`reuseLimit` 1)
 * the next job rarely waits for Node and its module to load, and no spare competes for the CPU
 * otherwise.
 */
import type { Logger } from 'pino';
import type { DiscoveredModule } from '../modules/discover-modules.js';
import type { RunnerInit } from './protocol.js';
import { RunnerProcess } from './runner-process.js';

export interface RunnerPoolOptions {
  modules: ReadonlyMap<string, DiscoveredModule>;
  runnerInit: Omit<RunnerInit, 'moduleName' | 'moduleDirectory' | 'settings'>;
  /** Each module's settings, by module name. */
  moduleSettings: Readonly<Record<string, RunnerInit['settings']>>;
  reuseLimit: number;
  /** Idle runners kept across all modules; more are retired, oldest first. */
  maxIdle: number;
  killGraceMs: number;
  maxMemoryMb: number | undefined;
  log: Logger;
  /** Told of each runner that came up (metrics). */
  onRunnerStarted?: (taskType: string) => void;
}

export class RunnerPool {
  private readonly idle: { taskType: string; runner: RunnerProcess }[] = [];
  private readonly warming = new Map<string, Promise<RunnerProcess>>();
  private readonly live = new Set<RunnerProcess>();
  private closed = false;

  constructor(private readonly options: RunnerPoolOptions) {}

  /**
   * Starts `slots` runners, spread over the modules in turn, and waits until they are ready, so the
   * first jobs do not pay for process start-up. A module whose runner cannot start is only logged:
   * its jobs will report the cause. `signal` stops the wait (a stop during start-up); runners still
   * starting then come up into the pool, and close() kills them.
   */
  async prewarm(taskTypes: readonly string[], slots: number, signal?: AbortSignal): Promise<void> {
    const plan =
      taskTypes.length === 0
        ? []
        : Array.from({ length: slots }, (_, index) => taskTypes[index % taskTypes.length]);
    const warming = Promise.all(
      plan.map(async (taskType) => {
        if (taskType === undefined) return;
        try {
          const runner = await this.spawn(taskType);
          this.idle.push({ taskType, runner });
        } catch (error) {
          if (!this.closed)
            this.options.log.warn({ err: error, task_type: taskType }, 'runner failed to start');
        }
      }),
    );
    if (!signal) return void (await warming);
    const stop = whenAborted(signal);
    await Promise.race([warming, stop.aborted]);
    stop.dispose();
  }

  /**
   * An idle or warming runner of the module, or a new one; rejects if it cannot start. `signal`
   * gives up the wait (a job stopped before it started): a runner that arrives later goes back to
   * the pool.
   */
  async acquire(taskType: string, signal?: AbortSignal): Promise<RunnerProcess> {
    signal?.throwIfAborted();
    const taking = this.take(taskType);
    let runner: RunnerProcess;
    if (signal) {
      const stop = whenAborted(signal);
      const first = await Promise.race([taking, stop.aborted]).finally(() => stop.dispose());
      if (first === ABORTED) {
        taking.then(
          (late) => this.release(taskType, late),
          () => {},
        );
        throw signal.reason;
      }
      runner = first;
    } else {
      runner = await taking;
    }
    const { reuseLimit } = this.options;
    const retiresAfterThisJob = reuseLimit > 0 && runner.jobsServed + 1 >= reuseLimit;
    if (!this.closed && retiresAfterThisJob && this.hasNoSpare(taskType)) this.warmSpare(taskType);
    return runner;
  }

  /**
   * Gives a runner back after a job: kept warm if healthy and under its reuse limit. `discard`: it
   * met a worker-side fault (its database connection may be read-only for good), so it goes.
   */
  release(taskType: string, runner: RunnerProcess, { discard = false } = {}): void {
    const { reuseLimit, maxIdle } = this.options;
    if (discard || this.closed || !runner.alive || (reuseLimit > 0 && runner.jobsServed >= reuseLimit)) {
      void this.retire(runner);
      return;
    }
    this.idle.push({ taskType, runner });
    while (this.idle.length > maxIdle) {
      const oldest = this.idle.shift();
      if (oldest) void this.retire(oldest.runner);
    }
  }

  /**
   * Retires every idle and warming runner: they were started while the worker had a fault, and may
   * hold what it left them (a read-only database connection). The next job starts a fresh one.
   */
  recycleIdle(): void {
    for (const { runner } of this.idle.splice(0)) void this.retire(runner);
    for (const [taskType, starting] of this.warming) {
      this.warming.delete(taskType);
      void starting.then((runner) => this.retire(runner)).catch(() => {});
    }
  }

  /** Kills every runner, busy, idle or still starting; used at shutdown. */
  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    this.warming.clear();
    await Promise.all([...this.live].map((runner) => runner.kill()));
  }

  private async take(taskType: string): Promise<RunnerProcess> {
    for (;;) {
      const index = this.idle.findIndex((entry) => entry.taskType === taskType);
      if (index >= 0) {
        const [entry] = this.idle.splice(index, 1);
        if (entry?.runner.alive) return entry.runner;
        continue;
      }
      const warming = this.warming.get(taskType);
      if (warming) {
        this.warming.delete(taskType);
        const runner = await warming.catch(() => undefined);
        if (runner?.alive) return runner;
        continue;
      }
      return this.spawn(taskType);
    }
  }

  private hasNoSpare(taskType: string): boolean {
    return !this.warming.has(taskType) && !this.idle.some((entry) => entry.taskType === taskType);
  }

  private warmSpare(taskType: string): void {
    const starting = this.spawn(taskType);
    this.warming.set(taskType, starting);
    starting.catch((error: unknown) => {
      if (this.warming.get(taskType) === starting) this.warming.delete(taskType);
      if (this.closed) return;
      this.options.log.warn({ err: error, task_type: taskType }, 'spare runner failed to start');
    });
  }

  private async spawn(taskType: string): Promise<RunnerProcess> {
    const module = this.options.modules.get(taskType);
    if (!module) throw new Error(`no module for task type ${taskType}`);
    if (this.closed) throw new Error('runner pool is closed');
    const { runner, ready } = RunnerProcess.spawn({
      init: {
        ...this.options.runnerInit,
        moduleName: module.name,
        moduleDirectory: module.directory,
        settings: this.options.moduleSettings[module.name] ?? {},
      },
      killGraceMs: this.options.killGraceMs,
      maxMemoryMb: this.options.maxMemoryMb,
    });
    // Live from the start, so that close() kills it even before it is ready.
    this.live.add(runner);
    try {
      await ready;
    } catch (error) {
      this.live.delete(runner);
      throw error;
    }
    if (this.closed) {
      await this.retire(runner);
      throw new Error('runner pool is closed');
    }
    this.options.onRunnerStarted?.(taskType);
    return runner;
  }

  private async retire(runner: RunnerProcess): Promise<void> {
    await runner.retire();
    this.live.delete(runner);
  }
}

/** What whenAborted() resolves with, so that a race against a runner tells the two apart. */
const ABORTED: unique symbol = Symbol('aborted');

/** Resolves once `signal` aborts (at once if it has); `dispose` drops the listener when no longer wanted. */
function whenAborted(signal: AbortSignal): { aborted: Promise<typeof ABORTED>; dispose(): void } {
  let onAbort: () => void = () => {};
  const aborted = new Promise<typeof ABORTED>((resolve) => {
    onAbort = () => resolve(ABORTED);
    if (signal.aborted) resolve(ABORTED);
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { aborted, dispose: () => signal.removeEventListener('abort', onAbort) };
}
