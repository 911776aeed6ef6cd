//! A latency probe for the SIP redirect server, run next to a SIPp load (see
//! `scripts/bench-sip`, `PROBE_RATE`).
//!
//! SIPp reports response times at 1 ms resolution and measures them with its own event
//! loop clock: under load it shows 0 ms or exactly 4 ms (one kernel tick), never 1–3 ms,
//! which is SIPp's timing, not the server's. This probe sends its own INVITEs at a low
//! fixed rate, one at a time, waits for the final answer, ACKs it, and measures each
//! round trip with a monotonic clock in microseconds. Its figures include the kernel's
//! loopback path and the probe's own wake-up, so they bound the server's latency from
//! above.
//!
//! `cargo run --release --example sip_latency -- TARGET [RATE] [SECONDS] [NUMBERS.csv]`
//! prints `PROBE sent=… answered=… lost=… p50_us=… p90_us=… p99_us=… p999_us=… max_us=…`.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(target) = args.first().and_then(|t| t.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: sip_latency HOST:PORT [RATE=200] [SECONDS=10] [NUMBERS.csv]");
        std::process::exit(2);
    };
    let rate: u32 = args
        .get(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(200)
        .max(1);
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let numbers: Vec<String> = match args.get(3) {
        Some(path) => std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .lines()
            .filter_map(|l| l.split(';').next())
            .filter(|n| n.starts_with('+'))
            .map(str::to_string)
            .collect(),
        None => vec!["+441632960001".into()],
    };
    assert!(!numbers.is_empty(), "no numbers to dial");

    let bind = if target.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = UdpSocket::bind(bind).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total = u64::from(rate) * seconds;
    let mut rtts_us: Vec<u64> = Vec::with_capacity(total as usize);
    let mut lost = 0u64;
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let number = &numbers[i as usize % numbers.len()];
        let branch = format!("z9hG4bKprobe{i}");
        let call_id = format!("probe-{i}-{}", std::process::id());
        let invite = format!(
            "INVITE sip:{number}@{target};user=phone SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:probe@{local}>;tag=p{i}\r\n\
             To: <sip:{number}@{target};user=phone>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:probe@{local}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let sent = Instant::now();
        sock.send_to(invite.as_bytes(), target).expect("send");
        // Wait for this call's final answer (skip stray retransmissions of older ones).
        let answer = loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if text.contains(&call_id) && !text.starts_with("SIP/2.0 1") {
                        break Some((sent.elapsed(), text.into_owned()));
                    }
                }
                Err(_) => break None,
            }
        };
        let Some((rtt, text)) = answer else {
            lost += 1;
            continue;
        };
        rtts_us.push(rtt.as_micros() as u64);
        let to = text
            .split("\r\n")
            .find(|l| l.starts_with("To:"))
            .unwrap_or("To: <sip:x@invalid>");
        let ack = format!(
            "ACK sip:{number}@{target};user=phone SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:probe@{local}>;tag=p{i}\r\n\
             {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let _ = sock.send_to(ack.as_bytes(), target);
    }
    rtts_us.sort_unstable();
    let pct = |p: f64| -> u64 {
        if rtts_us.is_empty() {
            return 0;
        }
        let idx = ((rtts_us.len() as f64 * p).ceil() as usize).clamp(1, rtts_us.len()) - 1;
        rtts_us[idx]
    };
    println!(
        "PROBE sent={total} answered={} lost={lost} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        rtts_us.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        rtts_us.last().copied().unwrap_or(0)
    );
}
