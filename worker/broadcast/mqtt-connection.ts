/**
 * One MQTT connection with a Last Will, kept up until stop(): reconnects with exponential backoff,
 * falls back from MQTT 5 to 3.1.1 when the broker refuses 5, logs each change of state once (not a
 * line per retry), and reports a duplicate worker id (another live client with our clientId) as
 * fatal.
 *
 * Each attempt is a fresh mqtt.js client, used for one network connection and then thrown away.
 * mqtt.js's `reconnect()` swaps in a new outgoing store, so a QoS 1 publish that was awaiting its
 * PUBACK when the connection dropped is never resent and its callback never fires. Here every
 * publish settles at the latest when its connection closes (ConnectionClosedError), and what must
 * be resent is the caller's business (TerminalOutbox).
 */
import mqtt, {
  type IClientOptions,
  type IClientPublishOptions,
  type IDisconnectPacket,
  type MqttClient,
} from 'mqtt';
import type { Logger } from 'pino';
import type { BrokerAddress } from './mqtt-options.js';
import { settleBy } from './settle-by.js';

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;
/** A connection the broker closes this soon after CONNACK, three times running, is being fought over. */
const FLAP_WINDOW_MS = 2_000;
const FLAPS_FOR_DUPLICATE = 3;
const SESSION_TAKEN_OVER = 0x8e;
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);
/** CONNACK codes for bad credentials or no authorization (3.1.1: 4, 5; MQTT 5: 0x86, 0x87). */
const REFUSED_CREDENTIALS = new Set([4, 5, 0x86, 0x87]);
/** How long a clean DISCONNECT may take at stop before the socket is dropped. */
const DISCONNECT_WAIT_MS = 500;

export class DuplicateWorkerIdError extends Error {
  override readonly name = 'DuplicateWorkerIdError';
}

/** The connection a publish was sent on closed before the broker acknowledged it. */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
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

/** One network connection: its client, whether CONNACK came, and the publishes awaiting an answer. */
interface Link {
  client: MqttClient;
  open: boolean;
  retired: boolean;
  unsettled: Set<(error: Error) => void>;
  /** Resolves true on CONNACK, false when the attempt or the connection ends. */
  ready: Promise<boolean>;
  settleReady(up: boolean): void;
  /** Removes our listeners (mqtt.js's own stay: its 'close' handler clears its timers). */
  detach(): void;
}

export class MqttConnection {
  private link: Link | undefined;
  private protocolVersion: 4 | 5;
  private reconnectDelay = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private connectedAt = 0;
  private flaps = 0;
  private state: 'connecting' | 'connected' | 'down' = 'connecting';
  /** No more reconnects: stop() was called, or a duplicate worker id was detected. */
  private stopped = false;
  /** The problem last logged; the same one is not logged again until a connect succeeds. */
  private lastProblem: string | undefined;
  private errorThisAttempt = false;

  constructor(private readonly options: MqttConnectionOptions) {
    this.protocolVersion = options.protocolVersion;
  }

  get connected(): boolean {
    return this.link?.open === true;
  }

  get version(): 4 | 5 {
    return this.protocolVersion;
  }

  start(): void {
    this.connect();
  }

  /**
   * Resolves when the broker acknowledges (QoS 1) or the packet is written (QoS 0); rejects with
   * ConnectionClosedError when not connected or when the connection closes first, or with the
   * broker's refusal. Never stays pending beyond the life of its connection.
   */
  publish(topic: string, payload: string, options: IClientPublishOptions): Promise<void> {
    const link = this.link;
    if (!link?.open) return Promise.reject(new ConnectionClosedError('not connected'));
    return new Promise((resolve, reject) => {
      link.unsettled.add(reject);
      link.client.publish(topic, payload, options, (error) => {
        link.unsettled.delete(reject);
        if (!error) resolve();
        else reject(link.open ? error : new ConnectionClosedError(error.message));
      });
    });
  }

  /**
   * Stops for good within about `timeoutMs`, whatever the broker does. While no connection is up,
   * makes one last attempt (the broker may be back before the backoff timer fires). If connected,
   * runs `goodbye` (bounded by the same deadline); when it confirms (returns true) the connection
   * ends with a DISCONNECT, so the broker discards the Will; otherwise the socket is dropped and the
   * broker publishes the Will.
   */
  async stop(goodbye: (deadline: number) => Promise<boolean>, timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const deadline = Date.now() + timeoutMs;
    if (!this.link) this.connect();
    const link = this.link as Link;
    const up = (await settleBy(link.ready, deadline)) === true && link.open;
    const confirmed = up && (await settleBy(goodbye(deadline), deadline)) === true;
    if (confirmed && link.open) {
      link.open = false; // nothing more is sent on it: mqtt.js would refuse it while disconnecting
      await settleBy(
        new Promise<void>((resolve) => link.client.end(false, {}, () => resolve())),
        Date.now() + DISCONNECT_WAIT_MS,
      );
    }
    this.retire(link);
  }

  private connect(): void {
    let settleReady: (up: boolean) => void = () => {};
    const ready = new Promise<boolean>((resolve) => {
      settleReady = resolve;
    });
    const client = mqtt.connect(this.options.address.url, this.clientOptions());
    const onConnect = () => this.onConnect(link);
    const onClose = () => this.onClose(link);
    const onError = (error: Error) => this.onError(link, error as Error & { code?: number | string });
    const onDisconnect = (packet: IDisconnectPacket) => {
      if (link === this.link && packet.reasonCode === SESSION_TAKEN_OVER) this.fatal();
    };
    const detach = () => {
      client.off('connect', onConnect);
      client.off('close', onClose);
      client.off('error', onError);
      client.off('disconnect', onDisconnect);
    };
    const link: Link = {
      client,
      open: false,
      retired: false,
      unsettled: new Set(),
      ready,
      settleReady,
      detach,
    };
    this.link = link;
    client.on('connect', onConnect);
    client.on('close', onClose);
    client.on('error', onError);
    client.on('disconnect', onDisconnect);
  }

  /**
   * Ends a link for good: every publish still awaiting an answer is rejected, the socket is
   * destroyed (mqtt.js's `end(true)` does nothing once `end(false)` has begun, so the stream is
   * destroyed directly), and the client is never used again.
   */
  private retire(link: Link): void {
    if (this.link === link) this.link = undefined;
    if (link.retired) return;
    link.retired = true;
    link.open = false;
    link.settleReady(false);
    for (const reject of link.unsettled) reject(new ConnectionClosedError('connection closed'));
    link.unsettled.clear();
    link.detach();
    link.client.on('error', () => {}); // a discarded client may still report errors; they are not ours
    link.client.end(true);
    link.client.stream?.destroy();
  }

  private clientOptions(): IClientOptions {
    const { address, clientId, willTopic, willDelayS } = this.options;
    const v5 = this.protocolVersion === 5;
    return {
      ...address.options,
      clientId,
      protocolVersion: this.protocolVersion,
      clean: true,
      reconnectPeriod: 0, // one client per connection; reconnects are ours, with backoff
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

  private onConnect(link: Link): void {
    if (link !== this.link) return;
    link.open = true;
    link.settleReady(true);
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

  private onClose(link: Link): void {
    if (link !== this.link) return;
    const wasOpen = link.open;
    this.retire(link);
    if (this.stopped) return;
    if (wasOpen) {
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

  private onError(link: Link, error: Error & { code?: number | string }): void {
    if (link !== this.link || this.stopped) return;
    if (
      this.protocolVersion === 5 &&
      typeof error.code === 'number' &&
      UNSUPPORTED_PROTOCOL.has(error.code)
    ) {
      this.options.log.info('broker refused MQTT 5; falling back to 3.1.1');
      this.protocolVersion = 4;
      this.retire(link);
      this.connect();
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
      if (!this.stopped) this.connect();
    }, delay);
  }

  private fatal(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    if (this.link) this.retire(this.link);
    this.options.onFatal(
      new DuplicateWorkerIdError(
        `duplicate worker id: another live daemon connected to ${this.options.address.url} as client ` +
          `'${this.options.clientId}'; give each worker its own --worker-id`,
      ),
    );
  }
}
