//! `[log]` and `[metrics]`: what enroute tells its operators.
//!
//! Owns: the sections as written (with their defaults), the log format, and the
//! `log.level` filter's syntax.
//!
//! Must not touch: log set-up (`logging`) or counting (`metrics`).

use super::value::{ConfigError, invalid};
use serde::Deserialize;

/// `log.level`: comma-separated directives, each a level (`off`, `error`, `warn`,
/// `info`, `debug`, `trace`, any case) or `TARGET[SPAN{FIELD}]=LEVEL`. Checked here
/// because the filter parser takes any bare word as a target: `"verbose"` would be a
/// valid filter that shows nothing at all, and the operator would think the server hung.
/// Returns the filter with the spaces around directives removed (the filter parser
/// would take them as part of a target).
pub fn check_log_level(filter: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |w: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(w.trim()));
    let hint = "use off, error, warn, info, debug or trace, or TARGET=LEVEL directives \
                separated by commas (\"info,enroute::sip=debug\")";
    let directives: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(format!("is empty: {hint}"));
    }
    for &d in &directives {
        match d.rsplit_once('=') {
            None if is_level(d) => {}
            None => return Err(format!("{d:?} is not a level: {hint}")),
            Some((target, level)) if target.trim().is_empty() || !is_level(level) => {
                return Err(format!(
                    "{d:?}: {level:?} after '=' is not a level (or the target is missing): {hint}"
                ));
            }
            Some(_) => {}
        }
    }
    // The directives' own syntax (spans, fields) is the filter parser's to judge.
    let filter = directives.join(",");
    match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(_) => Ok(filter),
        Err(e) => Err(format!("{filter:?}: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    format: LogFormat,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `[metrics]`: not in SPEC §3; added so that counting can be measured on vs off and
/// turned off where nobody scrapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMetrics {
    pub(super) enabled: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics { enabled: true }
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl LogConfig {
    /// `[log]`: the format as written, the level filter checked.
    pub(super) fn from_raw(l: RawLog) -> Result<LogConfig, ConfigError> {
        let level = check_log_level(&l.level).map_err(|m| invalid("log.level", m))?;
        Ok(LogConfig {
            format: l.format,
            level,
        })
    }
}
