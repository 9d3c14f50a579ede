/**
 * Node's timers hold a signed 32-bit millisecond count: a longer delay fires after 1 ms (with a
 * TimeoutOverflowWarning). Every duration the worker turns into a timer is bounded by this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest whole number of seconds a timer can wait (about 24.8 days). */
export const MAX_TIMER_S = Math.floor(MAX_TIMER_MS / 1000);
