import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig, SETTINGS, type Setting, shownDefault } from '../../worker/config/config.js';
import { BUILT_IN_MODULES, runCli, startWorker, TEST_MODULES } from '../helpers/worker-process.js';
import { repoFile, useWorkspace, type Workspace } from '../helpers/workspace.js';

describe('media-worker CLI', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  test('a bad environment value prints one line naming the variable and what it accepts, exit 2', async () => {
    const result = await runCli(['run'], { CL_SERVER_DIR: workspace.dir, WORKER_POLL_INTERVAL: 'abc' });
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(
      result.stderr,
      /WORKER_POLL_INTERVAL="abc" is invalid: expected a duration from 0.001 to 3600/,
    );
  });

  test('--help says a switch takes no value, and names its variable and what that accepts', async () => {
    const help = (await runCli(['run', '--help'])).stdout.replace(/\s+/g, ' ');
    assert.match(
      help,
      /--drain a switch: the flag alone turns it on; env WORKER_DRAIN \(true or false\); default false/,
    );
    assert.match(
      help,
      /--lease-ttl <value> a duration from 0\.5 to 86400 s \(5, 90s, 5m, 1h\); env WORKER_LEASE_TTL/,
    );
  });

  test('durations are seconds, or a number with a unit: 500ms, 90s, 5m, 1h', () => {
    const config = loadConfig(
      {},
      {
        CL_SERVER_DIR: workspace.dir,
        WORKER_POLL_INTERVAL: '500ms',
        WORKER_LEASE_TTL: '5m',
        WORKER_SHUTDOWN_GRACE: '90s',
        WORKER_ORPHAN_AGE: '1h',
        WORKER_KILL_GRACE: '2.5',
        WORKER_TIMEOUT: '10m,noop=45s',
      },
      TEST_MODULES,
    );
    assert.equal(config.daemon.pollInterval, 0.5);
    assert.equal(config.daemon.leaseTtl, 300);
    assert.equal(config.daemon.shutdownGrace, 90);
    assert.equal(config.daemon.orphanAge, 3600);
    assert.equal(config.runner.killGrace, 2.5);
    assert.deepEqual(config.daemon.timeout, { all: 600, byTask: { noop: 45 } });
    assert.throws(() => loadConfig({ leaseTtl: 'soon' }, { CL_SERVER_DIR: workspace.dir }, TEST_MODULES), {
      message: '--lease-ttl="soon" is invalid: expected a duration from 0.5 to 86400 s (5, 90s, 5m, 1h)',
    });
  });

  test('a duration past what a timer can hold is refused, naming the bound (it would fire at once)', async () => {
    const cases: [string, string, RegExp][] = [
      ['WORKER_POLL_INTERVAL', '3000000', /expected a duration from 0\.001 to 3600/],
      ['WORKER_SHUTDOWN_GRACE', '3000000', /expected a duration from 0 to 86400/],
      ['WORKER_LEASE_TTL', '7000000', /expected a duration from 0\.5 to 86400/],
      ['WORKER_KILL_GRACE', '1e9', /expected a duration from 0 to 3600/],
      ['MQTT_HEARTBEAT_INTERVAL', '3000000', /expected a duration from 1 to 86400/],
      ['WORKER_RETRY_BACKOFF_MAX', 'Infinity', /expected a duration from 0 to 86400/],
      [
        'WORKER_TIMEOUT',
        'noop=3000000',
        /'noop=3000000' is not N or task=N with N a duration > 0 and <= 2147483 s/,
      ],
    ];
    for (const [variable, value, expected] of cases) {
      const result = await runCli(['run'], { CL_SERVER_DIR: workspace.dir, [variable]: value });
      assert.equal(result.code, 2, `${variable}=${value}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(`${variable}="${value}" is invalid`));
      assert.match(result.stderr, expected);
    }
  });

  test('a flag overrides its environment variable and is named when bad', async () => {
    const result = await runCli(['run', '--concurrency', '0'], {
      CL_SERVER_DIR: workspace.dir,
      WORKER_CONCURRENCY: '4',
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--concurrency="0" is invalid: expected an integer from 1 to 256/);
  });

  test('an unknown task type is a startup error that lists the available modules', async () => {
    const result = await runCli(['run', '--tasks', 'noop,nope', '--modules-dir', TEST_MODULES], {
      CL_SERVER_DIR: workspace.dir,
    });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /unknown task type\(s\): nope; available: append, bad_message, crash, fail, fail_until, gate, hang, noop, progress, sleep, slow_warmup/,
    );
  });

  test('without CL_SERVER_DIR or DATABASE_URL the worker says what to set', async () => {
    const env: Record<string, string> = { CL_SERVER_DIR: '', DATABASE_URL: '' };
    const result = await runCli(['run'], env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /set CL_SERVER_DIR/);
  });

  test('--help documents every flag with its environment variable', async () => {
    const result = await runCli(['run', '--help']);
    assert.equal(result.code, 0);
    for (const name of [
      'WORKER_ID',
      'WORKER_SUPPORTED_TASKS',
      'WORKER_POLL_INTERVAL',
      'WORKER_CONCURRENCY',
      'LOG_LEVEL',
      'MQTT_BROKER',
      'MQTT_PORT',
      'MQTT_TOPIC',
      'MQTT_HEARTBEAT_INTERVAL',
      'CAPABILITY_TOPIC_PREFIX',
      'BROADCAST_TYPE',
      'DATABASE_URL',
      'CL_SERVER_DIR',
    ]) {
      assert.match(result.stdout, new RegExp(`env\\s+${name}\\b`), name);
    }
    for (const flag of [
      '--drain',
      '--runner-reuse',
      '--shutdown-grace',
      '--timeout',
      '--lease-ttl',
      '--storage',
      '--modules-dir',
    ]) {
      assert.ok(result.stdout.includes(flag), flag);
    }
  });

  test('modules prints each module with its parameters as JSON Schema', async () => {
    const result = await runCli(['modules']);
    assert.equal(result.code, 0, result.stderr);
    const modules = JSON.parse(result.stdout) as {
      name: string;
      parameters: { properties: Record<string, unknown> };
    }[];
    const resize = modules.find((module) => module.name === 'image_resize');
    const keys = Object.keys(resize?.parameters.properties ?? {});
    for (const original of ['width', 'height', 'preserve_aspect'])
      assert.ok(keys.includes(original), original);
    assert.match(JSON.stringify(resize?.parameters.properties.fit), /cover.*contain.*fill.*inside.*outside/);
    assert.ok(modules.some((module) => module.name === 'image_conversion'));
  });

  test('submit inserts a job as the API does; the worker runs it; jobs show prints it', async () => {
    const input = path.join(workspace.dir, 'note.txt');
    fs.writeFileSync(input, 'hello');
    const env = { CL_SERVER_DIR: workspace.dir, WORKER_MODULES_DIR: TEST_MODULES };
    const submitted = await runCli(
      ['submit', 'noop', input, '--params', '{"a":1}', '--priority', '7', '--max-retries', '1'],
      env,
    );
    assert.equal(submitted.code, 0, submitted.stderr);
    const jobId = submitted.stdout.trim();
    assert.match(jobId, /^[0-9a-f-]{36}$/);

    const queued = JSON.parse((await runCli(['jobs', 'show', jobId], env)).stdout);
    assert.equal(queued.status, 'queued');
    assert.equal(queued.priority, 7);
    assert.equal(queued.max_retries, 1);
    assert.equal(queued.retry_count, 0);
    assert.equal(queued.input_file_path, `jobs/${jobId}/input/note.txt`);
    assert.deepEqual(queued.input_files[0].metadata, { a: 1 });
    assert.equal(queued.input_files[0].size, 5);
    assert.ok(queued.created_at > 1_600_000_000_000, 'milliseconds');
    assert.equal(fs.readFileSync(path.join(workspace.storageRoot, queued.input_file_path), 'utf8'), 'hello');

    const worker = startWorker(workspace.dir, ['--tasks', 'noop', '--drain']);
    assert.equal((await worker.exited).code, 0);
    const done = JSON.parse((await runCli(['jobs', 'show', jobId], env)).stdout);
    assert.equal(done.status, 'completed');
    assert.equal(done.progress, 100);
    assert.deepEqual(done.task_output, { success: true });
  });

  test('submit refuses parameters that are not a JSON object', async () => {
    const input = path.join(workspace.dir, 'note.txt');
    fs.writeFileSync(input, 'hello');
    const result = await runCli(['submit', 'noop', input, '--params', '[1]'], {
      CL_SERVER_DIR: workspace.dir,
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--params must be a JSON object/);
  });
});

describe('settings compute modules declare', () => {
  test("the README's table of module settings is what `modules --markdown` prints", async () => {
    const printed = await runCli(['modules', '--markdown', '--modules-dir', BUILT_IN_MODULES]);
    assert.equal(printed.code, 0, printed.stderr);
    const readme = fs.readFileSync(repoFile('README.md'), 'utf8');
    const table = /<!-- module settings -->\n([\s\S]*?)\n<!-- end of module settings -->/.exec(readme)?.[1];
    assert.equal(
      table,
      printed.stdout.trim(),
      'README.md is out of step: paste in `npx media-worker modules --markdown`',
    );
  });

  test('run takes a module setting as a flag, lists it in --help, and refuses a bad value naming it', async () => {
    const help = await runCli(['run', '--help']);
    assert.match(
      help.stdout,
      /--gpu-device <value>\s+a path to the DRM render node.*env GPU_DEVICE.*for\s+ffmpeg_render/s,
    );
    const refused = await runCli(
      ['run', '--modules-dir', BUILT_IN_MODULES, '--tasks', 'ffmpeg_render', '--gpu-device', '  '],
      {
        CL_SERVER_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-settings-')),
      },
    );
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--gpu-device=" {2}" is invalid: expected a path to the DRM render node/);
  });
});

describe('the settings table', () => {
  test('flags and variables are each used once, and the switches are exactly the boolean settings', () => {
    const all = Object.values(SETTINGS).flatMap((group) => Object.values(group) as Setting[]);
    const flags = all.map((definition) => definition.flag);
    const variables = all.flatMap((definition) => (definition.env ? [definition.env] : []));
    assert.equal(new Set(flags).size, flags.length);
    assert.equal(new Set(variables).size, variables.length);
    for (const definition of all) {
      const parsed = definition.schema.safeParse('true');
      const isBoolean = parsed.success && parsed.data === true;
      assert.equal(definition.isSwitch === true, isBoolean, definition.flag);
    }
  });

  test('a nested config: each concern its own group, derived paths resolved', () => {
    const config = loadConfig(
      { mqttBroker: 'mqtts://broker.example:8883', port: '9090', drain: true },
      { CL_SERVER_DIR: '/data', MQTT_TOPIC: 'events/x' },
      TEST_MODULES,
    );
    assert.deepEqual(config.store, {
      databaseUrl: '/data/media_store.db',
      storageRoot: '/data/compute',
      busyTimeout: 15,
    });
    assert.equal(config.broker.address, 'mqtts://broker.example:8883');
    assert.equal(config.broker.eventTopic, 'events/x');
    assert.equal(config.dashboard.port, 9090);
    assert.equal(config.daemon.drain, true);
    assert.equal(config.daemon.modulesDir, TEST_MODULES);
    assert.ok(Object.isFrozen(config.broker));
  });
});

describe("the README's table of the worker's settings", () => {
  test('names every variable once, with its flag and the default the settings table shows', () => {
    const rows = fs
      .readFileSync(repoFile('README.md'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map((line) => line.split('|').map((cell) => cell.trim()));
    const all = Object.values(SETTINGS).flatMap((group) => Object.values(group) as Setting[]);
    for (const definition of all) {
      if (!definition.env) continue;
      const matching = rows.filter((cells) => cells[1] === `\`${definition.env}\``);
      assert.equal(matching.length, 1, `one README row for ${definition.env}`);
      const [, , flag, shown] = matching[0] as string[];
      assert.equal(flag, `\`${definition.flag}\``, definition.env);
      assert.equal(
        shown?.replaceAll('`', ''),
        shownDefault(definition) ?? '—',
        `${definition.env}'s default`,
      );
    }
  });
});
