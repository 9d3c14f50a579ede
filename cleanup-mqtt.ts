#!/usr/bin/env node
/**
 * Clears retained MQTT messages under a topic pattern by publishing empty retained payloads.
 *   npm run cleanup-mqtt -- 'inference/workers/#' [broker] [port] [--older-than 10m] [--dry-run]
 * Keeps the original cleanup_mqtt.py calling form. Exit codes: 0 done, 1 something is left, 2 usage.
 */
import readline from 'node:readline/promises';
import { Command, Option } from 'commander';
import mqtt from 'mqtt';
import { brokerAddress } from './worker/broadcast/mqtt-options.js';
import { runProgram } from './worker/cli/run-program.js';
import { UsageError } from './worker/cli/usage-error.js';
import { ConfigError, type Flags, loadConfig, parseDurationSeconds } from './worker/config/config.js';
import { StartupError } from './worker/errors.js';
import {
  clearRetained,
  collectRetained,
  payloadTimestamp,
  type RetainedMessage,
} from './worker/mqtt-tools/retained-messages.js';
import { isBroadPattern, topicMatches } from './worker/mqtt-tools/topic-filter.js';

interface CleanupOptions {
  url?: string;
  username?: string;
  password?: string;
  tls?: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  tlsInsecure?: boolean;
  dryRun?: boolean;
  olderThan?: string;
  exclude: string[];
  timeout: string;
  yes?: boolean;
}

/** A duration (`90s`, `10m`, `2h`, a plain number of seconds) in milliseconds; undefined when it is none. */
function millisecondsOf(text: string): number | undefined {
  const seconds = parseDurationSeconds(text);
  return seconds === undefined || seconds < 0 ? undefined : seconds * 1000;
}

const program = new Command('cleanup-mqtt')
  .description('Clear retained MQTT messages under a topic pattern (publishes empty retained payloads).')
  .argument('<pattern>', "topic pattern, e.g. 'inference/workers/#'")
  .argument('[broker]', 'broker host (default MQTT_BROKER or localhost)')
  .argument('[port]', 'broker port (default MQTT_PORT or 1883)')
  .option('--url <url>', 'broker URL, mqtt:// or mqtts:// (credentials allowed)')
  .option('--username <name>', 'user name (or MQTT_USERNAME)')
  .option('--password <secret>', 'password (or MQTT_PASSWORD, preferred)')
  .option('--tls', 'use TLS (or MQTT_USE_TLS)')
  .option('--ca-file <pem>', 'CA certificate (or MQTT_CA_FILE)')
  .option('--cert-file <pem>', 'client certificate (or MQTT_CERT_FILE)')
  .option('--key-file <pem>', 'client key (or MQTT_KEY_FILE)')
  .option('--tls-insecure', 'do not verify the broker certificate (or MQTT_TLS_INSECURE)')
  .option('--dry-run', 'list what would be cleared, clear nothing')
  .option(
    '--older-than <duration>',
    "only messages whose JSON payload 'timestamp' (ms) is older, e.g. 90s, 10m, 2h",
  )
  .addOption(
    new Option('--exclude <pattern>', 'keep topics matching this pattern (repeatable)')
      .argParser((value: string, previous: string[]) => [...previous, value])
      .default([]),
  )
  .option(
    '--timeout <duration>',
    'if the end-of-retained marker does not come back, stop collecting after this long without a new retained message',
    '10s',
  )
  .option('--yes', "don't ask before clearing a pattern that reaches every topic ('#', '+/…')");

program.action(
  async (pattern: string, broker: string | undefined, port: string | undefined, options: CleanupOptions) => {
    const idleMs = millisecondsOf(options.timeout);
    if (idleMs === undefined)
      throw new ConfigError(`--timeout '${options.timeout}' is not a duration (90s, 10m, 2h)`);
    const olderThanMs = options.olderThan === undefined ? undefined : millisecondsOf(options.olderThan);
    if (options.olderThan !== undefined && olderThanMs === undefined) {
      throw new ConfigError(`--older-than '${options.olderThan}' is not a duration (90s, 10m, 2h)`);
    }
    const flags: Flags = {
      mqttBroker: options.url ?? broker,
      mqttPort: port,
      mqttUsername: options.username,
      mqttPassword: options.password,
      mqttUseTls: options.tls,
      mqttCaFile: options.caFile,
      mqttCertFile: options.certFile,
      mqttKeyFile: options.keyFile,
      mqttTlsInsecure: options.tlsInsecure,
    };
    const config = loadConfig(flags, process.env, '.');
    const address = brokerAddress(config.broker);
    const client = await mqtt
      .connectAsync(address.url, {
        ...address.options,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        clean: true,
      })
      .catch((error: Error) => {
        throw new StartupError(`cannot connect to ${address.url}: ${error.message}`);
      });
    const collect = async () => {
      const { messages, complete } = await collectRetained(client, pattern, idleMs);
      if (!complete) {
        console.error(
          `the end-of-retained marker did not come back (may this client publish to 'cleanup-mqtt/#'?); ` +
            `collected what arrived until ${options.timeout} passed without a new retained message`,
        );
      }
      return messages;
    };
    try {
      const cutoff = olderThanMs === undefined ? undefined : Date.now() - olderThanMs;
      const selected = (messages: RetainedMessage[]) =>
        messages.filter(
          ({ topic, payload }) =>
            !options.exclude.some((excluded) => topicMatches(excluded, topic)) &&
            (cutoff === undefined || (payloadTimestamp(payload) ?? Number.POSITIVE_INFINITY) < cutoff),
        );

      const targets = selected(await collect())
        .map((message) => message.topic)
        .sort();
      if (options.dryRun) {
        for (const topic of targets) console.log(`would clear ${topic}`);
        console.log(
          `${targets.length} retained message(s) would be cleared under '${pattern}' on ${address.url}`,
        );
        return;
      }
      if (targets.length === 0) {
        console.log(`nothing to clear under '${pattern}' on ${address.url}`);
        return;
      }
      if (isBroadPattern(pattern) && !options.yes && !(await confirm(targets.length, pattern))) {
        throw new UsageError(`not clearing '${pattern}' (confirm at a terminal, or pass --yes)`);
      }
      await clearRetained(client, targets);
      for (const topic of targets) console.log(`cleared ${topic}`);

      const targetSet = new Set(targets);
      const left = selected(await collect()).filter((message) => targetSet.has(message.topic));
      console.log(
        `cleared ${targets.length - left.length} of ${targets.length} retained message(s) under '${pattern}'`,
      );
      if (left.length > 0) {
        for (const message of left) console.error(`still retained: ${message.topic}`);
        process.exitCode = 1;
      }
    } finally {
      await client.endAsync();
    }
  },
);

async function confirm(count: number, pattern: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const prompt = readline.createInterface({ input: process.stdin, output: process.stdout });
  const answer = await prompt.question(
    `'${pattern}' reaches every topic: clear ${count} retained message(s)? Type yes: `,
  );
  prompt.close();
  return answer.trim().toLowerCase() === 'yes';
}

await runProgram(program);
