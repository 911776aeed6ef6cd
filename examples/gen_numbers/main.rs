//! Deterministic large ENUM test sets: a master file, admin-import CSV/NDJSON and
//! dnsperf query files for up to 10^9 numbers, written as a stream (bounded memory).
//!
//! ```text
//! cargo run --release --example gen_numbers -- --numbers 100000000 --out /var/tmp/gen \
//!     --seed 1 --formats zone,csv
//! ```
//!
//! The record mix is that of the peers' `gen-zone.py` (see `set.rs`); the same options
//! give byte-identical files. A test tool, so an example rather than a shipped binary:
//! operators never need it, and it stays out of the release build and packages.
//! Must not use the server's internals: it writes what a user would feed to `enroute`.

mod set;

use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

/// Writes numbers.zone, numbers.csv, numbers.ndjson, dnsperf-present.txt,
/// dnsperf-absent.txt, present.txt, absent.txt (as --formats asks) and manifest.txt.
#[derive(Parser)]
#[command(name = "gen_numbers")]
struct Args {
    /// Numbers in the zone.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    numbers: u64,
    /// Numbers of the prefixes deliberately left out (for not-found queries).
    #[arg(long, default_value_t = 1000)]
    absent: u64,
    /// E.164 prefixes, comma-separated; the numbers are spread evenly over them.
    #[arg(long, default_value = "+1555", value_delimiter = ',')]
    prefix: Vec<String>,
    /// Digits after the prefix (default: the fewest that leave each prefix at least 3/4 unused).
    #[arg(long)]
    digits: Option<u32>,
    #[arg(long, default_value_t = 6116)]
    seed: u64,
    /// Zone origin (trailing dot); the prefixes must fall below it.
    #[arg(long, default_value = "e164.arpa.")]
    origin: String,
    /// TTL of the NAPTR records.
    #[arg(long, default_value_t = 3600)]
    ttl: u32,
    /// SOA minimum (negative TTL).
    #[arg(long, default_value_t = 300)]
    neg_ttl: u32,
    /// Address of the in-zone NS glue.
    #[arg(long, default_value = "127.0.0.1")]
    ns_addr: String,
    /// Files to write: zone,csv,ndjson,queries,lists or all.
    #[arg(long, default_value = "zone,csv")]
    formats: String,
    /// Output directory (created when missing).
    #[arg(short, long)]
    out: PathBuf,
}

fn main() {
    let a = Args::parse();
    let formats = match set::Formats::parse(&a.formats) {
        Ok(f) => f,
        Err(e) => fail(&format!("--formats: {e}")),
    };
    let options = set::Options {
        numbers: a.numbers,
        absent: a.absent,
        prefixes: a.prefix,
        digits: a.digits,
        seed: a.seed,
        origin: a.origin,
        ttl: a.ttl,
        neg_ttl: a.neg_ttl,
        ns_addr: a.ns_addr,
        formats,
        out: a.out,
    };
    let start = Instant::now();
    let s = set::generate(&options).unwrap_or_else(|e| fail(&e.to_string()));
    let secs = start.elapsed().as_secs_f64();
    let bytes: u64 = s.files.iter().map(|(_, b)| b).sum();
    eprintln!(
        "gen_numbers: {} numbers ({} digits after the prefix), {} NAPTR records, {} absent -> {} in {secs:.1} s ({:.0} numbers/s, {:.0} MB/s)",
        s.numbers,
        s.digits,
        s.naptr_records,
        s.absent,
        options.out.display(),
        s.numbers as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    for (name, b) in &s.files {
        eprintln!("  {name:<20} {b} bytes");
    }
    for ((_, name, _), n) in set::CATEGORIES.iter().zip(s.categories) {
        eprintln!("  {name:<10} {n}");
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("gen_numbers: {msg}");
    std::process::exit(2);
}
