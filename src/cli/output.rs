//! How the commands' answers read on a terminal: a routing decision, entries and their
//! routes, the API's JSON pretty-printed, and a client failure as `enroute:` lines.
//!
//! Owns: every text rendering of JSON the commands print, and the one renderer of a
//! routing decision ([`decision_text`]): `enroute route` serializes a local decision
//! and prints it as it prints the server's (`route --url`), so the two read the same by
//! construction. Must not touch: what is asked or how (the command files, `setup`,
//! `enroute::client`), nor the library's decision types: it reads a decision by its
//! JSON, the admin API's shape.

use enroute::client::{ClientError, Endpoint};
use serde_json::Value;
use std::fmt::Write as _;
use std::process::ExitCode;

/// Prints a client failure (one line per problem field) and gives its exit code.
pub fn report(e: &ClientError, endpoint: Option<&Endpoint>) -> ExitCode {
    for line in e.to_string().lines() {
        eprintln!("enroute: {line}");
    }
    if let (ClientError::Refused(p), Some(ep)) = (e, endpoint)
        && p.status == 401
    {
        eprintln!("enroute: the token sent came from {}", ep.token_from);
    }
    ExitCode::from(e.exit_code())
}

/// Indents JSON text the way `serde_json::to_string_pretty` does, keeping the keys in
/// the order the server wrote them (parsing into a map would sort them): the text is
/// transcoded token by token into serde_json's pretty writer. Text that is not JSON
/// comes back unchanged.
pub fn pretty_json(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len() * 2);
    let mut de = serde_json::Deserializer::from_slice(raw);
    let mut ser = serde_json::Serializer::pretty(&mut out);
    match serde_transcode::transcode(&mut de, &mut ser).and_then(|()| de.end()) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

// ---------------------------------------------------------------------------------
// Entries (numbers and prefixes) and their routes.

/// One entry (a number or a prefix) with its routes: the entry, two spaces, then one
/// route per line, the later ones aligned under the first.
///
/// ```text
/// +441632960001  sip:alice@pbx.example.net  (order 100, pref 10)
///                tel:+441632960001  (order 100, pref 20)
/// ```
pub fn entry_text(v: &Value, key: &str) -> String {
    let name = v.get(key).and_then(Value::as_str).unwrap_or("?");
    let routes = v.get("routes").and_then(Value::as_array);
    let mut out = String::new();
    let indent = " ".repeat(name.chars().count() + 2);
    match routes.filter(|r| !r.is_empty()) {
        None => {
            let _ = writeln!(out, "{name}  (no routes)");
        }
        Some(routes) => {
            for (i, r) in routes.iter().enumerate() {
                let lead = if i == 0 {
                    format!("{name}  ")
                } else {
                    indent.clone()
                };
                let _ = writeln!(out, "{lead}{}", route_text(r));
            }
        }
    }
    out
}

/// One route as a person reads it: the URI (or `pstn rn=… npdi`, or the regexp), its
/// service when given, and its order and preference.
pub fn route_text(r: &Value) -> String {
    let text = |key: &str| r.get(key).and_then(Value::as_str);
    let mut s = if let Some(uri) = text("uri") {
        uri.to_string()
    } else if r.get("pstn").is_some() {
        let mut p = String::from("pstn");
        if let Some(rn) = text("rn") {
            let _ = write!(p, " rn={rn}");
        }
        if r.get("npdi").and_then(Value::as_bool) == Some(true) {
            p.push_str(" npdi");
        }
        p
    } else {
        let flags = text("flags")
            .map(|f| format!(" flags {f:?}"))
            .unwrap_or_default();
        format!("regexp {}{flags}", text("regexp").unwrap_or("?"))
    };
    if let Some(service) = text("service") {
        let _ = write!(s, " [{service}]");
    }
    let num = |key: &str| r.get(key).and_then(Value::as_u64).unwrap_or(0);
    let _ = write!(s, "  (order {}, pref {})", num("order"), num("preference"));
    s
}

/// The detail line under one entry's routes: `ttl 300, zone 2.3.6.1.4.4.e164.arpa.`.
pub fn entry_footer(v: &Value) -> String {
    let ttl = v.get("ttl").and_then(Value::as_u64).unwrap_or(0);
    let zone = v.get("zone").and_then(Value::as_str).unwrap_or("-");
    format!("ttl {ttl}, zone {zone}")
}

/// The `warnings` an answer carries (strings, or objects with a field and detail).
pub fn warnings(v: &Value) -> Vec<String> {
    let Some(list) = v.get("warnings").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|w| match w {
            Value::String(s) => s.clone(),
            Value::Object(o) => {
                let get = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
                match (get("field"), get("detail")) {
                    ("", "") => w.to_string(),
                    ("", d) => d.to_string(),
                    (f, d) => format!("{f}: {d}"),
                }
            }
            other => other.to_string(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// A routing decision.

/// A routing decision (`GET /v1/route/…`, or a local one serialized) as text, the
/// lines `enroute route` prints.
pub fn decision_text(v: &Value) -> String {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let or_dash = |key: &str| text(v, key).unwrap_or_else(|| "-".into());
    let mut s = String::new();
    let status = v.get("status").and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(s, "{status} {}", or_dash("reason"));
    for c in v
        .get("contacts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let q = c.get("q").and_then(Value::as_f64).unwrap_or(0.0);
        let _ = writeln!(
            s,
            "Contact: <{}>;q={q:.1}",
            text(c, "uri").unwrap_or_default()
        );
    }
    for key in ["number", "source", "zone", "suffix"] {
        let _ = writeln!(s, "{key}: {}", or_dash(key));
    }
    let _ = writeln!(
        s,
        "ttl: {}",
        v.get("ttl").and_then(Value::as_u64).unwrap_or(0)
    );
    let _ = writeln!(s, "detail: {}", text(v, "detail").unwrap_or_default());
    let trace = v.get("trace").and_then(Value::as_array);
    if trace.is_some_and(|t| !t.is_empty()) {
        let _ = writeln!(s, "trace:");
    }
    for step in trace.into_iter().flatten() {
        trace_step_text(Step(step), &mut s);
    }
    s
}

/// One step of a decision's trace, by its `step`.
fn trace_step_text(t: Step<'_>, s: &mut String) {
    match t.text("step") {
        "number" => number_step(t, s),
        "lookup" => lookup_step(t, s),
        "record" => {
            let depth = t.opt_num("depth").unwrap_or(0) as usize;
            let _ = writeln!(
                s,
                "  {}record {} at {}: {}: {}",
                "  ".repeat(depth.min(16)),
                t.text("naptr"),
                t.text("domain"),
                t.text("outcome"),
                t.text("detail")
            );
        }
        "gateway" => {
            let uris = t.list("uris");
            let _ = writeln!(
                s,
                "  gateway {} for {}: {}",
                t.text("prefix"),
                t.text("number"),
                if uris.is_empty() {
                    "no allowed URI".into()
                } else {
                    uris.join(", ")
                }
            );
        }
        "cache" => {
            let _ = writeln!(
                s,
                "  cache: {}{}",
                t.text("result"),
                t.opt_num("ttl")
                    .map(|t| format!(" ({t} s left)"))
                    .unwrap_or_default()
            );
        }
        "registrar" => {
            let _ = writeln!(
                s,
                "  registrar: {} has {} registered contact(s)",
                t.text("aor"),
                t.opt_num("contacts").unwrap_or(0)
            );
        }
        "truncated" => {
            let _ = writeln!(
                s,
                "  sip.max_contacts kept {}, dropped {}",
                t.opt_num("kept").unwrap_or(0),
                t.opt_num("dropped").unwrap_or(0)
            );
        }
        other => {
            let _ = writeln!(s, "  {other}: {}", t.0);
        }
    }
}

/// `  number: "01632960001" -> +441632960001 (dial-plan rule 1)`; a URI's scheme
/// comes first (`sip: "alice" -> …`).
fn number_step(t: Step<'_>, s: &mut String) {
    let _ = writeln!(
        s,
        "  number: {}{:?} -> {}{}",
        t.opt_text("scheme")
            .map(|x| format!("{x}: "))
            .unwrap_or_default(),
        t.text("dialled"),
        t.text("result"),
        t.opt_num("rule")
            .map(|r| format!(" (dial-plan rule {r})"))
            .unwrap_or_default()
    );
}

/// The lookup line, then each record found and the note, indented beneath it.
fn lookup_step(t: Step<'_>, s: &mut String) {
    let _ = writeln!(
        s,
        "  lookup {} NAPTR (suffix {}, {}{}): {}{}",
        t.text("domain"),
        t.text("suffix"),
        t.text("via"),
        t.opt_text("zone")
            .map(|z| format!(" zone {z}"))
            .unwrap_or_default(),
        t.text("result"),
        t.opt_num("ttl")
            .map(|t| format!(", ttl {t}"))
            .unwrap_or_default()
    );
    for r in t.list("records") {
        let _ = writeln!(s, "    NAPTR {r}");
    }
    if let Some(n) = t.opt_text("note") {
        let _ = writeln!(s, "    ({n})");
    }
}

/// One trace step's fields, read leniently: a missing text reads empty, a missing list
/// empty (a newer server may send steps or fields this build does not know).
#[derive(Clone, Copy)]
struct Step<'a>(&'a Value);

impl<'a> Step<'a> {
    fn opt_text(self, key: &str) -> Option<&'a str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn text(self, key: &str) -> &'a str {
        self.opt_text(key).unwrap_or_default()
    }

    fn opt_num(self, key: &str) -> Option<u64> {
        self.0.get(key).and_then(Value::as_u64)
    }

    fn list(self, key: &str) -> Vec<String> {
        self.0
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_json_matches_serde_json_and_keeps_key_order() {
        for v in [
            json!({"a": 1, "b": [1, 2, {"c": "x,y:{}[]\"\\"}], "d": {}, "e": [], "f": null}),
            json!([]),
            json!("plain"),
            json!({"nested": {"deeper": [[], [{}], [1.5, -2, true]]}}),
        ] {
            let compact = serde_json::to_string(&v).unwrap();
            assert_eq!(
                pretty_json(compact.as_bytes()),
                serde_json::to_string_pretty(&v).unwrap()
            );
        }
        // the server's order survives (a map would sort "z" before "a")
        assert_eq!(
            pretty_json(br#"{"z":1,"a":2}"#),
            "{\n  \"z\": 1,\n  \"a\": 2\n}"
        );
        assert_eq!(pretty_json(b"not json {"), "not json {");
    }

    #[test]
    fn entries_as_text() {
        let v = json!({"number": "+441632960001", "ttl": 300, "zone": "z.", "routes": [
            {"uri": "sip:alice@pbx.example.net", "order": 100, "preference": 10},
            {"pstn": true, "rn": "+441632000000", "npdi": true, "order": 100, "preference": 20}]});
        assert_eq!(
            entry_text(&v, "number"),
            "+441632960001  sip:alice@pbx.example.net  (order 100, pref 10)\n\
             \x20              pstn rn=+441632000000 npdi  (order 100, pref 20)\n"
        );
        assert_eq!(entry_footer(&v), "ttl 300, zone z.");
        assert_eq!(
            warnings(&json!({"warnings": ["kept", {"field": "routes[0]", "detail": "why"}]})),
            ["kept", "routes[0]: why"]
        );
    }

    /// Every kind of trace step, as `enroute route` has always printed them (when this
    /// became the one renderer, its text was checked byte for byte against the
    /// library's own rendering on routed decisions with each kind of step).
    #[test]
    fn a_decision_as_text() {
        let v = json!({"input": "01632 960002", "number": "+441632960002", "status": 302,
            "reason": "Moved Temporarily", "detail": "4 routes from ENUM",
            "contacts": [{"uri": "sip:a@x.example", "q": 1.0}, {"uri": "sip:b@x.example", "q": 0.9}],
            "source": "cache", "zone": null, "suffix": "e164.arpa.", "ttl": 5, "trace": [
            {"step": "cache", "result": "hit", "ttl": 5},
            {"step": "number", "dialled": "01632960002", "scheme": null, "rule": 1,
             "result": "+441632960002"},
            {"step": "number", "dialled": "alice", "scheme": "sip", "rule": null, "result": "no"},
            {"step": "lookup", "suffix": "e164.arpa.", "domain": "2.0.e164.arpa.",
             "via": "local", "zone": "2.3.6.1.4.4.e164.arpa.", "result": "answer", "ttl": 300,
             "records": ["10 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@x.example!\" ."], "note": null},
            {"step": "lookup", "suffix": "e164.test.", "domain": "2.0.e164.test.",
             "via": "upstream", "zone": null, "result": "timeout", "ttl": null, "records": [],
             "note": "127.0.0.1:9"},
            {"step": "record", "domain": "c.", "naptr": "10 10 \"\" \"E2U+sip\" \"\" d.",
             "outcome": "used", "detail": "d.", "depth": 0},
            {"step": "record", "domain": "d.", "naptr": "1 1 \"u\" \"E2U+x\" \"\" .",
             "outcome": "service", "detail": "not in enum.services", "depth": 2},
            {"step": "gateway", "prefix": "+44", "number": "+441632960002",
             "uris": ["sip:a@gw", "sips:b@gw"]},
            {"step": "gateway", "prefix": "+44", "number": "+441632960002", "uris": []},
            {"step": "cache", "result": "miss", "ttl": null},
            {"step": "truncated", "kept": 3, "dropped": 1},
            {"step": "later", "x": 1}]});
        assert_eq!(
            decision_text(&v),
            "302 Moved Temporarily\n\
             Contact: <sip:a@x.example>;q=1.0\n\
             Contact: <sip:b@x.example>;q=0.9\n\
             number: +441632960002\n\
             source: cache\n\
             zone: -\n\
             suffix: e164.arpa.\n\
             ttl: 5\n\
             detail: 4 routes from ENUM\n\
             trace:\n\
             \x20 cache: hit (5 s left)\n\
             \x20 number: \"01632960002\" -> +441632960002 (dial-plan rule 1)\n\
             \x20 number: sip: \"alice\" -> no\n\
             \x20 lookup 2.0.e164.arpa. NAPTR (suffix e164.arpa., local zone \
             2.3.6.1.4.4.e164.arpa.): answer, ttl 300\n\
             \x20   NAPTR 10 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@x.example!\" .\n\
             \x20 lookup 2.0.e164.test. NAPTR (suffix e164.test., upstream): timeout\n\
             \x20   (127.0.0.1:9)\n\
             \x20 record 10 10 \"\" \"E2U+sip\" \"\" d. at c.: used: d.\n\
             \x20     record 1 1 \"u\" \"E2U+x\" \"\" . at d.: service: not in enum.services\n\
             \x20 gateway +44 for +441632960002: sip:a@gw, sips:b@gw\n\
             \x20 gateway +44 for +441632960002: no allowed URI\n\
             \x20 cache: miss\n\
             \x20 sip.max_contacts kept 3, dropped 1\n\
             \x20 later: {\"step\":\"later\",\"x\":1}\n"
        );
        // no trace: no `trace:` line
        let v = json!({"status": 416, "reason": "Unsupported URI Scheme", "contacts": [],
            "number": null, "source": "none", "detail": "x", "ttl": 0, "trace": []});
        assert_eq!(
            decision_text(&v),
            "416 Unsupported URI Scheme\nnumber: -\nsource: none\nzone: -\nsuffix: -\n\
             ttl: 0\ndetail: x\n"
        );
    }
}
