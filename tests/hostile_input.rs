//! Broken input never panics: seeded random mutations of a valid master file, of a valid
//! configuration and of routing inputs. Zone and config errors must carry a line or a
//! key; the router must answer every input with a decision.

use enroute::config::Config;
use enroute::name::Name;
use enroute::resolve::Router;
use enroute::zone::{Zone, ZoneSet};
use std::path::Path;
use std::sync::Arc;

const ZONE: &str = include_str!("../zones/2.3.6.1.4.4.e164.arpa.zone");
const CONFIG: &str = include_str!("../config/enroute.toml");

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that matter to the grammars under test, plus anything at all.
const INTERESTING: &[u8] = b"\\\"();$@.*!+-:=[]{}#\n\t 0123456789\x00\xff";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let pos = if v.is_empty() { 0 } else { rng.below(v.len()) };
        match rng.below(6) {
            0 if !v.is_empty() => {
                v.remove(pos);
            }
            1 => v.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
            2 => v.insert(pos, rng.next() as u8),
            3 if !v.is_empty() => v[pos] = INTERESTING[rng.below(INTERESTING.len())],
            4 => {
                // duplicate a slice (long lines, repeated records)
                let end = (pos + rng.below(64)).min(v.len());
                let chunk = v[pos..end].to_vec();
                v.splice(pos..pos, chunk);
            }
            _ => v.truncate(pos),
        }
    }
    v
}

#[test]
fn mutated_master_files_give_line_numbered_errors() {
    let origin = Name::from_text("2.3.6.1.4.4.e164.arpa.").unwrap();
    let mut rng = Rng(0x5eed_2026);
    let (mut ok, mut rejected) = (0, 0);
    for _ in 0..3000 {
        let text = mutate(&mut rng, ZONE.as_bytes());
        let lines = text.iter().filter(|b| **b == b'\n').count() as u32 + 1;
        match Zone::from_master(&text, "m.zone", &origin, None) {
            Ok(_) => ok += 1,
            Err(e) => {
                rejected += 1;
                assert!(!e.diagnostics.is_empty());
                for d in e.diagnostics.iter().filter(|d| !d.warning) {
                    assert!(
                        d.line >= 1 && d.line <= lines,
                        "line {} of {lines}: {d}",
                        d.line
                    );
                    assert!(d.to_string().starts_with("m.zone:"), "{d}");
                }
            }
        }
    }
    // The mutations really produce both outcomes.
    assert!(ok > 100 && rejected > 100, "ok {ok}, rejected {rejected}");
}

#[test]
fn mutated_configs_name_a_key_or_a_line() {
    let mut rng = Rng(0xc0ff_ee00);
    let mut rejected = 0;
    for _ in 0..3000 {
        let text = mutate(&mut rng, CONFIG.as_bytes());
        let text = String::from_utf8_lossy(&text);
        if let Err(e) = Config::parse(&text, "m.toml", Path::new("config"), None) {
            rejected += 1;
            let msg = e.to_string();
            assert!(msg.starts_with("m.toml:"), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }
    assert!(rejected > 100, "rejected {rejected}");
}

#[test]
fn any_routing_input_gets_a_decision() {
    let origin = Name::from_text("2.3.6.1.4.4.e164.arpa.").unwrap();
    let (zone, _) = Zone::from_master(ZONE.as_bytes(), "z", &origin, None).unwrap();
    let mut config = Config::parse(CONFIG, "c.toml", Path::new("config"), None).unwrap();
    // Local data only: this synchronous router has no upstream to wait for.
    config.enum_.suffixes.clear();
    let router = Router::new(&config, Arc::new(ZoneSet::new(vec![zone])));
    let seeds = [
        "+441632960001",
        "sip:+441632960002@x.example;user=phone",
        "sips:%2B441632960003@x.example",
        "tel:960004;phone-context=+44-1632",
        "01632960005",
        "+441632971234",
    ];
    let mut rng = Rng(42);
    for i in 0..20_000 {
        let seed = seeds[i % seeds.len()];
        let input = String::from_utf8_lossy(&mutate(&mut rng, seed.as_bytes())).into_owned();
        let d = router.route(&input, i % 2 == 0);
        assert!([302, 404, 416, 484].contains(&d.status), "{input:?}: {d:?}");
        assert_eq!(d.status == 302, !d.contacts.is_empty(), "{input:?}");
    }
}

#[test]
fn garbage_rdata_for_every_type_hickory_parses() {
    let origin = Name::from_text("example.").unwrap();
    let types = [
        "CAA",
        "SSHFP",
        "TLSA",
        "HINFO",
        "SVCB",
        "HTTPS",
        "CERT",
        "CSYNC",
        "OPENPGPKEY",
        "SMIMEA",
        "NULL",
        "ANAME",
        "TYPE65280",
        "NAPTR",
        "SOA",
        "MX",
        "SRV",
        "TXT",
        "A",
        "AAAA",
        "NS",
        "CNAME",
        "PTR",
        "DNAME",
    ];
    let words = [
        "0",
        "1",
        "65536",
        "-1",
        "issue",
        "\"x\"",
        "\\#",
        "4",
        "deadbeef",
        "zz",
        ".",
        "@",
        "a.b.",
        "alpn=h2",
        "port=99999",
        "mandatory=alpn",
        "ipv4hint=1.2.3.4",
        "\"\\255\"",
        "(",
        ")",
        "\"",
        "2001:db8::1",
        "1.2.3.4",
    ];
    let mut rng = Rng(7);
    for i in 0..20_000 {
        let t = types[i % types.len()];
        let n = rng.below(6);
        let data: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
        let text = format!(
            "$TTL 60\n@ SOA ns. h. 1 2 3 4 5\nx {t} {}\n",
            data.join(" ")
        );
        // Either outcome is fine; a panic fails the test.
        if let Err(e) = Zone::from_master(text.as_bytes(), "g.zone", &origin, None) {
            for d in &e.diagnostics {
                assert!(d.line == 3 || d.line == 4, "{text}: {d}");
            }
        }
    }
}
