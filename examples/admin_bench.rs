//! Load for the admin API (see `scripts/bench-admin`): PUT latency one at a time, PUT
//! throughput from several connections, and one bulk import, over keep-alive HTTP/1.1.
//!
//! ```text
//! admin_bench put ADDR TOKEN COUNT FIRST_NUMBER            # sequential, one connection
//! admin_bench par ADDR TOKEN CONNECTIONS COUNT FIRST_NUMBER
//! admin_bench import ADDR TOKEN FILE.csv
//! ```
//! Prints one line of `key=value` figures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    auth: String,
}

impl Client {
    fn new(addr: &str, token: &str) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            auth: format!("Bearer {token}"),
        }
    }

    /// Sends one request, reads the answer; returns the status.
    fn send(&mut self, method: &str, path: &str, ctype: &str, body: &[u8]) -> u16 {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            self.auth,
            body.len()
        );
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).unwrap();
        if status >= 300 {
            eprintln!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        status
    }

    fn put(&mut self, number: u64, i: u64) -> u16 {
        let body = format!(
            r#"{{"ttl":300,"routes":[{{"uri":"sip:u{i}@bench.example.net","order":100,"preference":10}}]}}"#
        );
        self.send(
            "PUT",
            &format!("/v1/numbers/+{number}"),
            "application/json",
            body.as_bytes(),
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> u128 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_micros()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "put" => {
            let count: u64 = arg(3).parse().unwrap();
            let first: u64 = arg(4).parse().unwrap();
            let mut c = Client::new(&arg(1), &arg(2));
            let mut times = Vec::with_capacity(count as usize);
            for i in 0..count {
                let t = Instant::now();
                assert_eq!(c.put(first + i, i), 200);
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "PUT sequential count={count} p50_us={} p90_us={} p99_us={} max_us={}",
                percentile(&times, 0.5),
                percentile(&times, 0.9),
                percentile(&times, 0.99),
                times.last().unwrap().as_micros()
            );
        }
        "par" => {
            let conns: u64 = arg(3).parse().unwrap();
            let count: u64 = arg(4).parse().unwrap();
            let first: u64 = arg(5).parse().unwrap();
            let per = count / conns;
            let start = Instant::now();
            let threads: Vec<_> = (0..conns)
                .map(|t| {
                    let (addr, token) = (arg(1), arg(2));
                    std::thread::spawn(move || {
                        let mut c = Client::new(&addr, &token);
                        let mut times = Vec::new();
                        for i in 0..per {
                            let t0 = Instant::now();
                            assert_eq!(c.put(first + t * per + i, i), 200);
                            times.push(t0.elapsed());
                        }
                        times
                    })
                })
                .collect();
            let mut times: Vec<Duration> = threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect();
            let secs = start.elapsed().as_secs_f64();
            times.sort();
            println!(
                "PUT concurrent connections={conns} count={} seconds={secs:.2} puts_per_s={:.0} p50_us={} p99_us={}",
                times.len(),
                times.len() as f64 / secs,
                percentile(&times, 0.5),
                percentile(&times, 0.99)
            );
        }
        "import" => {
            let body = std::fs::read(arg(3)).unwrap();
            let mut c = Client::new(&arg(1), &arg(2));
            let start = Instant::now();
            let status = c.send("POST", "/v1/numbers:import", "text/csv", &body);
            println!(
                "IMPORT status={status} bytes={} seconds={:.2}",
                body.len(),
                start.elapsed().as_secs_f64()
            );
        }
        _ => {
            eprintln!("usage: admin_bench put|par|import ADDR TOKEN …");
            std::process::exit(2);
        }
    }
}
