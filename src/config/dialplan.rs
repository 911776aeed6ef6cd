//! `[dialplan]`: from what people dial to `+digits` (SPEC §3, §10.4).
//!
//! Owns: the section as written, the dial-plan rules (each a regex with its size limit
//! and a `$1`-style replacement whose group references the regex must have), and the
//! digit-count limits with their bounds.
//!
//! Must not touch: numbers themselves (`resolve::number` reads them and runs the plan).

use super::{ConfigError, invalid, one_line};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDialplan {
    rules: Vec<RawRule>,
    min_digits: u32,
    max_digits: u32,
}

impl Default for RawDialplan {
    fn default() -> Self {
        RawDialplan {
            rules: Vec::new(),
            min_digits: 3,
            max_digits: 15,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    pattern: String,
    replace: String,
}

/// One dial-plan rule: a regex over the cleaned user part and its `$1`-style replacement.
#[derive(Debug, Clone)]
pub struct DialRule {
    pub pattern: regex::Regex,
    pub replace: String,
}

#[derive(Debug, Clone)]
pub struct DialplanConfig {
    pub rules: Vec<DialRule>,
    pub min_digits: usize,
    pub max_digits: usize,
}

/// Most digits a number may have: its ENUM domain must stay within 255 bytes.
pub const MAX_DIGITS_LIMIT: usize = 100;

impl DialplanConfig {
    /// `[dialplan]`: each rule in order, then the digit limits.
    pub(super) fn from_raw(d: RawDialplan) -> Result<DialplanConfig, ConfigError> {
        let mut rules = Vec::new();
        for (i, r) in d.rules.iter().enumerate() {
            let pattern = regex::RegexBuilder::new(&r.pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    invalid(
                        format!("dialplan.rules[{i}].match"),
                        format!("invalid regex: {}", one_line(&e.to_string())),
                    )
                })?;
            if let Some(n) = max_group_ref(&r.replace)
                && n >= pattern.captures_len()
            {
                return Err(invalid(
                    format!("dialplan.rules[{i}].replace"),
                    format!(
                        "refers to group ${n} but the match has {} groups",
                        pattern.captures_len() - 1
                    ),
                ));
            }
            rules.push(DialRule {
                pattern,
                replace: r.replace.clone(),
            });
        }
        if d.min_digits == 0 {
            return Err(invalid("dialplan.min_digits", "must be at least 1"));
        }
        if d.max_digits < d.min_digits {
            return Err(invalid(
                "dialplan.max_digits",
                "must not be below dialplan.min_digits",
            ));
        }
        if d.max_digits as usize > MAX_DIGITS_LIMIT {
            return Err(invalid(
                "dialplan.max_digits",
                format!("must be at most {MAX_DIGITS_LIMIT} (an ENUM domain is at most 255 bytes)"),
            ));
        }
        Ok(DialplanConfig {
            rules,
            min_digits: d.min_digits as usize,
            max_digits: d.max_digits as usize,
        })
    }
}

fn max_group_ref(replace: &str) -> Option<usize> {
    let b = replace.as_bytes();
    let mut max = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (start, end_brace) = if b.get(i + 1) == Some(&b'{') {
                (i + 2, true)
            } else {
                (i + 1, false)
            };
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > start
                && (!end_brace || b.get(j) == Some(&b'}'))
                && let Ok(n) = replace[start..j].parse::<usize>()
            {
                max = Some(max.map_or(n, |m: usize| m.max(n)));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    max
}
