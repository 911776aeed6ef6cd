//! NOTIFY out (RFC 1996): tells every `dns.notify` target that a zone's serial changed.
//!
//! Owns: one sender task per (zone, target), retried with a growing interval until the
//! target acknowledges (a NOTIFY response with our ID) or a bounded number of tries is
//! spent; a newer change for the same zone replaces the task still retrying.
//!
//! Must not touch: when a serial changes (the keeper's `Publisher` says so for every zone
//! change — reload, transfers in, the admin API — through the hook `server` sets up) or
//! the zones themselves.

use super::tsig;
use crate::config::TsigKey;
use crate::name::Name;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Tries per target before giving up (intervals 1, 2, 4 … 60 s: about 8 minutes).
const TRIES: u32 = 12;

pub struct Notifier {
    targets: Vec<SocketAddr>,
    /// `dns.transfer_key`: NOTIFYs are signed with it, and only answers signed with it
    /// count as acknowledgements.
    key: Option<TsigKey>,
    runtime: tokio::runtime::Handle,
    /// Sender tasks still retrying, by (zone in lower case, target).
    pending: Mutex<HashMap<(String, SocketAddr), tokio::task::AbortHandle>>,
    pub sent: AtomicU64,
    pub acknowledged: AtomicU64,
}

impl Notifier {
    /// Must be created inside the runtime the senders run on.
    pub fn new(targets: Vec<SocketAddr>, key: Option<TsigKey>) -> Notifier {
        Notifier {
            targets,
            key,
            runtime: tokio::runtime::Handle::current(),
            pending: Mutex::new(HashMap::new()),
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
        }
    }

    /// The zone `origin` now has `serial`: NOTIFY every target. Callable from any thread.
    pub fn zone_changed(self: &std::sync::Arc<Self>, origin: &Name, serial: u32) {
        for &target in &self.targets {
            let key = (origin.to_string().to_ascii_lowercase(), target);
            let me = self.clone();
            let zone = origin.clone();
            let task = self.runtime.spawn(async move {
                let acked = send_until_acked(&me, target, &zone, serial).await;
                if acked {
                    me.acknowledged.fetch_add(1, Ordering::Relaxed);
                } else {
                    tracing::warn!(zone = %zone, %target, serial, "NOTIFY not acknowledged; giving up");
                }
            });
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.retain(|_, t| !t.is_finished());
            if let Some(old) = pending.insert(key, task.abort_handle()) {
                old.abort();
            }
        }
    }
}

async fn send_until_acked(n: &Notifier, target: SocketAddr, zone: &Name, serial: u32) -> bool {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::RecordType;
    use std::str::FromStr;
    let Ok(name) = hickory_proto::rr::Name::from_str(&zone.to_string()) else {
        return false;
    };
    let bind = if target.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
        return false;
    };
    if sock.connect(target).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    let mut wait = Duration::from_secs(1);
    for _ in 0..TRIES {
        let mut msg = Message::new(super::wire::random_id(), MessageType::Query, OpCode::Notify);
        msg.metadata.authoritative = true;
        msg.add_query(Query::query(name.clone(), RecordType::SOA));
        let Ok(mut wire) = msg.to_vec() else {
            return false;
        };
        let mac = n
            .key
            .as_ref()
            .map(|k| tsig::sign_request(&mut wire, k, tsig::unix_now()));
        n.sent.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(zone = %zone, %target, serial, "NOTIFY sent");
        let _ = sock.send(&wire).await;
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok(len)) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            let answer = &buf[..len];
            if answer.get(..2) != Some(&msg.metadata.id.to_be_bytes()[..]) {
                continue;
            }
            if let (Some(k), Some(mac)) = (&n.key, &mac)
                && let Err(e) = tsig::verify_response(answer, k, mac, tsig::unix_now())
            {
                tracing::warn!(zone = %zone, %target, "NOTIFY answer not taken: TSIG: {e}");
                continue;
            }
            let answer = match tsig::find(answer) {
                Ok(Some(rec)) => tsig::without_tsig(answer, &rec),
                _ => answer.to_vec(),
            };
            if let Ok(resp) = Message::from_vec(&answer)
                && resp.metadata.message_type == MessageType::Response
            {
                tracing::info!(zone = %zone, %target, serial, rcode = %resp.metadata.response_code, "NOTIFY acknowledged");
                return true;
            }
        }
        wait = (wait * 2).min(Duration::from_secs(60));
    }
    false
}

impl crate::metrics::Source for Notifier {
    fn families(&self, out: &mut Vec<crate::metrics::Family>) {
        use crate::metrics::Family;
        let (sent, acked) = (
            self.sent.load(Ordering::Relaxed),
            self.acknowledged.load(Ordering::Relaxed),
        );
        out.push(
            Family::counter(
                "enroute_dns_notify_sent_total",
                "NOTIFY messages sent to dns.notify targets (retries included).",
                &[],
            )
            .with(&[], sent as f64),
        );
        out.push(
            Family::counter(
                "enroute_dns_notify_acknowledged_total",
                "NOTIFY messages a secondary acknowledged.",
                &[],
            )
            .with(&[], acked as f64),
        );
    }
}
