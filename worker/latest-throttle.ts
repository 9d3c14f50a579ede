/**
 * Passes values on at most once every `intervalMs`: the first at once, later ones replacing each
 * other until the interval ends (no backlog), so the latest value always goes out, and `flush()`
 * sends a pending one now. Progress uses it twice: the runner's row writes and the MQTT events.
 */
export class LatestThrottle<T> {
  private lastSentAt = 0;
  private pending: { value: T } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly send: (value: T) => void,
  ) {}

  offer(value: T): void {
    const wait = this.lastSentAt + this.intervalMs - Date.now();
    if (wait <= 0 && !this.timer) {
      this.lastSentAt = Date.now();
      this.send(value);
      return;
    }
    this.pending = { value };
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, wait));
  }

  /** Sends the pending value, if any, now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    this.lastSentAt = Date.now();
    this.send(pending.value);
  }

  /** Drops the pending value: something final supersedes it. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }
}
