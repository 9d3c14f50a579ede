/**
 * Publishes the worker's capabilities (retained, QoS 1, Last Will in the CONNECT) and live job
 * events. The broker is not the database: nothing here blocks or fails job processing. Progress
 * is QoS 0, throttled per job and dropped while disconnected; terminal events are QoS 1 and kept
 * until the broker acknowledges them (TerminalOutbox), so they survive broker outages; only a full
 * buffer or a stop with the broker unreachable loses them, and the loss is logged with its count.
 */
import type { Logger } from 'pino';
import type { Broadcaster, JobEvent } from './broadcaster.js';
import { MqttConnection } from './mqtt-connection.js';
import type { BrokerAddress } from './mqtt-options.js';
import { capabilityPayload, jobEventPayload, type WorkerIdentity, type WorkerState } from './payloads.js';
import { ProgressThrottle } from './progress-throttle.js';
import { settleBy } from './settle-by.js';
import { TerminalOutbox } from './terminal-outbox.js';

/** Terminal events kept while the broker is away: about ten seconds of a fast worker. */
const TERMINAL_BUFFER_LIMIT = 10_000;
/** Terminal events awaiting their PUBACK at once (Mosquitto's default receive maximum is 20). */
const TERMINAL_WINDOW = 16;
/** stop() takes at most about this long, whatever the broker does. */
const STOP_TIMEOUT_MS = 3000;
/** Of STOP_TIMEOUT_MS, kept for clearing the announcement after the terminal events. */
const CLEAR_RESERVE_MS = 1000;
const WILL_DELAY_S = 2;
/** Slot changes are announced at most this often (always with the latest value), not per job. */
const IDLE_ANNOUNCE_COALESCE_MS = 100;

export interface MqttBroadcasterOptions {
  address: BrokerAddress;
  protocolVersion: 4 | 5;
  identity: WorkerIdentity;
  capabilityTopicPrefix: string;
  eventTopic: string;
  eventsPerJob: boolean;
  log: Logger;
  onFatal(error: Error): void;
}

export class MqttBroadcaster implements Broadcaster {
  private readonly connection: MqttConnection;
  private readonly capabilityTopic: string;
  private readonly throttle: ProgressThrottle;
  private readonly outbox: TerminalOutbox;
  private idleCount: number;
  private state: WorkerState = 'ready';
  private stopping = false;
  private refusalLogged = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private idleAnnouncement: NodeJS.Timeout | undefined;

  constructor(private readonly options: MqttBroadcasterOptions) {
    this.capabilityTopic = `${options.capabilityTopicPrefix}/${options.identity.workerId}`;
    this.idleCount = options.identity.concurrency;
    this.connection = new MqttConnection({
      address: options.address,
      clientId: `media-worker-${options.identity.workerId}`,
      protocolVersion: options.protocolVersion,
      willTopic: this.capabilityTopic,
      willDelayS: WILL_DELAY_S,
      log: options.log,
      onConnect: () => this.onConnect(),
      onFatal: options.onFatal,
    });
    this.outbox = new TerminalOutbox(this.connection, {
      limit: TERMINAL_BUFFER_LIMIT,
      window: TERMINAL_WINDOW,
      onRefused: (error) => this.onRefused(error),
    });
    this.throttle = new ProgressThrottle((event) => this.send(event));
  }

  async start(): Promise<void> {
    this.connection.start();
    this.heartbeat = setInterval(() => this.announce(), this.options.identity.heartbeatIntervalS * 1000);
  }

  publishCapabilities(idleSlots: number): void {
    if (idleSlots === this.idleCount) return;
    this.idleCount = idleSlots;
    this.idleAnnouncement ??= setTimeout(() => {
      this.idleAnnouncement = undefined;
      this.announce();
    }, IDLE_ANNOUNCE_COALESCE_MS);
  }

  brokerConnected(): boolean {
    return this.connection.connected;
  }

  announceState(state: WorkerState): void {
    this.state = state;
    this.announce();
  }

  publishJobEvent(event: JobEvent): void {
    if (event.type === 'processing') this.throttle.progress(event);
    else this.throttle.finish(event);
  }

  /**
   * Done within STOP_TIMEOUT_MS plus a short DISCONNECT, whatever the broker does (MqttConnection.stop):
   * sends the terminal events still unacknowledged, clears the retained announcement, disconnects,
   * and logs in one line how many terminal events never reached the broker.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.idleAnnouncement);
    this.throttle.close();
    await this.connection.stop(async (deadline) => {
      await settleBy(this.outbox.whenEmpty(), deadline - CLEAR_RESERVE_MS);
      const cleared = this.connection
        .publish(this.capabilityTopic, '', { qos: 1, retain: true })
        .then(() => true);
      return (await settleBy(cleared, deadline)) ?? false;
    }, STOP_TIMEOUT_MS);
    const unacknowledged = this.outbox.size;
    const overflowed = this.outbox.takeOverflowed();
    const refused = this.outbox.takeRefused();
    const dropped = unacknowledged + overflowed + refused;
    if (dropped > 0) {
      this.options.log.warn(
        { dropped, unacknowledged, overflowed, refused },
        'job events lost: not acknowledged by the broker before stop',
      );
    }
  }

  private onConnect(): void {
    if (!this.stopping) this.announce();
    const overflowed = this.outbox.takeOverflowed();
    if (overflowed > 0) {
      this.options.log.warn(
        { dropped: overflowed },
        'job events dropped while the broker was unreachable (buffer full)',
      );
    }
    this.outbox.pump();
  }

  private onRefused(error: Error): void {
    if (this.refusalLogged) return;
    this.refusalLogged = true;
    this.options.log.warn(
      { error: error.message },
      'the broker refused a job event; refused events are dropped and counted at stop',
    );
  }

  private announce(): void {
    if (!this.connection.connected) return;
    const payload = JSON.stringify(capabilityPayload(this.options.identity, this.idleCount, this.state));
    const expiry = this.options.identity.heartbeatIntervalS * 3;
    const properties =
      this.connection.version === 5 ? { properties: { messageExpiryInterval: Math.ceil(expiry) } } : {};
    this.connection
      .publish(this.capabilityTopic, payload, { qos: 1, retain: true, ...properties })
      .catch(() => {
        // Lost with the connection; the next connect announces again.
      });
  }

  private send(event: JobEvent): void {
    const payload = JSON.stringify(jobEventPayload(event, this.options.identity.workerId));
    const topics = [this.options.eventTopic];
    if (this.options.eventsPerJob && isTopicLevel(event.jobId))
      topics.push(`${this.options.eventTopic}/${event.jobId}`);
    for (const topic of topics) {
      if (event.type !== 'processing') this.outbox.add(topic, payload);
      else if (this.connection.connected) this.connection.publish(topic, payload, { qos: 0 }).catch(() => {});
    }
  }
}

/**
 * Whether a job_id can be one level of a topic. A hostile one (`a/b`, `+`, `#`, megabytes long)
 * would address other topics or be refused; its events still go to the main topic.
 */
function isTopicLevel(jobId: string): boolean {
  return jobId !== '' && !/[/+#]/.test(jobId) && !jobId.includes('\0') && Buffer.byteLength(jobId) <= 1024;
}
