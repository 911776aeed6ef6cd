//! Benchmark driver for `scripts/bench` (not a test): zone load time and memory, and
//! routing decisions per second on one core.
//!
//! `bench load FILE ORIGIN` loads a master file the way `serve` does and prints
//! `load_s`, `rss_kb` (after load, text freed), `peak_rss_kb` and record counts.
//! `bench route FILE ORIGIN SECONDS` loads the file plus a block of wildcard ranges, then
//! measures `Router::route_into` with one reused decision (as a SIP worker calls it) for
//! exact hits, wildcard hits and absent numbers on one thread.
//! `bench route-lists SOURCE ORIGIN SECONDS PRESENT ABSENT [MAX]` builds the zone from a
//! store (`SOURCE` an `enroute.db`, the way `serve` starts from it) or a master file, then
//! measures `route_into` over the first `MAX` (default 10,000,000) numbers of each list
//! (one E.164 number a line, shuffled: `gen_numbers --formats lists`), so the decision
//! rate can be taken on a zone of 10^8 numbers fed through the admin API (`scripts/bench-scale`).
//! `bench compact COUNT ORIGIN SECONDS` builds a zone of COUNT numbers of the generator's
//! mix (`examples/gen_numbers`, prefix +1555) straight in memory, each number's records
//! given whole ([`ZoneBuilder::add_number`], no zone file, no store), and prints its
//! bytes per number (RSS), the number set's and shape table's own bytes, and decisions
//! per second on one thread over present and absent numbers: the compact form measured
//! at 10^8 where the store cannot yet start that large a zone in time.
//! `bench make-store COUNT ORIGIN ABSENT SEED STORE` builds the same zone the way
//! `compact` does (the generator's set for that seed, as `gen_numbers` makes it) and
//! saves it into the store file `STORE` (created), as the zone's copy of record: a store
//! of 10^8 numbers for `scripts/bench-scale --skip-import`, without an import.

#[allow(dead_code)]
#[path = "gen_numbers/set.rs"]
mod set;

use enroute::config::gateway::Template;
use enroute::config::{Config, GatewayConfig};
use enroute::keeper::stored;
use enroute::name::Name;
use enroute::name::TYPE_NAPTR;
use enroute::resolve::Router;
use enroute::store::Store;
use enroute::zone::index::pack_rrsets;
use enroute::zone::{Zone, ZoneSet};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn load(path: &str, origin: &Name, extra: &str) -> (Zone, f64) {
    let t = Instant::now();
    let mut text = std::fs::read(path).expect("read zone");
    text.extend_from_slice(extra.as_bytes());
    let parsed = enroute::zone::master::parse(&text, path, origin, None);
    drop(text);
    let (zone, _) = Zone::finish(parsed, origin).expect("zone loads");
    (zone, t.elapsed().as_secs_f64())
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (cmd, path, origin) = (
        args[1].as_str(),
        args[2].as_str(),
        Name::from_text(&args[3]).unwrap(),
    );
    match cmd {
        "load" => {
            let (zone, secs) = load(path, &origin, "");
            println!("load_s={secs:.2}");
            println!("rss_kb={}", status_kb("VmRSS:"));
            println!("peak_rss_kb={}", status_kb("VmHWM:"));
            println!("records={}", zone.stats.records);
            println!("naptr_records={}", zone.stats.naptr_records);
            println!("names={}", zone.stats.nodes);
            black_box(&zone);
        }
        "route" => {
            let seconds: f64 = args[4].parse().unwrap();
            // Wildcard ranges +1777 000..999 xxxx, where the generated zone has no numbers.
            let mut extra = String::new();
            for p in 0..1000 {
                let labels: String = format!("{p:03}")
                    .chars()
                    .rev()
                    .map(|c| format!("{c}."))
                    .collect();
                extra.push_str(&format!(
                    "*.{labels}7.7.7.1 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^\\\\+(.*)$!sip:\\\\1@wild.example.net!\" .\n"
                ));
            }
            let (zone, _) = load(path, &origin, &extra);
            let numbers: Vec<String> =
                std::fs::read_to_string(std::path::Path::new(path).with_file_name("numbers.txt"))
                    .expect("numbers.txt from gen-zone.py")
                    .lines()
                    .map(str::to_string)
                    .collect();
            let present: std::collections::HashSet<&str> =
                numbers.iter().map(String::as_str).collect();
            let mut rng = Lcg(6116);
            let sequential: Vec<&str> = numbers.iter().map(String::as_str).collect();
            let mut exact: Vec<&str> = numbers.iter().map(String::as_str).collect();
            for i in (1..exact.len()).rev() {
                exact.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
            let wildcard: Vec<String> = (0..1_000_000)
                .map(|_| format!("+1777{:07}", rng.next() % 10_000_000))
                .collect();
            let mut absent = Vec::new();
            while absent.len() < 1_000_000 {
                let n = format!("+1555{:07}", rng.next() % 10_000_000);
                if !present.contains(n.as_str()) {
                    absent.push(n);
                }
            }
            let mut config = Config::builtin();
            config.gateways = vec![GatewayConfig {
                prefix: "+1".into(),
                uris: vec![Template::parse("sip:{e164}@pstn-gw.example.net;user=phone").unwrap()],
            }];
            let router = Router::new(&config, Arc::new(ZoneSet::new(vec![zone])));
            let hot: Vec<&str> = exact.iter().take(100).copied().collect();
            let classes: [(&str, Vec<&str>, u16); 5] = [
                ("exact", exact, 302),
                ("exact_hot100", hot, 302),
                ("exact_in_zone_order", sequential, 302),
                (
                    "wildcard",
                    wildcard.iter().map(String::as_str).collect(),
                    302,
                ),
                ("absent", absent.iter().map(String::as_str).collect(), 302),
            ];
            let only = std::env::var("BENCH_CLASS").ok();
            for (name, inputs, want) in classes {
                if only.as_deref().is_some_and(|o| o != name) {
                    continue;
                }
                // check once that the class does what it says
                let d = router.route(inputs[0], false);
                assert_eq!(d.status, want, "{name}: {d:?}");
                if name.starts_with("absent") {
                    assert_eq!(d.source, enroute::resolve::Source::Gateway);
                } else {
                    assert_eq!(d.source, enroute::resolve::Source::Local);
                }
                let (n, secs) = decide(&router, &inputs, seconds);
                println!("{name}_decisions_per_s={:.0}", n as f64 / secs);
                println!("{name}_ns_per_decision={:.0}", secs * 1e9 / n as f64);
            }
        }
        "route-lists" => route_lists(&args[2..], &origin),
        "compact" => compact(&args[2..], &origin),
        "make-store" => make_store(&args[2..], &origin),
        other => panic!("unknown command {other}"),
    }
}

/// `route-lists SOURCE ORIGIN SECONDS PRESENT ABSENT [MAX]`: see the module comment.
fn route_lists(args: &[String], origin: &Name) {
    let (source, seconds) = (&args[0], args[2].parse::<f64>().expect("SECONDS"));
    let max: usize = args.get(5).map_or(10_000_000, |m| m.parse().expect("MAX"));
    let t = Instant::now();
    let zone = if source.ends_with(".db") {
        let store = Store::open_reader(std::path::Path::new(source))
            .expect("open the store")
            .expect("the store exists");
        stored::load(&store, origin).expect("the zone loads from the store")
    } else {
        load(source, origin, "").0
    };
    println!("load_s={:.2}", t.elapsed().as_secs_f64());
    println!("rss_kb={}", status_kb("VmRSS:"));
    println!("peak_rss_kb={}", status_kb("VmHWM:"));
    println!("naptr_records={}", zone.stats.naptr_records);
    let present_text = std::fs::read_to_string(&args[3]).expect("PRESENT list");
    let absent_text = std::fs::read_to_string(&args[4]).expect("ABSENT list");
    let present: Vec<&str> = present_text.lines().take(max).collect();
    let absent: Vec<&str> = absent_text.lines().take(max).collect();
    // A gateway for the numbers' country code, so that an absent number gets a real
    // decision (302 to the gateway) as on a carrier's SIP path.
    let cc = present.first().and_then(|n| n.get(..2)).unwrap_or("+1");
    let mut config = Config::builtin();
    config.gateways = vec![GatewayConfig {
        prefix: cc.into(),
        uris: vec![Template::parse("sip:{e164}@pstn-gw.example.net;user=phone").unwrap()],
    }];
    let router = Router::new(&config, Arc::new(ZoneSet::new(vec![zone])));
    let hot: Vec<&str> = present.iter().take(100).copied().collect();
    for (name, inputs) in [
        ("exact", &present),
        ("exact_hot100", &hot),
        ("absent", &absent),
    ] {
        let want = if name == "absent" {
            enroute::resolve::Source::Gateway
        } else {
            enroute::resolve::Source::Local
        };
        // The class does what it says for (nearly) all its inputs: a store that has had
        // a merge delta since the lists were made lacks the numbers it deleted.
        let sample = &inputs[..inputs.len().min(1000)];
        let hits = sample
            .iter()
            .filter(|i| {
                let d = router.route(i, false);
                (d.status, d.source) == (302, want)
            })
            .count();
        assert!(
            hits * 10 >= sample.len() * 9,
            "{name}: only {hits} of {} give a 302 from {want:?}",
            sample.len()
        );
        let (n, secs) = decide(&router, inputs, seconds);
        println!("{name}_inputs={}", inputs.len());
        println!("{name}_as_named={:.3}", hits as f64 / sample.len() as f64);
        println!("{name}_decisions_per_s={:.0}", n as f64 / secs);
        println!("{name}_ns_per_decision={:.0}", secs * 1e9 / n as f64);
    }
}

/// `make-store COUNT ORIGIN ABSENT SEED STORE`: see the module comment.
fn make_store(args: &[String], origin: &Name) {
    let count: u64 = args[0].parse().expect("COUNT");
    let absent = args[2].parse().expect("ABSENT");
    let options = generator_options(count, absent, args[3].parse().expect("SEED"), origin);
    let t = Instant::now();
    let zone = generated_zone(&options, origin, |_, _| {});
    println!("numbers={}", zone.stats.nodes);
    println!("build_s={:.1}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut store = Store::open(std::path::Path::new(&args[4])).expect("open the store");
    stored::save(&mut store, &zone, None).expect("save the zone");
    println!("write_s={:.1}", t.elapsed().as_secs_f64());
    println!("peak_rss_kb={}", status_kb("VmHWM:"));
}

/// The options `gen_numbers` takes by default, for `count` numbers, `absent` absent ones
/// and `seed`.
fn generator_options(count: u64, absent: u64, seed: u64, origin: &Name) -> set::Options {
    set::Options {
        numbers: count,
        absent,
        prefixes: vec!["+1555".into()],
        digits: None,
        seed,
        origin: origin.to_string(),
        ttl: 3600,
        neg_ttl: 300,
        ns_addr: "127.0.0.1".into(),
        formats: set::Formats::default(),
        out: std::env::temp_dir(),
    }
}

/// The generator's set for `options` built straight into a compact zone (each number's
/// records given whole); `each` sees every number (`+digits`) and whether it is present.
fn generated_zone(
    options: &set::Options,
    origin: &Name,
    mut each: impl FnMut(&[u8], bool),
) -> Zone {
    let head = format!(
        "$ORIGIN {origin}\n@ 3600 SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300\n\
         @ 3600 NS ns.example.net.\n"
    );
    let mut parsed = enroute::zone::master::parse(head.as_bytes(), "generated", origin, None);
    let prefix_len = 1 + enroute::zone::number_prefix(origin).len();
    set::for_each_number(options, |e164, rdatas| {
        let Some(rdatas) = rdatas else {
            each(e164, false);
            return;
        };
        let refs: Vec<&[u8]> = rdatas.iter().map(Vec::as_slice).collect();
        let block = pack_rrsets(&[(TYPE_NAPTR, 3600, refs)]).expect("records");
        parsed
            .builder
            .add_number(&e164[prefix_len..], &block)
            .expect("the number interns");
        each(e164, true);
    })
    .expect("the generator's plan");
    Zone::finish(parsed, origin).expect("the zone builds").0
}

/// `compact COUNT ORIGIN SECONDS`: see the module comment.
fn compact(args: &[String], origin: &Name) {
    let count: u64 = args[0].parse().expect("COUNT");
    let seconds: f64 = args[2].parse().expect("SECONDS");
    let options = generator_options(count, (count / 100).clamp(1000, 1_000_000), 6116, origin);
    // One number in `keep_every` kept as a present input (about 4M), the absent ones all.
    let keep_every = (count / 4_000_000).max(1);
    let t = Instant::now();
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe { libc::malloc_trim(0) };
    let samples = (count / keep_every + options.absent) as usize * 8;
    let rss_before = status_kb("VmRSS:") + samples as u64 / 1024;
    let (mut present, mut absent, mut seen) = (Vec::new(), Vec::new(), 0u64);
    let zone = generated_zone(&options, origin, |e164, is_present| {
        // Kept as integers (8 bytes, not a String each) until the memory is measured.
        let digits = e164[1..]
            .iter()
            .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
        if !is_present {
            absent.push(digits);
            return;
        }
        if seen.is_multiple_of(keep_every) {
            present.push(digits);
        }
        seen += 1;
    });
    let build_s = t.elapsed().as_secs_f64();
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe { libc::malloc_trim(0) };
    let rss = status_kb("VmRSS:").saturating_sub(rss_before);
    let numbers = zone.tree.numbers().expect("a compact zone");
    println!("numbers={}", numbers.len());
    println!("build_s={build_s:.1}");
    println!("rss_kb={rss}");
    println!("peak_rss_kb={}", status_kb("VmHWM:"));
    println!(
        "rss_bytes_per_number={:.1}",
        rss as f64 * 1024.0 / numbers.len() as f64
    );
    println!(
        "set_bytes_per_number={:.1}",
        numbers.set_bytes() as f64 / numbers.len() as f64
    );
    println!("shapes={}", numbers.shape_count());
    println!("shape_table_bytes={}", numbers.shape_bytes());
    let as_text = |v: Vec<u64>| -> Vec<String> { v.into_iter().map(|n| format!("+{n}")).collect() };
    let (mut present, mut absent) = (as_text(present), as_text(absent));
    let mut rng = Lcg(19);
    for list in [&mut present, &mut absent] {
        for i in (1..list.len()).rev() {
            list.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
    }
    let mut config = Config::builtin();
    config.gateways = vec![GatewayConfig {
        prefix: "+1".into(),
        uris: vec![Template::parse("sip:{e164}@pstn-gw.example.net;user=phone").unwrap()],
    }];
    let router = Router::new(&config, Arc::new(ZoneSet::new(vec![zone])));
    for (name, list, want) in [
        ("exact", &present, enroute::resolve::Source::Local),
        ("absent", &absent, enroute::resolve::Source::Gateway),
    ] {
        let inputs: Vec<&str> = list.iter().map(String::as_str).collect();
        for i in inputs.iter().take(1000) {
            let d = router.route(i, false);
            assert_eq!((d.status, d.source), (302, want), "{name} {i}");
        }
        let (n, secs) = decide(&router, &inputs, seconds);
        println!("{name}_inputs={}", inputs.len());
        println!("{name}_decisions_per_s={:.0}", n as f64 / secs);
        println!("{name}_ns_per_decision={:.0}", secs * 1e9 / n as f64);
    }
}

/// Decisions over `inputs` in a loop for `seconds` with one reused decision, as a SIP
/// worker makes them: (decisions, seconds taken).
fn decide(router: &Router, inputs: &[&str], seconds: f64) -> (u64, f64) {
    let deadline = Duration::from_secs_f64(seconds);
    let mut decision = enroute::resolve::Decision::default();
    let t = Instant::now();
    let mut n = 0u64;
    loop {
        for chunk in inputs.chunks(4096) {
            for input in chunk {
                router.route_into(black_box(input), false, &mut decision);
                black_box(&decision);
            }
            n += chunk.len() as u64;
            if t.elapsed() >= deadline {
                return (n, t.elapsed().as_secs_f64());
            }
        }
    }
}
