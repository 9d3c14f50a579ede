#!/usr/bin/env node
/** The `media-worker` command line: run, modules, submit, jobs show. */
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { ConfigError, type Flags, loadConfig, requireStorePaths } from '../config/config.js';
import { discoverModules } from '../modules/discover-modules.js';
import { openJobStore } from '../store/open-job-store.js';
import { runWorker } from './run-command.js';
import { runProgram } from './run-program.js';
import {
  addSettingOptions,
  DAEMON_SETTINGS,
  MODULE_SETTINGS,
  STORE_SETTINGS,
  WATCH_SETTINGS,
} from './setting-options.js';
import { submitJob } from './submit-command.js';
import { watch } from './watch-command.js';

const BUILT_IN_MODULES = fileURLToPath(new URL('../../compute_modules', import.meta.url));

const configFrom = (flags: Flags) => loadConfig(flags, process.env, BUILT_IN_MODULES);

const integerIn = (min: number, max: number) => (text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  }
  return value;
};

const program = new Command('media-worker')
  .description('Claims media jobs from media_store.db and runs them in child-process runners.')
  .showHelpAfterError();

addSettingOptions(
  program
    .command('run')
    .description('Run the worker daemon (SIGTERM/SIGINT: finish or requeue running jobs, then exit 0).'),
  DAEMON_SETTINGS,
).action(async (flags: Flags) => runWorker(configFrom(flags)));

addSettingOptions(
  program.command('modules').description('List the compute modules, with their parameters as JSON Schema.'),
  MODULE_SETTINGS,
).action(async (flags: Flags) => {
  const modules = await discoverModules(configFrom(flags).modulesDir);
  const listing = [...modules.values()].map(({ name, manifest }) => ({
    name,
    description: manifest.description,
    default_timeout_s: manifest.defaultTimeoutS,
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
  STORE_SETTINGS,
).action(
  async (
    task: string,
    files: string[],
    flags: Flags & { params?: string; priority: number; maxRetries: number },
  ) => {
    const config = configFrom(flags);
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
    .description('Show live workers and running jobs from MQTT (Ctrl-C to quit).')
    .option('--json', 'print one JSON line per message instead, for scripts')
    .option('--broker <host-or-url>', 'same as --mqtt-broker'),
  WATCH_SETTINGS,
).action(async (flags: Flags & { json?: boolean; broker?: string }) =>
  watch(configFrom({ ...flags, mqttBroker: flags.mqttBroker ?? flags.broker }), {
    json: flags.json === true,
  }),
);

const jobs = program.command('jobs').description('Look at jobs.');
addSettingOptions(
  jobs.command('show').description('Print a job as JSON.').argument('<job_id>'),
  STORE_SETTINGS,
).action(async (jobId: string, flags: Flags) => {
  const store = await openJobStore(requireStorePaths(configFrom(flags)).databaseUrl, {
    ensureSchema: false,
  });
  try {
    const job = await store.getJob(jobId);
    if (!job) throw new ConfigError(`no job ${jobId}`);
    console.log(JSON.stringify(job, null, 2));
  } finally {
    await store.close();
  }
});

await runProgram(program);
