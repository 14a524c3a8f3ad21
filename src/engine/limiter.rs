//! The rate limit on the `console.error` fallback for problems (used when the app gives no
//! `onError`): a flood of bad frames must not flood the console. `onError`, when given, still
//! receives every problem.

use super::time::Millis;

/// Problems printed in full per window.
pub const CONSOLE_BURST: u32 = 10;
/// The window, ms.
pub const CONSOLE_WINDOW_MS: Millis = 10_000;

/// What to do with one problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Print it; first print one line saying how many were left out since the last one printed,
    /// when `suppressed` is not 0.
    Print { suppressed: u64 },
    /// Print it, then one line saying that the next ones are left out for the rest of the window.
    PrintLast,
    /// Leave it out (counted for the next summary).
    Suppress,
}

/// At most [`CONSOLE_BURST`] problems printed per [`CONSOLE_WINDOW_MS`]; the others are counted
/// and summed up in one line when printing resumes.
#[derive(Debug, Default, Clone)]
pub struct ConsoleLimiter {
    window_start: Option<Millis>,
    printed: u32,
    suppressed: u64,
}

impl ConsoleLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn admit(&mut self, now: Millis) -> Verdict {
        let mut suppressed = 0;
        if self
            .window_start
            .map_or(true, |start| now.saturating_sub(start) >= CONSOLE_WINDOW_MS)
        {
            self.window_start = Some(now);
            self.printed = 0;
            suppressed = core::mem::take(&mut self.suppressed);
        }
        if self.printed >= CONSOLE_BURST {
            self.suppressed += 1;
            return Verdict::Suppress;
        }
        self.printed += 1;
        if self.printed == CONSOLE_BURST {
            // A summary line for the skipped ones may be due too; it goes with the next print.
            self.suppressed += suppressed;
            Verdict::PrintLast
        } else {
            Verdict::Print { suppressed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12, fault 6: 10,000 problems at once print 10 lines and a note, then one summary.
    #[test]
    fn a_flood_prints_a_burst_then_one_summary_per_window() {
        let mut l = ConsoleLimiter::new();
        let verdicts: Vec<Verdict> = (0..10_000).map(|i| l.admit(i / 100)).collect();
        let printed = verdicts.iter().filter(|v| **v != Verdict::Suppress).count();
        assert_eq!(printed, CONSOLE_BURST as usize);
        assert_eq!(verdicts[0], Verdict::Print { suppressed: 0 });
        assert_eq!(verdicts[9], Verdict::PrintLast);
        // The next window: printing resumes with the count of those left out.
        assert_eq!(l.admit(10_000), Verdict::Print { suppressed: 9_990 });
        assert_eq!(l.admit(10_001), Verdict::Print { suppressed: 0 });
    }

    #[test]
    fn a_trickle_is_printed_in_full() {
        let mut l = ConsoleLimiter::new();
        for i in 0..100 {
            assert_eq!(l.admit(i * 2_000), Verdict::Print { suppressed: 0 });
        }
    }
}
