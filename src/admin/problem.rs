//! Every failed request's answer: the RFC 9457 `application/problem+json` body
//! ([`Problem`]), the failing fields it lists ([`FieldError`]), how a refused change
//! ([`EditError`]) reads as one, and the last layer that rewrites what axum itself
//! answers in plain text (its rejections, 405s) as a problem.
//!
//! Owns: status codes of errors, the problem's JSON shape (`type`, `title`, `status`,
//! `detail`, `errors`, `total_errors`) and its headers (`WWW-Authenticate`, `Allow`).
//!
//! Must not touch: what is valid (the bodies and the keeper decide; this only says it).

use crate::keeper::EditError;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// One validation failure: which field, on which import line, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub field: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            line: None,
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// The path of field `name` within `at` (`routes[0]` + `uri` → `routes[0].uri`): `name`
/// alone when `at` is empty (a CSV row, whose fields are its columns), `at` alone when
/// `name` is (the whole of it).
pub fn field_at(at: &str, name: &str) -> String {
    if name.is_empty() {
        at.to_string()
    } else if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

/// An RFC 9457 problem: the answer to every failed request.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// How many errors there were in all (imports list at most 100).
    pub total: Option<usize>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            total: None,
            headers: Vec::new(),
        }
    }

    pub(super) fn fields(status: StatusCode, errors: Vec<FieldError>) -> Problem {
        let detail = match errors.first() {
            Some(e) if e.field.is_empty() => e.detail.clone(),
            Some(e) => format!("{}: {}", e.field, e.detail),
            None => "invalid request".into(),
        };
        Problem {
            status,
            detail,
            errors,
            total: None,
            headers: Vec::new(),
        }
    }
}

impl From<FieldError> for Problem {
    fn from(e: FieldError) -> Problem {
        Problem::fields(StatusCode::UNPROCESSABLE_ENTITY, vec![e])
    }
}

impl From<EditError> for Problem {
    fn from(e: EditError) -> Problem {
        Problem::edit(e, "e164")
    }
}

impl Problem {
    /// The answer to a failed change; `field` names the number or prefix in the path
    /// (`e164`, `e164prefix`) when the error is about it.
    pub(super) fn edit(e: EditError, field: &str) -> Problem {
        let status = match &e {
            EditError::NotInZone(_)
            | EditError::Line { .. }
            | EditError::Param { .. }
            | EditError::Zone(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EditError::ReadOnly(_) => StatusCode::CONFLICT,
            EditError::NotFound(_) => StatusCode::NOT_FOUND,
            EditError::Store(_) | EditError::StoreZone(_) => {
                tracing::error!("admin: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut p = Problem::new(status, e.to_string());
        match e {
            EditError::Line { line, message } => p.errors.push(FieldError {
                line: Some(line),
                field: "number".into(),
                detail: message,
            }),
            EditError::Param { field, message } => p.errors.push(FieldError {
                line: None,
                field: field.into(),
                detail: message,
            }),
            EditError::Zone(z) => {
                p.detail = "the master file does not load; nothing changed".into();
                p.errors = z
                    .diagnostics
                    .iter()
                    .filter(|d| !d.warning)
                    .map(|d| FieldError {
                        line: Some(d.line as usize),
                        field: "body".into(),
                        detail: d.message.clone(),
                    })
                    .collect();
            }
            EditError::NotInZone(_) => p.errors.push(FieldError {
                line: None,
                field: field.into(),
                detail: p.detail.clone(),
            }),
            _ => {}
        }
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        if let Some(total) = self.total {
            body["total_errors"] = json!(total);
        }
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response();
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

/// Rewrites an error answered in plain text (axum's own rejections, 405s) as a problem.
pub(super) async fn problems_only(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.as_u16() < 400 || is_problem {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let matched = resp.extensions().get::<MatchedPath>().cloned();
    let text = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut p = Problem::new(status, detail);
    if let Some(a) = allow {
        p.headers.push((header::ALLOW, a));
    }
    let mut resp = p.into_response();
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}
