//! Users and registrations (SPEC §11): `PUT/GET/DELETE /v1/users/{aor}`, the paged
//! `GET /v1/users`, `GET /v1/registrations` (all, or `?aor=`) and
//! `DELETE /v1/registrations/{aor}`. An AOR in a path is read as the registrar reads a
//! To URI (`alice@example.net`, `sip:alice@example.net`, `tel:+441632960123`) and
//! answered in its canonical form.
//!
//! A user is created from a password (its HA1 per algorithm is kept, never the
//! password) or from HA1s; no answer ever carries a secret. Every change is committed
//! by the registrar's writer before the 2xx.
//!
//! Must not touch: the registrar's file or bindings directly (it asks the
//! [`Registrar`]), digests beyond asking for HA1s.

use super::body::{decode_json, read_body, require_json};
use super::problem::{FieldError, Problem};
use super::state::{AdminState, Shared};
use crate::config::DigestAlgorithm;
use crate::registrar::{Refused, Registrar, User, digest::Hex};
use crate::resolve::aor;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The path parameter naming an AOR.
const AOR: &str = "aor";

/// The registrar, or 404 when it is not enabled.
fn registrar(s: &AdminState) -> Result<&Registrar, Problem> {
    s.registrar.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "the registrar is not enabled (registrar.enabled = false)",
        )
    })
}

/// The canonical AOR of `text`, or 422 naming `field`.
fn canonical(s: &AdminState, reg: &Registrar, text: &str, field: &str) -> Result<String, Problem> {
    let (mut out, mut scratch) = (String::new(), String::new());
    let plan = s.router.plan();
    let domains = &reg.config.domains;
    match aor::of_registration(text, &plan.dialplan, domains, &mut out, &mut scratch) {
        Ok(()) => Ok(out),
        Err(aor::AorError::NotServed) => Err(FieldError::new(
            field,
            format!(
                "{text:?} is not in a served domain (registrar.domains: {})",
                domains.join(", ")
            ),
        )
        .into()),
        Err(e) => Err(FieldError::new(field, format!("{text:?}: {e}")).into()),
    }
}

fn store_failed(e: Refused) -> Problem {
    tracing::error!("admin: registrar: {e}");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("registrar: {e}; nothing changed"),
    )
}

/// A user as answered: never a secret.
#[derive(Serialize)]
struct UserView {
    aor: String,
    realm: String,
    /// The algorithms it has an HA1 for.
    algorithms: Vec<&'static str>,
}

fn user_view(aor: String, u: &User) -> UserView {
    UserView {
        aor,
        realm: u.realm.to_string(),
        algorithms: u
            .algorithms()
            .into_iter()
            .map(DigestAlgorithm::as_str)
            .collect(),
    }
}

/// `PUT /v1/users/{aor}`'s body: a password, or HA1s by algorithm.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    password: Option<String>,
    ha1: Option<BTreeMap<String, String>>,
}

/// Longest password taken.
const MAX_PASSWORD: usize = 1024;

fn user_from(body: UserBody, username: &str, realm: &str) -> Result<User, Problem> {
    match (body.password, body.ha1) {
        (Some(p), None) => {
            if p.is_empty() || p.len() > MAX_PASSWORD {
                return Err(FieldError::new(
                    "password",
                    format!("must be 1 to {MAX_PASSWORD} bytes"),
                )
                .into());
            }
            Ok(User::from_password(username, realm, &p))
        }
        (None, Some(map)) => {
            let (mut sha, mut md5) = (None, None);
            for (name, hex) in &map {
                let field = format!("ha1.{name}");
                let Some(alg) = DigestAlgorithm::parse(name) else {
                    return Err(FieldError::new(field, "use \"SHA-256\" or \"MD5\"").into());
                };
                if Hex::parse(alg, hex).is_none() {
                    let len = crate::registrar::digest::hex_len(alg);
                    return Err(FieldError::new(field, format!("must be {len} hex digits")).into());
                }
                match alg {
                    DigestAlgorithm::Sha256 => sha = Some(hex.as_str()),
                    DigestAlgorithm::Md5 => md5 = Some(hex.as_str()),
                }
            }
            if sha.is_none() && md5.is_none() {
                return Err(
                    FieldError::new("ha1", "give at least one of \"SHA-256\", \"MD5\"").into(),
                );
            }
            Ok(User::from_hex(realm, sha, md5))
        }
        (Some(_), Some(_)) => {
            Err(FieldError::new("", "give \"password\" or \"ha1\", not both").into())
        }
        (None, None) => Err(FieldError::new("", "give \"password\" or \"ha1\"").into()),
    }
}

/// `PUT /v1/users/{aor}`: 201 when created, 200 when replaced.
pub(super) async fn put_user(
    State(s): State<Shared>,
    Path(text): Path<String>,
    req: Request,
) -> Result<Response, Problem> {
    let reg = registrar(&s)?;
    let aor = canonical(&s, reg, &text, AOR)?;
    let (headers, bytes) = read_body(&s, req).await?;
    require_json(&headers)?;
    let body: UserBody = decode_json(&bytes)?;
    let user = user_from(body, crate::registrar::username_of(&aor), &reg.config.realm)?;
    let view = user_view(aor.clone(), &user);
    let existed = reg.put_user(&aor, user).await.map_err(store_failed)?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(view)).into_response())
}

/// `GET /v1/users/{aor}`.
pub(super) async fn get_user(
    State(s): State<Shared>,
    Path(text): Path<String>,
) -> Result<Response, Problem> {
    let reg = registrar(&s)?;
    let aor = canonical(&s, reg, &text, AOR)?;
    let user = reg
        .users
        .get(&aor)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no user {aor}")))?;
    Ok(axum::Json(user_view(aor, &user)).into_response())
}

/// `DELETE /v1/users/{aor}`: the user and its bindings.
pub(super) async fn delete_user(
    State(s): State<Shared>,
    Path(text): Path<String>,
) -> Result<Response, Problem> {
    let reg = registrar(&s)?;
    let aor = canonical(&s, reg, &text, AOR)?;
    if reg.users.get(&aor).is_none() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no user {aor}"),
        ));
    }
    reg.delete_user(&aor).await.map_err(store_failed)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A page's query: `after` (exclusive), `limit` (default 100), and `aor` for the
/// registrations; other keys are ignored.
struct Page {
    after: Option<String>,
    limit: usize,
    aor: Option<String>,
}

impl Page {
    /// Reads the query string; a bad `limit` is 422 naming it.
    fn parse(raw: Option<&str>) -> Result<Page, Problem> {
        let mut p = Page {
            after: None,
            limit: 100,
            aor: None,
        };
        for (k, v) in super::lists::form_pairs(raw.unwrap_or("")) {
            // A literal '+' in a query string decodes as a space; here it means plus.
            let v = v.replace(' ', "+");
            match k.as_str() {
                "after" => p.after = Some(v),
                "aor" => p.aor = Some(v),
                "limit" => p.limit = super::lists::page_limit(&v)?,
                _ => {}
            }
        }
        Ok(p)
    }
}

/// `GET /v1/users`: `{"items": [users], "next": cursor-or-null}` by AOR.
pub(super) async fn list_users(
    State(s): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, Problem> {
    registrar(&s)?;
    let p = Page::parse(q.as_deref())?;
    // Off the admin's one thread: a walk over every user.
    let page = tokio::task::spawn_blocking(move || {
        let reg = s.registrar.as_deref().expect("checked above");
        let limit = p.limit;
        let page = reg.users.page(p.after.as_deref(), limit + 1);
        let next = (page.len() > limit).then(|| page[limit - 1].0.clone());
        let items: Vec<UserView> = page
            .into_iter()
            .take(limit)
            .map(|(aor, u)| user_view(aor, &u))
            .collect();
        serde_json::json!({ "items": items, "next": next })
    })
    .await
    .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(axum::Json(page).into_response())
}

/// One AOR's live bindings as answered.
#[derive(Serialize)]
struct Registration {
    aor: String,
    contacts: Vec<ContactView>,
}

#[derive(Serialize)]
struct ContactView {
    uri: String,
    q: crate::resolve::Q,
    /// Seconds left.
    expires: u64,
    call_id: String,
    cseq: u32,
}

fn registration(reg: &Registrar, aor: String, now: u64) -> Registration {
    let contacts = reg
        .location
        .get(&aor)
        .into_iter()
        .filter(|b| b.expires_at > now)
        .map(|b| ContactView {
            uri: b.contact.to_string(),
            q: crate::resolve::Q(b.q),
            expires: b.expires_in(now),
            call_id: b.call_id.to_string(),
            cseq: b.cseq,
        })
        .collect();
    Registration { aor, contacts }
}

/// `GET /v1/registrations`: every registered AOR (paged), or `?aor=` one.
pub(super) async fn list_registrations(
    State(s): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, Problem> {
    let reg = registrar(&s)?;
    let p = Page::parse(q.as_deref())?;
    let now = crate::registrar::unix_now();
    if let Some(text) = &p.aor {
        let aor = canonical(&s, reg, text, "aor")?;
        let r = registration(reg, aor, now);
        let items: Vec<Registration> = if r.contacts.is_empty() {
            vec![]
        } else {
            vec![r]
        };
        return Ok(axum::Json(serde_json::json!({ "items": items, "next": null })).into_response());
    }
    // Off the admin's one thread: a walk over every AOR.
    let page = tokio::task::spawn_blocking(move || {
        let reg = s.registrar.as_deref().expect("checked above");
        let limit = p.limit;
        let page = reg.location.aors_page(p.after.as_deref(), limit + 1);
        let next = (page.len() > limit).then(|| page[limit - 1].clone());
        // AORs whose bindings all expired since the last sweep are left out.
        let items: Vec<Registration> = page
            .into_iter()
            .take(limit)
            .map(|aor| registration(reg, aor, now))
            .filter(|r| !r.contacts.is_empty())
            .collect();
        serde_json::json!({ "items": items, "next": next })
    })
    .await
    .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(axum::Json(page).into_response())
}

/// `DELETE /v1/registrations/{aor}`: every binding of the AOR; 404 when it had none.
pub(super) async fn delete_registrations(
    State(s): State<Shared>,
    Path(text): Path<String>,
) -> Result<Response, Problem> {
    let reg = registrar(&s)?;
    let aor = canonical(&s, reg, &text, AOR)?;
    let removed = reg.unregister(&aor).await.map_err(store_failed)?;
    if removed == 0 {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no registration for {aor}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
