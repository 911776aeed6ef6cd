//! The operator console (SPEC §14): `GET /ui/` and the files under it, served from the
//! binary (`build.rs` embeds everything under `ui/` at build time). The console is a
//! page of JavaScript modules that calls the public `/v1` API with the token the
//! operator types in; loading it needs no token, since the files hold no data.
//!
//! Owns: which file a `/ui/…` path names, its content type and ETag (a `304` to a
//! browser that has it), and the headers every answer under `/ui` carries, errors
//! included, which keep the page to its own origin: a Content-Security-Policy that
//! allows scripts, styles, images and API calls from this listener only (no inline
//! script, no other host, no framing), no referrer, and a window no other origin's
//! page can reach (`Cross-Origin-Opener-Policy`). Every answer of the listener, API
//! included, gets `X-Content-Type-Options: nosniff`.
//!
//! Must not touch: the API's data (the page asks `/v1` like any client) or the token.

use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::problem::Problem;

/// One embedded file of the console.
pub(super) struct Asset {
    /// Its path under `/ui/`.
    path: &'static str,
    body: &'static [u8],
    content_type: &'static str,
    /// A quoted hash of its bytes.
    etag: &'static str,
}

/// Every file under `ui/`, written by `build.rs`.
static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// What the page may load: from this origin only, and nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// `GET /ui`: to the page itself (relative module paths need the slash).
pub(super) async fn to_index() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `GET /ui/`: the page.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{*path}`: a file of the page, or 404.
pub(super) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return Problem::new(StatusCode::NOT_FOUND, format!("no console file {path:?}"))
            .into_response();
    };
    let etag = HeaderValue::from_static(asset.etag);
    let cached = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == asset.etag || tag.trim() == "*");
    let content_type = HeaderValue::from_static(asset.content_type);
    // Revalidated on every load (304 when unchanged), so an upgrade shows at once.
    let cache = HeaderValue::from_static("no-cache");
    let head = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, cache),
        (header::CONTENT_TYPE, content_type),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, head).into_response();
    }
    (head, asset.body).into_response()
}

/// The headers of every `/ui` answer, errors included (the router's outermost layer);
/// `nosniff` on every answer.
pub(super) async fn page_headers(req: Request, next: Next) -> Response {
    let console = req.uri().path() == "/ui" || req.uri().path().starts_with("/ui/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !console {
        return res;
    }
    let named = HeaderName::from_static;
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (named("cross-origin-opener-policy"), "same-origin"),
        (named("cross-origin-resource-policy"), "same-origin"),
        (
            named("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    #[test]
    fn the_page_and_its_modules_are_embedded() {
        let paths: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        assert!(paths.contains(&"index.html"), "{paths:?}");
        assert!(paths.contains(&"js/main.js"), "{paths:?}");
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
        }
    }
}
