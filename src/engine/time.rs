//! Time, for every part of the engine: the clock's unit and the longest wait a timer honours.
//!
//! At the bottom of the engine: it imports nothing from it, and the session, the coalescer, the
//! limiter and the Igniter.js link all read their times from here.

/// Milliseconds on the shell's monotonic clock.
pub type Millis = u64;

/// The longest delay `setTimeout` honours (2^31-1 ms, about 24.8 days); a longer one fires at once.
pub const MAX_TIMER_MS: Millis = (1 << 31) - 1;

/// The delay to hand `setTimeout` for `deadline` at `now`: never negative, never past
/// [`MAX_TIMER_MS`] (waking early is harmless: nothing is due, and the timer is armed again).
pub fn timer_delay(deadline: Millis, now: Millis) -> f64 {
    deadline.saturating_sub(now).min(MAX_TIMER_MS) as f64
}
