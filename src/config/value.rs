//! What every section shares: the error a configuration problem is ([`ConfigError`],
//! made by [`invalid`] while a section is checked and located by `Config::parse`), and
//! reading the kinds of value several sections have: paths relative to the file,
//! `IP:PORT` lists, messages from parsers put on one line.
//!
//! Must not touch: any one section's rules (each section's file has those).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration problem: one line naming the file, line and key, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{location}{key}: {message}")]
    Invalid {
        location: String,
        key: String,
        message: String,
    },
}

/// A problem with the value of `key`; `Config::parse` adds the file and line.
pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        location: String::new(),
        key: key.into(),
        message: message.into(),
    }
}

/// A path as written in the file: relative ones are relative to the file's directory.
pub fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A message on one line (the parsers' messages may span several).
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `KEY[i]` entries as `IP:PORT`.
pub fn addrs(key: &str, v: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    v.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse()
                .map_err(|_| invalid(format!("{key}[{i}]"), format!("{s:?} is not IP:PORT")))
        })
        .collect()
}
