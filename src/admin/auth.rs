//! Who may use the API: the bearer token, where it comes from ([`load_token`]:
//! `ENROUTE_ADMIN_TOKEN`, else `admin.token_file`, else a generated one written there
//! with mode 0600) and the check every `/v1` route runs first ([`require_token`], a
//! constant-time compare; 401 with a `WWW-Authenticate` challenge otherwise).
//!
//! Must not touch: anything a request asks for (it only lets the request through).

use super::problem::Problem;
use super::state::Shared;
use crate::config::Config;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Where the admin token came from, as [`load_token`] found it (the start-up summary
/// says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `ENROUTE_ADMIN_TOKEN`.
    Env,
    /// `admin.token_file`, which held one.
    File,
    /// Generated and written to `admin.token_file` (missing, or empty).
    Generated,
}

/// Why there is no admin token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `admin.token_file` (or its directory) could not be read, created or written.
    #[error("admin.token_file {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate an admin token: {0}")]
    Random(String),
}

/// Reads the admin token: `ENROUTE_ADMIN_TOKEN`, else `admin.token_file` (trimmed), else
/// a new random one written there with mode 0600 (SPEC §10.10). Says which it was.
pub fn load_token(config: &Config) -> Result<(String, TokenSource), TokenError> {
    if let Ok(t) = std::env::var("ENROUTE_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok((t.trim().to_string(), TokenSource::Env));
    }
    let path = &config.admin.token_file;
    let file_error = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| TokenError::File { path, source }
    };
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok((t.trim().to_string(), TokenSource::File)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(path)(e)),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(file_error(path))?;
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(file_error(path))?;
    tracing::info!(token_file = %path.display(), "admin: no token configured; generated one (mode 0600)");
    Ok((token, TokenSource::Generated))
}

/// Equal in time independent of where the inputs differ (only the length shows).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lets a request with the bearer token through; 401 with a challenge otherwise.
pub(super) async fn require_token(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), s.token.as_bytes()) => next.run(req).await,
        other => {
            let (detail, challenge) = match other {
                None => ("a bearer token is required", "Bearer realm=\"enroute\""),
                Some(_) => (
                    "the bearer token is not valid",
                    "Bearer realm=\"enroute\", error=\"invalid_token\"",
                ),
            };
            let mut p = Problem::new(StatusCode::UNAUTHORIZED, detail);
            p.headers.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
            p.into_response()
        }
    }
}
