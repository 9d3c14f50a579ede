/**
 * Terminal job events (completed, error, retrying), kept until the broker acknowledges them, so
 * they are delivered at least once across broker outages. An event sent on a connection that
 * closes before its PUBACK goes back in line, in its original order, and is sent again on the next
 * connection (the broker may then see it twice). Bounded: past `limit` events the oldest unsent one
 * is dropped and counted. A few events are in flight at once (`window`), not one per round trip.
 */
import type { IClientPublishOptions } from 'mqtt';
import { ConnectionClosedError } from './mqtt-connection.js';

export interface OutboxTransport {
  readonly connected: boolean;
  /**
   * Resolves when the broker acknowledges; rejects with ConnectionClosedError when the connection
   * closed first, or with another error when the broker refused the message.
   */
  publish(topic: string, payload: string, options: IClientPublishOptions): Promise<void>;
}

export interface TerminalOutboxOptions {
  limit: number;
  window: number;
  /** A message the broker refused (MQTT 5 reason code): it is dropped, not resent. */
  onRefused(error: Error): void;
}

interface Entry {
  seq: number;
  topic: string;
  payload: string;
}

export class TerminalOutbox {
  /** Not sent on the current connection, in order of `seq`. */
  private readonly waiting: Entry[] = [];
  private readonly inFlight = new Set<Entry>();
  private nextSeq = 0;
  private overflowed = 0;
  private refused = 0;
  private emptyWaiters: (() => void)[] = [];

  constructor(
    private readonly transport: OutboxTransport,
    private readonly options: TerminalOutboxOptions,
  ) {}

  /** Events not yet acknowledged by the broker. */
  get size(): number {
    return this.waiting.length + this.inFlight.size;
  }

  add(topic: string, payload: string): void {
    this.waiting.push({ seq: this.nextSeq++, topic, payload });
    if (this.size > this.options.limit && this.waiting.length > 0) {
      this.waiting.shift();
      this.overflowed += 1;
    }
    this.pump();
  }

  /** Sends what the window allows while connected; called on add, on each acknowledgement and on connect. */
  pump(): void {
    while (this.transport.connected && this.inFlight.size < this.options.window) {
      const entry = this.waiting.shift();
      if (!entry) return;
      this.inFlight.add(entry);
      this.transport.publish(entry.topic, entry.payload, { qos: 1 }).then(
        () => this.settle(entry),
        (error: Error) => this.settle(entry, error),
      );
    }
  }

  /** Resolves once every event has been acknowledged (at once when there are none). */
  whenEmpty(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Events dropped because the buffer was full, since the last call. */
  takeOverflowed(): number {
    const count = this.overflowed;
    this.overflowed = 0;
    return count;
  }

  /** Events the broker refused, since the last call. */
  takeRefused(): number {
    const count = this.refused;
    this.refused = 0;
    return count;
  }

  private settle(entry: Entry, error?: Error): void {
    this.inFlight.delete(entry);
    if (error instanceof ConnectionClosedError) {
      this.putBack(entry);
    } else if (error) {
      this.refused += 1;
      this.options.onRefused(error);
    }
    if (this.size === 0) {
      for (const wake of this.emptyWaiters.splice(0)) wake();
    }
    this.pump();
  }

  private putBack(entry: Entry): void {
    const at = this.waiting.findIndex((waiting) => waiting.seq > entry.seq);
    if (at === -1) this.waiting.push(entry);
    else this.waiting.splice(at, 0, entry);
  }
}
