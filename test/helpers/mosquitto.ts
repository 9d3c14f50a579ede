/** A private Mosquitto per test, on a free port (never the shared one on 1883). */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';

/** How long a test waits for something that should happen before it calls it a hang (not a speed limit). */
export const HANG_GUARD_MS = 60_000;

export interface Broker {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Starts it again on the same port (without `persistence`, retained messages and sessions are gone). */
  restart(): Promise<void>;
  /** Kills it (SIGKILL) as a crash would: no Wills sent; with `persistence`, the last autosave survives. */
  crash(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open and nothing is answered, as on a hung broker. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Mosquitto's own log lines so far (connections, refusals), across restarts. */
  logLines(): string[];
}

/**
 * Ports are drawn below the kernel's ephemeral range (32768+), so a port another test just freed
 * by stopping its broker is not handed out again by `listen(0)`; a collision is detected below.
 */
const randomPort = () => 20_000 + Math.floor(Math.random() * 10_000);

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export interface BrokerOptions {
  /** Require these user names and passwords (no anonymous access). */
  users?: Record<string, string>;
  /** Serve TLS only, with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
  /**
   * Keep retained messages, sessions and their queued messages across `restart()` (saved on a
   * graceful stop, and every second: see `logLines()` for "Saving"), with no limit on a session's
   * queue: a subscriber with a persistent session misses nothing published while it was away.
   */
  persistence?: boolean;
}

/** A mosquitto.conf for the options, in a directory Mosquitto can read (and write, for persistence). */
function brokerConfig(port: number, options: BrokerOptions): string {
  // Mosquitto started as root drops to its own user before reading these files: keep them readable.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosquitto-test-'));
  fs.chmodSync(dir, 0o755);
  const lines = [`listener ${port} 127.0.0.1`, 'log_dest stderr'];
  if (options.users) {
    const passwordFile = path.join(dir, 'passwd');
    fs.writeFileSync(passwordFile, '');
    for (const [user, password] of Object.entries(options.users)) {
      execFileSync('mosquitto_passwd', ['-b', passwordFile, user, password]);
    }
    fs.chmodSync(passwordFile, 0o644);
    lines.push('allow_anonymous false', `password_file ${passwordFile}`);
  } else {
    lines.push('allow_anonymous true');
  }
  if (options.tls) {
    const certFile = path.join(dir, 'broker.crt');
    const keyFile = path.join(dir, 'broker.key');
    fs.copyFileSync(options.tls.certFile, certFile);
    fs.copyFileSync(options.tls.keyFile, keyFile);
    fs.chmodSync(certFile, 0o644);
    fs.chmodSync(keyFile, 0o644);
    lines.push(`certfile ${certFile}`, `keyfile ${keyFile}`);
  }
  if (options.persistence) {
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir);
    fs.chmodSync(dataDir, 0o777);
    lines.push(
      'persistence true',
      `persistence_location ${dataDir}/`,
      'autosave_interval 1',
      'max_queued_messages 0',
    );
  }
  const file = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  let port = randomPort();
  let child: ChildProcess | undefined;
  const log: string[] = [];
  /** Starts mosquitto on `port`; false when it could not bind (the port is someone else's). */
  const launch = async (config: string): Promise<boolean> => {
    const started = spawn('mosquitto', ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    let partial = '';
    started.stderr?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      log.push(...lines);
    });
    const died = new Promise<false>((resolve) => started.once('exit', () => resolve(false)));
    const listening = waitForPort(port).then(
      () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 50)),
    );
    return (
      (await Promise.race([listening, died])) && started.exitCode === null && started.signalCode === null
    );
  };
  const kill = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    if (!options.persistence) return kill();
    // SIGTERM lets a persistent broker save its database (a paused one is thawed first to get it).
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGCONT');
    running.kill('SIGTERM');
    // Not an assertion: a broker that does not save and exit on SIGTERM is killed rather than left
    // to hold the test (it then loses what it had not saved, which no test relies on).
    const killer = setTimeout(() => running.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  let config = brokerConfig(port, options);
  for (let attempt = 0; !(await launch(config)); attempt += 1) {
    await stop();
    if (attempt >= 5) throw new Error('could not start mosquitto on a free port');
    port = randomPort();
    config = brokerConfig(port, options);
  }
  return {
    get port() {
      return port;
    },
    get url() {
      return `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
    },
    stop,
    crash: kill,
    async restart() {
      await stop();
      if (!(await launch(config)))
        throw new Error(`mosquitto could not listen on ${port} again (taken by another process)`);
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    logLines: () => [...log],
  };
}

export interface Subscriber {
  client: MqttClient;
  messages: { topic: string; payload: string; retain: boolean }[];
  waitFor(
    predicate: (message: { topic: string; payload: string; retain: boolean }) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<{ topic: string; payload: string; retain: boolean }>;
  close(): Promise<void>;
}

export interface SubscribeOptions {
  /**
   * Subscribe at QoS 1 in a persistent session under this client id: what is published while the
   * subscriber is disconnected (a broker restart with `persistence`) is delivered when it is back.
   */
  session?: string;
}

/** A plain subscriber, as the API service or a dashboard would be. */
export async function subscribe(
  url: string,
  topics: string[],
  { session }: SubscribeOptions = {},
): Promise<Subscriber> {
  const qos = session ? 1 : 0;
  const client = await Promise.race([
    mqtt.connectAsync(url, {
      reconnectPeriod: 200,
      resubscribe: true,
      ...(session ? { clientId: session, clean: false } : {}),
    }),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`subscriber could not connect to ${url}`)), 10_000).unref(),
    ),
  ]);
  const messages: Subscriber['messages'] = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString('utf8'), retain: packet.retain });
  });
  // A broker that forgot us (restarted without persistence) needs the subscription again.
  client.on('connect', (connack) => {
    if (!connack.sessionPresent) void client.subscribeAsync(topics, { qos });
  });
  await client.subscribeAsync(topics, { qos });
  return {
    client,
    messages,
    async waitFor(predicate, what, timeoutMs = HANG_GUARD_MS) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(
            `no MQTT message for ${what} within ${timeoutMs} ms; got ${JSON.stringify(messages.slice(-5))}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      await Promise.race([
        client.endAsync(true),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ]);
    },
  };
}

/** A broker of the enclosing suite's own, started before its tests and stopped after them. */
export function useBroker(use: (broker: Broker) => void): void {
  let broker: Broker | undefined;
  before(async () => {
    broker = await startBroker();
    use(broker);
  });
  after(async () => {
    await broker?.stop();
  });
}
