#!/usr/bin/env node
/** The `media-worker` command line: run, modules, submit, watch, dashboard, jobs. */
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import {
  type Flags,
  loadConfig,
  requireDatabaseUrl,
  requireStorePaths,
  shownDefault,
} from '../config/config.js';
import { declaredSettings, loadModuleSettings, moduleSettingsMarkdown } from '../config/module-settings.js';
import { discoverModules } from '../modules/discover-modules.js';
import { packageVersion } from '../package-version.js';
import type { JobStore } from '../store/job-store.js';
import { openJobStore } from '../store/open-job-store.js';
import { JOB_STATUSES, type JobStatus } from '../store/schema.js';
import type { LiveTaskTypes } from './live-workers.js';
import { runProgram } from './run-program.js';
import {
  addModuleSettingOptions,
  addSettingOptions,
  DAEMON_SETTINGS,
  DASHBOARD_SETTINGS,
  MODULE_SETTINGS,
  STATS_SETTINGS,
  STORE_SETTINGS,
  WATCH_SETTINGS,
} from './setting-options.js';
import { UsageError } from './usage-error.js';

/*
 * Each command imports what it runs when it runs, so `jobs list` or `--help` does not load the
 * daemon, the broker client or the dashboard (a third of a second of start-up for every command).
 */

const BUILT_IN_MODULES = fileURLToPath(new URL('../../compute_modules', import.meta.url));

const configFrom = (flags: Flags) => loadConfig(flags, process.env, BUILT_IN_MODULES);

/** A bad setting elsewhere is reported by the command itself, once commander has parsed the line. */
function modulesDirForOptions(): string {
  try {
    return modulesDirNamed(process.argv) ?? configFrom({}).daemon.modulesDir;
  } catch {
    return BUILT_IN_MODULES;
  }
}

/** `--modules-dir X` or `--modules-dir=X` on the command line, read before commander parses it. */
function modulesDirNamed(argv: readonly string[]): string | undefined {
  for (const [index, arg] of argv.entries()) {
    if (arg === '--modules-dir') return argv[index + 1];
    if (arg.startsWith('--modules-dir=')) return arg.slice('--modules-dir='.length);
  }
  return undefined;
}

const integerIn = (min: number, max: number) => (text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  }
  return value;
};

const oneOf =
  <T extends string>(choices: readonly T[]) =>
  (text: string): T => {
    if (!(choices as readonly string[]).includes(text)) {
      throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    }
    return text as T;
  };

const program = new Command('media-worker')
  .description('Claims media jobs from media_store.db and runs them in child-process runners.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .showHelpAfterError();

/**
 * The modules' own settings become flags of `run`, so they are found before the command line is
 * parsed: in the modules directory it names (or WORKER_MODULES_DIR, or the built-in one). A
 * directory that cannot be read adds none; `run` itself then says what is wrong with it.
 */
const modulesForOptions = await discoverModules(modulesDirForOptions()).catch(() => new Map());
/** Not a reason to fail `jobs list`: `run` checks the same table itself and says what is wrong. */
const moduleOptions = (() => {
  try {
    return declaredSettings(modulesForOptions.values());
  } catch {
    return [];
  }
})();
addModuleSettingOptions(
  addSettingOptions(
    program
      .command('run')
      .description('Run the worker daemon (SIGTERM/SIGINT: finish or requeue running jobs, then exit 0).'),
    DAEMON_SETTINGS,
  ),
  moduleOptions,
).action(async (flags: Flags) => {
  const { runWorker } = await import('./run-command.js');
  await runWorker(configFrom(flags), (modules) => loadModuleSettings(modules, flags, process.env));
});

addSettingOptions(
  program
    .command('modules')
    .description('List the compute modules, with their parameters as JSON Schema and their settings.')
    .option('--markdown', "print the modules' settings as the README's table instead"),
  MODULE_SETTINGS,
).action(async (flags: Flags & { markdown?: boolean }) => {
  const modules = await discoverModules(configFrom(flags).daemon.modulesDir);
  if (flags.markdown) {
    console.log(moduleSettingsMarkdown(declaredSettings(modules.values())));
    return;
  }
  const listing = [...modules.values()].map(({ name, manifest }) => ({
    name,
    description: manifest.description,
    default_timeout_s: manifest.defaultTimeoutS,
    settings: Object.values(manifest.settings ?? {}).map((definition) => ({
      flag: definition.flag,
      env: definition.env,
      accepts: definition.accepts,
      default: shownDefault(definition) ?? null,
    })),
    parameters: z.toJSONSchema(manifest.params, { io: 'input', unrepresentable: 'any' }),
  }));
  console.log(JSON.stringify(listing, null, 2));
});

addSettingOptions(
  program
    .command('submit')
    .description('Insert a job as the API service does and print its job_id.')
    .argument('<task>', 'task type (a module name)')
    .argument('<files...>', 'input files, copied into the storage root')
    .option('--params <json>', 'task parameters as a JSON object (input_files[0].metadata)')
    .option('--priority <0-10>', 'queue priority, higher first', integerIn(0, 10), 5)
    .option('--max-retries <n>', 'retry budget', integerIn(0, 1000), 3),
  [...STORE_SETTINGS, ...MODULE_SETTINGS],
).action(
  async (
    task: string,
    files: string[],
    flags: Flags & { params?: string; priority: number; maxRetries: number },
  ) => {
    const config = configFrom(flags);
    const { checkSubmission, parseParamsJson, submitJob } = await import('./submit-command.js');
    await checkSubmission(config.daemon.modulesDir, task, parseParamsJson(flags.params));
    const jobId = await submitJob({
      ...requireStorePaths(config),
      taskType: task,
      files,
      paramsJson: flags.params,
      priority: flags.priority,
      maxRetries: flags.maxRetries,
    });
    console.log(jobId);
  },
);

addSettingOptions(
  program
    .command('watch')
    .description(
      'Show live workers and running jobs from MQTT, and queued jobs when the database is set (Ctrl-C to quit). Into a pipe: one line per change.',
    )
    .option('--json', 'print one JSON line per message instead, for scripts')
    .option('--broker <host-or-url>', 'same as --mqtt-broker'),
  [...WATCH_SETTINGS, ...STORE_SETTINGS],
).action(async (flags: Flags & { json?: boolean; broker?: string }) => {
  const { watch } = await import('./watch-command.js');
  await watch(configFrom({ ...flags, mqttBroker: flags.mqttBroker ?? flags.broker }), {
    json: flags.json === true,
  });
});

addSettingOptions(
  program
    .command('dashboard')
    .description(
      'Serve a live web page of workers, queues and jobs, with retry and cancel (127.0.0.1 unless --host; any other address needs --token).',
    ),
  DASHBOARD_SETTINGS,
).action(async (flags: Flags) => {
  const { runDashboard } = await import('../dashboard/dashboard-command.js');
  await runDashboard(configFrom(flags));
});

const jobs = program.command('jobs').description('Look at jobs.');
addSettingOptions(
  jobs.command('show').description('Print a job as JSON.').argument('<job_id>'),
  STORE_SETTINGS,
).action(async (jobId: string, flags: Flags) => {
  const job = await withStore(flags, (store) => store.getJob(jobId));
  if (!job) throw new UsageError(`no job ${jobId}`);
  console.log(JSON.stringify(job, null, 2));
});

/**
 * The jobs commands read a database the worker or the API created: they never create one (they add
 * the worker's own tables to it when missing).
 */
async function withStore<T>(flags: Flags, use: (store: JobStore) => Promise<T>): Promise<T> {
  const store = await openJobStore(requireDatabaseUrl(configFrom(flags)), {
    ensureSchema: false,
    mustExist: true,
  });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

addSettingOptions(
  jobs
    .command('list')
    .description('List jobs, newest first; with --status queued, in the order they will be claimed.')
    .option('--status <status>', `one of ${JOB_STATUSES.join(', ')}`, oneOf(JOB_STATUSES))
    .option('--task <task>', 'only this task type')
    .option('--limit <n>', 'at most this many', integerIn(1, 100_000), 50)
    .option('--json', 'print JSON'),
  STORE_SETTINGS,
).action(async (flags: Flags & { status?: JobStatus; task?: string; limit: number; json?: boolean }) => {
  const query = {
    limit: flags.limit,
    ...(flags.status === undefined ? {} : { status: flags.status }),
    ...(flags.task === undefined ? {} : { taskType: flags.task }),
  };
  const { listJobs } = await import('./jobs-commands.js');
  console.log(await withStore(flags, (store) => listJobs(store, query, flags.json === true)));
});

addSettingOptions(
  jobs
    .command('stats')
    .description(
      'Count jobs by task type and status, with the age of the oldest queued job, and name queued task types no live worker serves (from the retained MQTT announcements).',
    )
    .option('--json', 'print JSON'),
  STATS_SETTINGS,
).action(async (flags: Flags & { json?: boolean }) => {
  const config = configFrom(flags);
  const { jobStats } = await import('./jobs-commands.js');
  const live: LiveTaskTypes =
    config.broadcast.type === 'mqtt'
      ? await (await import('./live-workers.js')).liveTaskTypes(config)
      : { known: false, reason: 'no broker configured (BROADCAST_TYPE is not mqtt)' };
  console.log(await withStore(flags, (store) => jobStats(store, live, flags.json === true)));
});

for (const request of ['retry', 'cancel'] as const) {
  addSettingOptions(
    jobs
      .command(request)
      .description(
        request === 'retry'
          ? 'Put jobs that ended in error back in the queue with a fresh retry budget.'
          : 'Cancel jobs: a queued job ends in error "cancelled"; a running one is stopped by the daemon that runs it, on any host.',
      )
      .argument('<job_id...>')
      .option('--json', 'print JSON'),
    STORE_SETTINGS,
  ).action(async (jobIds: string[], flags: Flags & { json?: boolean }) => {
    const { requestEach } = await import('./jobs-commands.js');
    const { output, refused } = await withStore(flags, (store) =>
      requestEach(store, jobIds, request, flags.json === true),
    );
    console.log(output);
    if (refused) process.exitCode = 1;
  });
}

await runProgram(program);
