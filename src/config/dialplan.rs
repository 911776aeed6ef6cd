//! `[dialplan]`: from what people dial to `+digits` (SPEC §3, §10.4).
//!
//! Owns: the section as written, the dial-plan rule ([`DialRule`]: parsing its regex
//! under a size limit, checking that its `$1`-style replacement names only groups the
//! regex has, and applying it to a number), and the digit-count limits with their
//! bounds.
//!
//! Must not touch: reading numbers out of URIs or judging them (`resolve::number` does,
//! and runs the rules in order).

use super::value::{ConfigError, invalid, one_line};
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

/// One dial-plan rule: a regex over the cleaned user part and its `$1`-style
/// replacement. Made only by [`DialRule::parse`], so every group the replacement names
/// is one the regex has.
#[derive(Debug, Clone)]
pub struct DialRule {
    pattern: regex::Regex,
    replace: String,
}

/// Why a rule does not parse: which of its keys (`match` or `replace`) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRuleError {
    pub key: &'static str,
    pub message: String,
}

impl DialRule {
    /// A rule from its `match` regex (compiled under a size limit) and its `replace`
    /// text (its `$N`/`${N}` references checked against the regex's groups).
    pub fn parse(pattern: &str, replace: &str) -> Result<DialRule, DialRuleError> {
        let pattern = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| DialRuleError {
                key: "match",
                message: format!("invalid regex: {}", one_line(&e.to_string())),
            })?;
        if let Some(n) = max_group_ref(replace)
            && n >= pattern.captures_len()
        {
            return Err(DialRuleError {
                key: "replace",
                message: format!(
                    "refers to group ${n} but the match has {} groups",
                    pattern.captures_len() - 1
                ),
            });
        }
        Ok(DialRule {
            pattern,
            replace: replace.to_string(),
        })
    }

    /// The rule applied to `text`: `None` when the regex does not match it, else `text`
    /// with the (first) match replaced. Runs for every number the dial plan sees.
    #[inline]
    pub fn apply(&self, text: &str) -> Option<String> {
        if self.pattern.is_match(text) {
            Some(
                self.pattern
                    .replace(text, self.replace.as_str())
                    .into_owned(),
            )
        } else {
            None
        }
    }
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
            let rule = DialRule::parse(&r.pattern, &r.replace)
                .map_err(|e| invalid(format!("dialplan.rules[{i}].{}", e.key), e.message))?;
            rules.push(rule);
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
