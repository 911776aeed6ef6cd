//! Where each key of a configuration file is written ([`KeyLocator`]), so that every
//! message about a value reads `FILE:LINE: KEY: message`, while validating or later.
//!
//! Owns: key paths (`sip.listen[0]`, `zone[2].file`) and the line each is written on.
//! Must not touch: the values themselves (the section files judge those).

use super::value::ConfigError;
use std::collections::HashMap;

/// Where each key of a configuration file is written, so that every message about a
/// value reads `FILE:LINE: KEY: message` (README "Configuration"), whether the problem
/// shows while validating or later, when the value is used (a zone file that cannot be
/// read at start or on SIGHUP, a TLS file, an address that cannot be bound).
///
/// Keys are paths as messages write them: `sip.listen[0]`, `dialplan.rules[1].match`,
/// `zone[2].file`, `sip.tls`. A key the file does not write (a default) is located at
/// the nearest enclosing key it does write (`[sip]`'s header line for `sip.listen[0]`),
/// else at line 1. The built-in defaults (no file) locate nothing: messages then read
/// `KEY: message`.
#[derive(Debug, Clone, Default)]
pub struct KeyLocator {
    /// The file as messages name it; empty for the built-in defaults.
    file: String,
    /// Key path → 1-based line of its value (for a table: its header).
    lines: HashMap<String, usize>,
}

impl KeyLocator {
    /// Locates the keys of TOML `text` (named `file` in messages). Text that does not
    /// parse locates nothing beyond line 1 (its syntax error has its own line).
    pub fn new(file: &str, text: &str) -> KeyLocator {
        match toml::de::DeTable::parse(text) {
            Ok(table) => Self::from_table(file, text, &table),
            Err(_) => KeyLocator {
                file: file.to_string(),
                lines: HashMap::new(),
            },
        }
    }

    pub(super) fn from_table(
        file: &str,
        text: &str,
        table: &toml::Spanned<toml::de::DeTable<'_>>,
    ) -> Self {
        // Offsets of the line ends, so that each key's line is a binary search.
        let ends: Vec<usize> = memchr::memchr_iter(b'\n', text.as_bytes()).collect();
        let mut lines = HashMap::new();
        for (k, v) in table.get_ref().iter() {
            record_keys(&ends, k.get_ref(), v, &mut lines);
        }
        KeyLocator {
            file: file.to_string(),
            lines,
        }
    }

    /// The line `key` is written on; for a key not written, that of the nearest
    /// enclosing key that is, else 1.
    pub fn line(&self, key: &str) -> usize {
        let mut k = key;
        loop {
            if let Some(&line) = self.lines.get(k) {
                return line;
            }
            match parent_key(k) {
                Some(p) => k = p,
                None => return 1,
            }
        }
    }

    /// `FILE:LINE: ` for `key`; empty for the built-in defaults.
    pub fn location(&self, key: &str) -> String {
        if self.file.is_empty() {
            String::new()
        } else {
            format!("{}:{}: ", self.file, self.line(key))
        }
    }

    /// The error `FILE:LINE: KEY: message`.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.location(key),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Records the line of `path` and of every key and array element below it; `ends` are
/// the offsets of the text's line ends.
fn record_keys(
    ends: &[usize],
    path: &str,
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    lines: &mut HashMap<String, usize>,
) {
    use toml::de::DeValue;
    let start = value.span().start;
    lines.insert(path.to_string(), ends.partition_point(|&e| e < start) + 1);
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                record_keys(ends, &format!("{path}.{}", k.get_ref()), v, lines);
            }
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                record_keys(ends, &format!("{path}[{i}]"), v, lines);
            }
        }
        _ => {}
    }
}

/// `sip.listen` for `sip.listen[0]`, `zone[1]` for `zone[1].file`, `None` at the top.
fn parent_key(key: &str) -> Option<&str> {
    if key.ends_with(']') {
        return key.rfind('[').map(|i| &key[..i]).filter(|p| !p.is_empty());
    }
    key.rfind('.').map(|i| &key[..i])
}
