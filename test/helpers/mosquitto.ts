/** A private Mosquitto per test, on a free port (never the shared one on 1883). */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';

export interface Broker {
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Starts it again on the same port (retained messages are gone: no persistence). */
  restart(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

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

export async function startBroker(port?: number): Promise<Broker> {
  const chosen = port ?? (await freePort());
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn('mosquitto', ['-p', String(chosen)], { stdio: 'ignore' });
    await waitForPort(chosen);
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    port: chosen,
    url: `mqtt://127.0.0.1:${chosen}`,
    stop,
    async restart() {
      await stop();
      await launch();
    },
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

/** A plain subscriber, as the API service or a dashboard would be. */
export async function subscribe(url: string, topics: string[]): Promise<Subscriber> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, resubscribe: true });
  const messages: Subscriber['messages'] = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString('utf8'), retain: packet.retain });
  });
  client.on('connect', () => void client.subscribeAsync(topics, { qos: 0 }));
  await client.subscribeAsync(topics, { qos: 0 });
  return {
    client,
    messages,
    async waitFor(predicate, what, timeoutMs = 15_000) {
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
      await client.endAsync(true);
    },
  };
}
