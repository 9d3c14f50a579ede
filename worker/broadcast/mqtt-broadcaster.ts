/**
 * Publishes the worker's capabilities (retained, QoS 1, Last Will in the CONNECT) and live job
 * events. The broker is not the database: nothing here blocks or fails job processing. Progress
 * is QoS 0, throttled per job and dropped while disconnected; terminal events are QoS 1 and kept
 * in a bounded buffer while disconnected (oldest dropped first, and counted).
 */
import type { Logger } from 'pino';
import type { Broadcaster, JobEvent } from './broadcaster.js';
import { MqttConnection } from './mqtt-connection.js';
import type { BrokerAddress } from './mqtt-options.js';
import { capabilityPayload, jobEventPayload, type WorkerIdentity, type WorkerState } from './payloads.js';
import { ProgressThrottle } from './progress-throttle.js';

const TERMINAL_BUFFER_LIMIT = 1000;
const STOP_TIMEOUT_MS = 3000;
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
  private readonly pendingTerminal: { topic: string; payload: string }[] = [];
  private droppedTerminal = 0;
  private idleCount: number;
  private state: WorkerState = 'ready';
  private heartbeat: NodeJS.Timeout | undefined;
  private idleAnnouncement: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

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

  announceDraining(): void {
    this.state = 'draining';
    this.announce();
  }

  publishJobEvent(event: JobEvent): void {
    if (event.type === 'processing') this.throttle.progress(event);
    else this.throttle.finish(event);
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    clearTimeout(this.idleAnnouncement);
    this.throttle.close();
    await this.connection.stop(async () => {
      await this.flushTerminal();
      await this.connection.publish(this.capabilityTopic, '', { qos: 1, retain: true });
    }, STOP_TIMEOUT_MS);
  }

  private onConnect(): void {
    this.announce();
    if (this.droppedTerminal > 0) {
      this.options.log.warn(
        { dropped: this.droppedTerminal },
        'job events dropped while the broker was unreachable',
      );
      this.droppedTerminal = 0;
    }
    void this.flushTerminal();
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
    if (this.options.eventsPerJob) topics.push(`${this.options.eventTopic}/${event.jobId}`);
    for (const topic of topics) {
      if (event.type === 'processing') {
        if (this.connection.connected) this.connection.publish(topic, payload, { qos: 0 }).catch(() => {});
        continue;
      }
      this.pendingTerminal.push({ topic, payload });
      if (this.pendingTerminal.length > TERMINAL_BUFFER_LIMIT) {
        this.pendingTerminal.shift();
        this.droppedTerminal += 1;
      }
    }
    if (event.type !== 'processing') void this.flushTerminal();
  }

  /** One flusher at a time, so a buffered event is never published twice. */
  private flushTerminal(): Promise<void> {
    this.flushing ??= this.drainTerminal().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async drainTerminal(): Promise<void> {
    while (this.connection.connected && this.pendingTerminal.length > 0) {
      const next = this.pendingTerminal[0] as { topic: string; payload: string };
      try {
        await this.connection.publish(next.topic, next.payload, { qos: 1 });
        if (this.pendingTerminal[0] === next) this.pendingTerminal.shift();
      } catch {
        return; // disconnected: kept for the next connect
      }
    }
  }
}
