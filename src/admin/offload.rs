//! Where admin work runs when it would block the admin's one thread: a keeper change
//! (which waits for the store's fsync) on the blocking pool, bulk work (an import, a
//! zone replace) on a thread of its own at a lower CPU priority.
//!
//! Must not touch: what the work does (callers hand it over whole).

use super::problem::Problem;
use crate::keeper::EditError;
use axum::http::StatusCode;

/// Runs a keeper change (which blocks on the store's fsync) off the async workers;
/// `field` names the path's number or prefix in errors about it.
pub(super) async fn blocking<T: Send + 'static>(
    field: &'static str,
    f: impl FnOnce() -> Result<T, EditError> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| Problem::edit(e, field)),
        Err(e) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the change did not finish: {e}"),
        )),
    }
}

/// Runs bulk work (an import, a zone replace) on a thread of its own at a lower CPU
/// priority ([`crate::keeper::lower_this_threads_priority`]).
pub(super) async fn bulk<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Problem> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("enroute-bulk".into())
        .spawn(move || {
            crate::keeper::lower_this_threads_priority();
            let _ = tx.send(f());
        })
        .map_err(|e| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot start the work: {e}"),
            )
        })?;
    rx.await.map_err(|_| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the change did not finish",
        )
    })
}
