//! Logging: the tracing subscriber (`log.format` text or JSON, `log.level`) and the
//! rate limit that keeps a repeated error class from flooding the log.
//!
//! Owns: log set-up and [`RateLimit`]. Must not touch: what is logged; each module
//! logs its own events (per-request events at debug level only, so a busy server at
//! `info` writes nothing per INVITE or query).

use crate::config::{Config, LogFormat};
use std::sync::atomic::{AtomicU64, Ordering};

/// Installs the global subscriber on stderr (journald and container runtimes collect
/// it there). A second call is ignored.
pub fn init(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal; journald and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// At most one log line per second for one class of error; the rest are counted and
/// the next line says how many were left out. Lock-free: one load on the quiet path.
pub struct RateLimit {
    /// The second (since the Unix epoch) of the last line written.
    last: AtomicU64,
    /// Events since the last line written.
    suppressed: AtomicU64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimit {
    pub const fn new() -> Self {
        RateLimit {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event may be logged (`n` events were left out since the
    /// last line); `None` when it is one of those left out.
    pub fn check(&self) -> Option<u64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last.load(Ordering::Relaxed);
        if last != now
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn one_line_per_second_and_the_count_of_the_rest() {
        let limit = RateLimit::new();
        assert_eq!(limit.check(), Some(0));
        let left_out = (0..99).filter(|_| limit.check().is_none()).count();
        // All in the same second, unless the clock ticked over in between.
        assert!(left_out >= 98, "{left_out}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let next = limit.check().expect("a new second logs again");
        assert!(next >= 98, "{next}");
    }
}
