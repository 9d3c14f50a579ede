/**
 * One MQTT connection with a Last Will, kept up forever: reconnects with exponential backoff, falls
 * back from MQTT 5 to 3.1.1 when the broker refuses 5, logs each change of state once (not a line
 * per retry), and reports a duplicate worker id (another live client with our clientId) as fatal.
 */
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { BrokerAddress } from './mqtt-options.js';

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;
/** A connection the broker closes this soon after CONNACK, three times running, is being fought over. */
const FLAP_WINDOW_MS = 2_000;
const FLAPS_FOR_DUPLICATE = 3;
const SESSION_TAKEN_OVER = 0x8e;
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);
/** CONNACK codes for bad credentials or no authorization (3.1.1: 4, 5; MQTT 5: 0x86, 0x87). */
const REFUSED_CREDENTIALS = new Set([4, 5, 0x86, 0x87]);

export class DuplicateWorkerIdError extends Error {
  override readonly name = 'DuplicateWorkerIdError';
}

export interface MqttConnectionOptions {
  address: BrokerAddress;
  clientId: string;
  protocolVersion: 4 | 5;
  willTopic: string;
  willDelayS: number;
  log: Logger;
  /** Called after every successful (re)connect: publish what must be retained again. */
  onConnect(): void;
  onFatal(error: Error): void;
}

export class MqttConnection {
  private client: MqttClient | undefined;
  private protocolVersion: 4 | 5;
  private reconnectDelay = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private connectedAt = 0;
  private flaps = 0;
  private state: 'connecting' | 'connected' | 'down' = 'connecting';
  private stopped = false;
  /** The problem last logged; the same one is not logged again until a connect succeeds. */
  private lastProblem: string | undefined;
  private errorThisAttempt = false;

  constructor(private readonly options: MqttConnectionOptions) {
    this.protocolVersion = options.protocolVersion;
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  get version(): 4 | 5 {
    return this.protocolVersion;
  }

  start(): void {
    this.client = mqtt.connect(this.options.address.url, this.clientOptions());
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.onClose());
    this.client.on('error', (error) => this.onError(error as Error & { code?: number }));
    this.client.on('disconnect', (packet) => {
      if (packet.reasonCode === SESSION_TAKEN_OVER) this.fatal();
    });
  }

  async publish(topic: string, payload: string, options: IClientPublishOptions): Promise<void> {
    if (!this.client?.connected) throw new Error('not connected');
    await this.client.publishAsync(topic, payload, options);
  }

  /** Runs `last` if connected (bounded by `timeoutMs`), then disconnects cleanly (no Will). */
  async stop(last: () => Promise<void>, timeoutMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      await Promise.race([
        last().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
    }
    await Promise.race([
      client.endAsync(!client.connected),
      new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]).catch(() => undefined);
    client.end(true);
  }

  private clientOptions(): IClientOptions {
    const { address, clientId, willTopic, willDelayS } = this.options;
    const v5 = this.protocolVersion === 5;
    return {
      ...address.options,
      clientId,
      protocolVersion: this.protocolVersion,
      clean: true,
      reconnectPeriod: 0, // reconnects are ours, with backoff
      connectTimeout: 10_000,
      keepalive: 30,
      queueQoSZero: false,
      will: {
        topic: willTopic,
        payload: Buffer.alloc(0),
        qos: 1,
        retain: true,
        ...(v5 ? { properties: { willDelayInterval: willDelayS } } : {}),
      },
      // The Will waits for min(will delay, session expiry): keep the session that long.
      ...(v5 ? { properties: { sessionExpiryInterval: willDelayS } } : {}),
    };
  }

  private onConnect(): void {
    this.connectedAt = Date.now();
    this.reconnectDelay = RECONNECT_MIN_MS;
    if (this.state !== 'connected') {
      this.options.log.info(
        { broker: this.options.address.url, mqtt_version: this.protocolVersion },
        'MQTT connected',
      );
    }
    this.state = 'connected';
    this.lastProblem = undefined;
    this.options.onConnect();
  }

  private onClose(): void {
    if (this.stopped) return;
    if (this.state === 'connected') {
      const lasted = Date.now() - this.connectedAt;
      this.flaps = lasted < FLAP_WINDOW_MS ? this.flaps + 1 : 0;
      if (this.flaps >= FLAPS_FOR_DUPLICATE) {
        this.fatal();
        return;
      }
      this.options.log.warn(
        { broker: this.options.address.url },
        'MQTT connection lost; reconnecting with backoff (jobs go on)',
      );
    } else if (!this.errorThisAttempt) {
      this.reportProblem('MQTT broker unreachable; retrying with backoff (jobs go on)');
    }
    this.errorThisAttempt = false;
    this.state = 'down';
    this.scheduleReconnect();
  }

  private onError(error: Error & { code?: number }): void {
    if (this.stopped) return;
    if (this.protocolVersion === 5 && error.code !== undefined && UNSUPPORTED_PROTOCOL.has(error.code)) {
      this.options.log.info('broker refused MQTT 5; falling back to 3.1.1');
      this.protocolVersion = 4;
      const old = this.client;
      old?.removeAllListeners();
      old?.end(true);
      this.start();
      return;
    }
    this.errorThisAttempt = true;
    if (typeof error.code === 'number' && REFUSED_CREDENTIALS.has(error.code)) {
      this.reportProblem('MQTT broker refused the credentials; retrying with backoff (jobs go on)', {
        code: error.code,
      });
    } else if (typeof error.code === 'number') {
      this.reportProblem('MQTT broker refused the connection; retrying with backoff (jobs go on)', {
        code: error.code,
        error: error.message,
      });
    } else {
      this.reportProblem('MQTT broker unreachable; retrying with backoff (jobs go on)', {
        error: error.message,
      });
    }
  }

  private reportProblem(problem: string, fields: Record<string, unknown> = {}): void {
    if (problem === this.lastProblem) return;
    this.lastProblem = problem;
    this.options.log.warn({ broker: this.options.address.url, ...fields }, problem);
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(RECONNECT_MAX_MS, this.reconnectDelay * 2);
    this.reconnectTimer = setTimeout(() => {
      if (!this.stopped) this.client?.reconnect();
    }, delay);
  }

  private fatal(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.client?.end(true);
    this.options.onFatal(
      new DuplicateWorkerIdError(
        `duplicate worker id: another live daemon connected to ${this.options.address.url} as client ` +
          `'${this.options.clientId}'; give each worker its own --worker-id`,
      ),
    );
  }
}
