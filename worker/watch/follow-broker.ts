/**
 * Follows the broker for `watch` and the dashboard: the retained worker announcements and the job
 * events, folded into a WatchState as they arrive, with the connection's own state beside them. A
 * broker that cannot be reached is retried every second and reported with the reason.
 */
import mqtt from 'mqtt';
import { brokerAddress } from '../broadcast/mqtt-options.js';
import type { Config } from '../config/config.js';
import { topicMatches } from '../mqtt-tools/topic-filter.js';
import { applyCapabilityMessage, applyJobEvent, emptyWatchState, type WatchState } from './watch-state.js';

export interface BrokerStatus {
  connected: boolean;
  error?: string;
}

export interface BrokerMessage {
  topic: string;
  payload: string;
  retained: boolean;
  receivedAt: number;
}

export interface FollowHandlers {
  /** After the state took in a message. */
  onMessage?(message: BrokerMessage): void;
  onBrokerChange?(status: BrokerStatus): void;
}

export type BrokerSettings = Config['broker'];

export class BrokerFollower {
  readonly state: WatchState = emptyWatchState();
  /** scheme://host:port, without credentials. */
  readonly url: string;
  private status: BrokerStatus = { connected: false };
  private readonly client: mqtt.MqttClient;

  constructor(config: BrokerSettings, handlers: FollowHandlers = {}) {
    const address = brokerAddress(config);
    this.url = address.url;
    const capabilityFilter = `${config.capabilityTopicPrefix}/+`;
    this.client = mqtt.connect(address.url, {
      ...address.options,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      resubscribe: true,
    });
    const setStatus = (next: BrokerStatus) => {
      if (next.connected === this.status.connected && next.error === this.status.error) return;
      this.status = next;
      handlers.onBrokerChange?.(next);
    };
    this.client.on('connect', () => {
      setStatus({ connected: true });
      void this.client.subscribeAsync([capabilityFilter, config.eventTopic], { qos: 0 }).catch(() => {
        // the connection dropped again: 'close' reports it and the next connect subscribes
      });
    });
    this.client.on('error', (error) =>
      setStatus({ connected: false, error: error.message || String(error) }),
    );
    this.client.on('close', () => {
      if (this.status.connected) setStatus({ connected: false, error: 'connection closed' });
    });
    this.client.on('message', (topic, buffer, packet) => {
      const payload = buffer.toString('utf8');
      const receivedAt = Date.now();
      if (topicMatches(capabilityFilter, topic)) {
        applyCapabilityMessage(
          this.state,
          topic.slice(config.capabilityTopicPrefix.length + 1),
          payload,
          receivedAt,
        );
      } else {
        applyJobEvent(this.state, payload, receivedAt);
      }
      handlers.onMessage?.({ topic, payload, retained: packet.retain, receivedAt });
    });
  }

  get broker(): BrokerStatus {
    return this.status;
  }

  /** The broker as one line: its URL, and why it is not connected when it is not. */
  describe(): string {
    return this.status.connected
      ? this.url
      : `${this.url} (${this.status.error ? `cannot connect: ${this.status.error}; retrying` : 'connecting…'})`;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
