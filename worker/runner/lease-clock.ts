/**
 * A runner's own view of its job's lease. The daemon renews leases in the database and tells the
 * runner each time; a runner that hears nothing for the lease's length assumes its daemon is hung
 * or gone, and ends the job before the lease runs out in the database — before another daemon
 * can take the job back — so two runs of one job do not overlap.
 */

/** The runner gives up this share of the lease early, to absorb timer and scheduling delays. */
const SAFETY_SHARE = 1 / 6;

export class LeaseClock {
  private deadline = 0;
  private timer: NodeJS.Timeout | undefined;
  private expired = false;

  constructor(
    validForMs: number,
    private readonly onExpired: () => void,
  ) {
    this.extend(validForMs);
  }

  /** The lease was renewed: valid for `validForMs` from now. */
  extend(validForMs: number): void {
    if (this.expired) return;
    const usableMs = Math.max(0, validForMs * (1 - SAFETY_SHARE));
    this.deadline = performance.now() + usableMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.expire(), usableMs);
  }

  /** The runner has given the job up (`onExpired` ran): nothing more may be written or sent for it. */
  get hasExpired(): boolean {
    return this.expired;
  }

  /** Milliseconds left before the runner gives up. */
  get remainingMs(): number {
    return Math.max(0, this.deadline - performance.now());
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private expire(): void {
    // After a long synchronous stretch, Node runs an overdue timer before it reads the messages
    // waiting on the IPC channel: let a renewal that is already here count first.
    setImmediate(() => {
      if (this.expired || performance.now() < this.deadline) return;
      this.expired = true;
      this.onExpired();
    });
  }
}
