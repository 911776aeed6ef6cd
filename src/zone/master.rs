//! RFC 1035 §5 master files: tokenizing, directives and record data, with the line of
//! every problem.
//!
//! Owns: the scanner (comments, parentheses, quoted strings, escapes, blank owners),
//! `$ORIGIN`, `$TTL` and `$INCLUDE`, owner names relative to the zone origin, and the
//! wire encoding of record data. Common ENUM types (NAPTR, SOA, NS, CNAME, PTR, DNAME, A,
//! AAAA, MX, SRV, TXT) and RFC 3597 `\#` data are encoded here; every other type goes
//! through hickory-proto's rdata parser (`RData::try_from_str`) and encoder.
//!
//! Must not touch: the index layout (records go into a [`ZoneBuilder`]) or routing.
//!
//! Why not hickory's `zone::Parser` for whole files: it stops at the first error and
//! reports no line numbers, while `zone check` must print every error as
//! `FILE:LINE: message`; and it allocates a `Name` and `RecordSet` per record, too slow
//! for the 1M-number loads this index is built for (the issue measured 13 s).

use super::index::{Origin, ZoneBuilder};
use crate::name::{MAX_LABEL, MAX_NAME_WIRE, Name, unescape};
use crate::name::{TYPE_NAPTR, TYPE_SOA};
use crate::naptr;
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One problem in a master file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub warning: bool,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.warning {
            write!(f, "{}:{}: warning: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// Everything parsed from a file and the files it included.
pub struct Parsed {
    pub builder: ZoneBuilder,
    /// Display names of the files read; `Origin::file` indexes this.
    pub files: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| !d.warning)
    }
}

const MAX_INCLUDE_DEPTH: usize = 8;

/// Parses `text` (the content of `display`) as a zone with the given origin. `base_dir`
/// resolves relative `$INCLUDE` paths; without one `$INCLUDE` is refused.
pub fn parse(text: &[u8], display: &str, origin: &Name, base_dir: Option<&Path>) -> Parsed {
    let mut p = Parser {
        zone_origin: origin.clone(),
        builder: ZoneBuilder::with_capacity(text.len() / 90, text.len() / 2),
        files: vec![display.to_string()],
        diagnostics: Vec::new(),
        default_ttl: None,
        last_ttl: None,
        scratch: Scratch::default(),
    };
    p.parse_file(text, 0, origin.clone(), base_dir, 0);
    Parsed {
        builder: p.builder,
        files: p.files,
        diagnostics: p.diagnostics,
    }
}

/// Reads and parses a file; an unreadable file is one diagnostic at line 0.
pub fn parse_path(path: &Path, origin: &Name) -> Parsed {
    let display = path.display().to_string();
    match std::fs::read(path) {
        Ok(text) => parse(&text, &display, origin, path.parent()),
        Err(e) => Parsed {
            builder: ZoneBuilder::new(),
            files: vec![display.clone()],
            diagnostics: vec![Diagnostic {
                file: display,
                line: 0,
                warning: false,
                message: format!("cannot read zone file: {e}"),
            }],
        },
    }
}

#[derive(Clone, Copy)]
struct Tok<'a> {
    bytes: &'a [u8],
    quoted: bool,
}

enum Next {
    Entry { line: u32, blank_owner: bool },
    Error { line: u32, message: String },
    Eof,
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
    line: u32,
}

impl<'a> Scanner<'a> {
    fn skip_line(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    /// Reads one logical entry (a line, or several joined by parentheses).
    fn next(&mut self, toks: &mut Vec<Tok<'a>>) -> Next {
        toks.clear();
        let t = self.text;
        let mut depth = 0u32;
        let mut start_line = self.line;
        let mut blank_owner = false;
        loop {
            let Some(&b) = t.get(self.pos) else {
                if depth > 0 {
                    return Next::Error {
                        line: start_line,
                        message: "'(' is never closed".into(),
                    };
                }
                return if toks.is_empty() {
                    Next::Eof
                } else {
                    Next::Entry {
                        line: start_line,
                        blank_owner,
                    }
                };
            };
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if depth == 0 && !toks.is_empty() {
                        return Next::Entry {
                            line: start_line,
                            blank_owner,
                        };
                    }
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b';' => self.skip_line(),
                b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' => {
                    if depth == 0 {
                        let line = self.line;
                        self.skip_line();
                        return Next::Error {
                            line,
                            message: "')' without a matching '('".into(),
                        };
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                _ => {
                    if toks.is_empty() {
                        start_line = self.line;
                        blank_owner = self.pos > 0 && t[self.pos - 1] != b'\n';
                    }
                    if b == b'"' {
                        let mut i = self.pos + 1;
                        loop {
                            match t.get(i) {
                                None | Some(b'\n') => {
                                    let line = self.line;
                                    self.pos = i;
                                    self.skip_line();
                                    return Next::Error {
                                        line,
                                        message: "quoted string is not closed on its line".into(),
                                    };
                                }
                                Some(b'\\') => i += 2,
                                Some(b'"') => break,
                                Some(_) => i += 1,
                            }
                        }
                        toks.push(Tok {
                            bytes: &t[self.pos + 1..i],
                            quoted: true,
                        });
                        self.pos = i + 1;
                    } else {
                        let mut i = self.pos;
                        while let Some(&c) = t.get(i) {
                            match c {
                                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                                b'\\' => i += 2,
                                _ => i += 1,
                            }
                        }
                        let end = i.min(t.len());
                        toks.push(Tok {
                            bytes: &t[self.pos..end],
                            quoted: false,
                        });
                        self.pos = end;
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct Scratch {
    key: Vec<u8>,
    rdata: Vec<u8>,
    strings: [Vec<u8>; 3],
    labels: Vec<u8>,
    bounds: Vec<(usize, usize)>,
}

struct Parser {
    zone_origin: Name,
    builder: ZoneBuilder,
    files: Vec<String>,
    diagnostics: Vec<Diagnostic>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    scratch: Scratch,
}

/// The current `$ORIGIN` and its key below the zone apex (`None` when outside the zone).
struct Ctx {
    origin: Name,
    origin_key: Option<Vec<u8>>,
    file: u16,
}

impl Parser {
    fn error(&mut self, file: u16, line: u32, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.files[file as usize].clone(),
            line,
            warning: false,
            message: message.into(),
        });
    }

    fn key_below_zone(&self, name: &Name) -> Option<Vec<u8>> {
        if !name.is_at_or_below(&self.zone_origin) {
            return None;
        }
        let mut key = Vec::new();
        for l in name.relative_root_side(&self.zone_origin) {
            key.push(l.len() as u8);
            key.extend(l.iter().map(u8::to_ascii_lowercase));
        }
        Some(key)
    }

    fn parse_file(
        &mut self,
        text: &[u8],
        file: u16,
        origin: Name,
        base_dir: Option<&Path>,
        depth: usize,
    ) {
        let origin_key = self.key_below_zone(&origin);
        let mut ctx = Ctx {
            origin,
            origin_key,
            file,
        };
        let mut sc = Scanner {
            text,
            pos: 0,
            line: 1,
        };
        let mut toks = Vec::with_capacity(16);
        // Key of the previous record's owner, for entries that start with a blank.
        let mut last_owner: Option<Vec<u8>> = None;
        loop {
            match sc.next(&mut toks) {
                Next::Eof => break,
                Next::Error { line, message } => self.error(file, line, message),
                Next::Entry { line, blank_owner } => {
                    let first = toks[0];
                    if !blank_owner && !first.quoted && first.bytes.first() == Some(&b'$') {
                        self.directive(&toks, line, &mut ctx, base_dir, depth);
                        continue;
                    }
                    match self.record(&toks, blank_owner, line, &ctx, &mut last_owner) {
                        Ok(()) => {}
                        Err(msg) => self.error(file, line, msg),
                    }
                }
            }
        }
    }

    fn directive(
        &mut self,
        toks: &[Tok<'_>],
        line: u32,
        ctx: &mut Ctx,
        base_dir: Option<&Path>,
        depth: usize,
    ) {
        let file = ctx.file;
        let name = String::from_utf8_lossy(toks[0].bytes).to_ascii_uppercase();
        match name.as_str() {
            "$ORIGIN" => {
                let [_, arg] = toks else {
                    return self.error(file, line, "$ORIGIN takes exactly one domain name");
                };
                match Name::parse(arg.bytes, Some(&ctx.origin)) {
                    Ok(n) => {
                        ctx.origin_key = self.key_below_zone(&n);
                        ctx.origin = n;
                    }
                    Err(e) => self.error(file, line, format!("$ORIGIN: {e}")),
                }
            }
            "$TTL" => {
                let [_, arg] = toks else {
                    return self.error(file, line, "$TTL takes exactly one TTL");
                };
                match parse_ttl(arg.bytes) {
                    Ok(t) => self.default_ttl = Some(t),
                    Err(e) => self.error(file, line, format!("$TTL: {e}")),
                }
            }
            "$INCLUDE" => {
                if toks.len() < 2 || toks.len() > 3 {
                    return self.error(
                        file,
                        line,
                        "$INCLUDE takes a file name and an optional origin",
                    );
                }
                if depth >= MAX_INCLUDE_DEPTH {
                    return self.error(file, line, "$INCLUDE nested too deeply");
                }
                let Some(base) = base_dir else {
                    return self.error(
                        file,
                        line,
                        "$INCLUDE is not allowed here (no base directory)",
                    );
                };
                let rel = PathBuf::from(String::from_utf8_lossy(toks[1].bytes).into_owned());
                let path = if rel.is_absolute() {
                    rel
                } else {
                    base.join(rel)
                };
                let origin = match toks.get(2) {
                    Some(t) => match Name::parse(t.bytes, Some(&ctx.origin)) {
                        Ok(n) => n,
                        Err(e) => return self.error(file, line, format!("$INCLUDE origin: {e}")),
                    },
                    None => ctx.origin.clone(),
                };
                match std::fs::read(&path) {
                    Ok(text) => {
                        self.files.push(path.display().to_string());
                        let idx = (self.files.len() - 1) as u16;
                        let dir = path.parent().map(Path::to_path_buf);
                        self.parse_file(&text, idx, origin, dir.as_deref(), depth + 1);
                    }
                    Err(e) => self.error(file, line, format!("$INCLUDE {}: {e}", path.display())),
                }
            }
            other => self.error(file, line, format!("unsupported directive {other}")),
        }
    }

    fn record(
        &mut self,
        toks: &[Tok<'_>],
        blank_owner: bool,
        line: u32,
        ctx: &Ctx,
        last_owner: &mut Option<Vec<u8>>,
    ) -> Result<(), String> {
        let mut idx = 0;
        let mut key = std::mem::take(&mut self.scratch.key);
        key.clear();
        if blank_owner {
            match last_owner {
                Some(k) => key.extend_from_slice(k),
                None => {
                    self.scratch.key = key;
                    return Err("record has no owner name and there is no previous one".into());
                }
            }
        } else {
            let res = self.owner_key(toks[0].bytes, ctx, &mut key);
            if let Err(e) = res {
                *last_owner = None;
                self.scratch.key = key;
                return Err(e);
            }
            match last_owner {
                Some(k) => {
                    k.clear();
                    k.extend_from_slice(&key);
                }
                None => *last_owner = Some(key.clone()),
            }
            idx = 1;
        }
        let result = self.record_rest(toks, idx, line, ctx, &key);
        self.scratch.key = key;
        result
    }

    fn record_rest(
        &mut self,
        toks: &[Tok<'_>],
        mut idx: usize,
        line: u32,
        ctx: &Ctx,
        key: &[u8],
    ) -> Result<(), String> {
        let mut ttl = None;
        for _ in 0..2 {
            let Some(t) = toks.get(idx) else { break };
            if t.quoted {
                break;
            }
            if t.bytes.first().is_some_and(u8::is_ascii_digit) {
                if ttl.is_some() {
                    break;
                }
                ttl = Some(parse_ttl(t.bytes).map_err(|e| format!("bad TTL: {e}"))?);
                idx += 1;
            } else if t.bytes.eq_ignore_ascii_case(b"IN") {
                idx += 1;
            } else if [&b"CH"[..], b"HS", b"CS", b"NONE", b"ANY"]
                .iter()
                .any(|c| t.bytes.eq_ignore_ascii_case(c))
                || (t.bytes.len() > 5 && t.bytes[..5].eq_ignore_ascii_case(b"CLASS"))
            {
                return Err(format!(
                    "class {} is not supported; only IN",
                    String::from_utf8_lossy(t.bytes)
                ));
            } else {
                break;
            }
        }
        let Some(type_tok) = toks.get(idx) else {
            return Err("record has no type".into());
        };
        let rtype = parse_type(type_tok.bytes)?;
        let rdata_toks = &toks[idx + 1..];
        let mut rdata = std::mem::take(&mut self.scratch.rdata);
        rdata.clear();
        let res = self.encode_rdata(rtype, rdata_toks, ctx, &mut rdata);
        let out = res.and_then(|soa_min| {
            if rdata.len() > u16::MAX as usize {
                return Err("record data longer than 65535 bytes".into());
            }
            if let Some(t) = ttl {
                self.last_ttl = Some(t);
            }
            let ttl = ttl
                .or(self.default_ttl)
                .or(self.last_ttl)
                .or(soa_min)
                .ok_or("record has no TTL and no $TTL is in effect")?;
            self.builder.add(
                key,
                rtype,
                ttl,
                &rdata,
                Origin {
                    file: ctx.file,
                    line,
                },
            );
            Ok(())
        });
        self.scratch.rdata = rdata;
        out
    }

    /// Owner text to the builder's key format, checking it lies in the zone.
    fn owner_key(&mut self, text: &[u8], ctx: &Ctx, key: &mut Vec<u8>) -> Result<(), String> {
        let outside = || {
            format!(
                "owner {} is outside the zone {}",
                String::from_utf8_lossy(text),
                self.zone_origin
            )
        };
        if text == b"@" {
            let k = ctx.origin_key.as_ref().ok_or_else(outside)?;
            key.extend_from_slice(k);
            return Ok(());
        }
        let labels = &mut self.scratch.labels;
        let bounds = &mut self.scratch.bounds;
        labels.clear();
        bounds.clear();
        let mut start = 0;
        let mut i = 0;
        let mut absolute = false;
        while i < text.len() {
            let b = text[i];
            if b == b'\\' {
                let (c, used) = unescape(&text[i..]).ok_or("bad escape in owner name")?;
                labels.push(c);
                i += used;
            } else if b == b'.' {
                if labels.len() == start {
                    if text.len() == 1 {
                        absolute = true;
                        break;
                    }
                    return Err("empty label in owner name".into());
                }
                bounds.push((start, labels.len()));
                start = labels.len();
                i += 1;
                if i == text.len() {
                    absolute = true;
                }
            } else {
                labels.push(b);
                i += 1;
            }
        }
        if labels.len() > start {
            bounds.push((start, labels.len()));
        }
        if bounds.iter().any(|(s, e)| e - s > MAX_LABEL) {
            return Err("label longer than 63 bytes in owner name".into());
        }
        let keep = if absolute {
            let zl = self.zone_origin.labels();
            if bounds.len() < zl.len() {
                return Err(outside());
            }
            let keep = bounds.len() - zl.len();
            for (k, zlab) in zl.iter().enumerate() {
                let (s, e) = bounds[keep + k];
                if !labels[s..e].eq_ignore_ascii_case(zlab) {
                    return Err(outside());
                }
            }
            keep
        } else {
            key.extend_from_slice(ctx.origin_key.as_ref().ok_or_else(outside)?);
            bounds.len()
        };
        for &(s, e) in bounds[..keep].iter().rev() {
            key.push((e - s) as u8);
            key.extend(labels[s..e].iter().map(u8::to_ascii_lowercase));
        }
        if key.len() + self.zone_origin.wire_len() > MAX_NAME_WIRE {
            return Err("owner name longer than 255 bytes".into());
        }
        Ok(())
    }

    /// Encodes rdata into `out`. Returns the SOA MINIMUM for an SOA (the TTL of last
    /// resort, as BIND uses it), else `None`.
    fn encode_rdata(
        &mut self,
        rtype: u16,
        toks: &[Tok<'_>],
        ctx: &Ctx,
        out: &mut Vec<u8>,
    ) -> Result<Option<u32>, String> {
        if toks.first().is_some_and(|t| !t.quoted && t.bytes == b"\\#") {
            generic_rdata(&toks[1..], out)?;
            if rtype == TYPE_NAPTR {
                let n = naptr::NaptrRef::parse(out).ok_or("malformed NAPTR data in \\# form")?;
                naptr::validate(&n)?;
            }
            return Ok(None);
        }
        let name = |t: &Tok<'_>, out: &mut Vec<u8>| -> Result<(), String> {
            if t.bytes == b"." {
                out.push(0);
                return Ok(());
            }
            Name::parse(t.bytes, Some(&ctx.origin))
                .map_err(|e| format!("bad domain name {}: {e}", String::from_utf8_lossy(t.bytes)))?
                .to_wire(out);
            Ok(())
        };
        let want = |n: usize| -> Result<(), String> {
            if toks.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "{} record needs {n} data fields, found {}",
                    type_name(rtype),
                    toks.len()
                ))
            }
        };
        match rtype {
            TYPE_NAPTR => {
                want(6)?;
                out.extend_from_slice(&parse_u16(toks[0].bytes, "NAPTR order")?.to_be_bytes());
                out.extend_from_slice(&parse_u16(toks[1].bytes, "NAPTR preference")?.to_be_bytes());
                for (k, what) in ["flags", "services", "regexp"].iter().enumerate() {
                    let s = &mut self.scratch.strings[k];
                    char_string(toks[2 + k].bytes, s).map_err(|e| format!("NAPTR {what}: {e}"))?;
                    out.push(s.len() as u8);
                    out.extend_from_slice(s);
                }
                name(&toks[5], out)?;
                let n = naptr::NaptrRef::parse(out).ok_or("malformed NAPTR data")?;
                naptr::validate(&n)?;
                Ok(None)
            }
            TYPE_SOA => {
                want(7)?;
                name(&toks[0], out)?;
                name(&toks[1], out)?;
                let serial = std::str::from_utf8(toks[2].bytes)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or("SOA serial must be a number from 0 to 4294967295")?;
                out.extend_from_slice(&serial.to_be_bytes());
                let mut minimum = 0;
                for (k, what) in ["refresh", "retry", "expire", "minimum"].iter().enumerate() {
                    let v = parse_ttl(toks[3 + k].bytes).map_err(|e| format!("SOA {what}: {e}"))?;
                    out.extend_from_slice(&v.to_be_bytes());
                    minimum = v;
                }
                Ok(Some(minimum))
            }
            // NS CNAME PTR DNAME
            2 | 5 | 12 | 39 => {
                want(1)?;
                name(&toks[0], out)?;
                Ok(None)
            }
            1 => {
                want(1)?;
                let a = std::str::from_utf8(toks[0].bytes)
                    .ok()
                    .and_then(|s| std::net::Ipv4Addr::from_str(s).ok())
                    .ok_or("bad IPv4 address")?;
                out.extend_from_slice(&a.octets());
                Ok(None)
            }
            28 => {
                want(1)?;
                let a = std::str::from_utf8(toks[0].bytes)
                    .ok()
                    .and_then(|s| std::net::Ipv6Addr::from_str(s).ok())
                    .ok_or("bad IPv6 address")?;
                out.extend_from_slice(&a.octets());
                Ok(None)
            }
            15 => {
                want(2)?;
                out.extend_from_slice(&parse_u16(toks[0].bytes, "MX preference")?.to_be_bytes());
                name(&toks[1], out)?;
                Ok(None)
            }
            33 => {
                want(4)?;
                for (k, what) in ["priority", "weight", "port"].iter().enumerate() {
                    out.extend_from_slice(
                        &parse_u16(toks[k].bytes, &format!("SRV {what}"))?.to_be_bytes(),
                    );
                }
                name(&toks[3], out)?;
                Ok(None)
            }
            // TXT SPF
            16 | 99 => {
                if toks.is_empty() {
                    return Err("TXT record needs at least one string".into());
                }
                let s = &mut self.scratch.strings[0];
                for t in toks {
                    char_string(t.bytes, s).map_err(|e| format!("TXT: {e}"))?;
                    out.push(s.len() as u8);
                    out.extend_from_slice(s);
                }
                Ok(None)
            }
            _ => {
                hickory_rdata(rtype, toks, out)?;
                Ok(None)
            }
        }
    }
}

fn hickory_rdata(rtype: u16, toks: &[Tok<'_>], out: &mut Vec<u8>) -> Result<(), String> {
    let mut text = String::new();
    for t in toks {
        let s = String::from_utf8_lossy(t.bytes);
        if t.quoted {
            text.push('"');
            text.push_str(&s);
            text.push('"');
        } else {
            text.push_str(&s);
        }
        text.push(' ');
    }
    let rd = RData::try_from_str(RecordType::from(rtype), text.trim_end())
        .map_err(|e| format!("{} data: {e}", type_name(rtype)))?;
    let mut enc = BinEncoder::new(out);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    rd.emit(&mut enc)
        .map_err(|e| format!("{} data: {e}", type_name(rtype)))
}

/// RFC 3597 §5 generic rdata: `\# LENGTH HEX...`.
fn generic_rdata(toks: &[Tok<'_>], out: &mut Vec<u8>) -> Result<(), String> {
    let len: usize = toks
        .first()
        .and_then(|t| std::str::from_utf8(t.bytes).ok())
        .and_then(|s| s.parse().ok())
        .ok_or("\\# needs a length")?;
    let hex: Vec<u8> = toks[1..]
        .iter()
        .flat_map(|t| t.bytes.iter().copied())
        .collect();
    if hex.len() != len * 2 {
        return Err(format!(
            "\\# data has {} bytes, length says {len}",
            hex.len() / 2
        ));
    }
    for pair in hex.chunks(2) {
        let s = std::str::from_utf8(pair).map_err(|_| "bad hex in \\# data")?;
        out.push(u8::from_str_radix(s, 16).map_err(|_| "bad hex in \\# data")?);
    }
    Ok(())
}

/// Unescapes a `<character-string>` (quoted or not) into `out`.
fn char_string(raw: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let (b, used) = unescape(&raw[i..]).ok_or(
                "bad escape sequence: a backslash before a digit starts \\DDD (three digits); \
                 write \\\\1 for a regexp back-reference",
            )?;
            out.push(b);
            i += used;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    if out.len() > 255 {
        return Err("character string longer than 255 bytes".into());
    }
    Ok(())
}

fn parse_u16(t: &[u8], what: &str) -> Result<u16, String> {
    std::str::from_utf8(t)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "{what} must be a number from 0 to 65535, found {:?}",
                String::from_utf8_lossy(t)
            )
        })
}

fn parse_ttl(t: &[u8]) -> Result<u32, String> {
    let s = std::str::from_utf8(t).map_err(|_| "not text".to_string())?;
    if let Ok(v) = s.parse::<u64>() {
        // RFC 2181 §8: TTLs are 31-bit.
        return u32::try_from(v)
            .ok()
            .filter(|v| *v <= i32::MAX as u32)
            .ok_or_else(|| format!("{s} is larger than 2147483647"));
    }
    hickory_proto::serialize::txt::parse_ttl(s).map_err(|_| format!("{s:?} is not a TTL"))
}

fn parse_type(t: &[u8]) -> Result<u16, String> {
    const COMMON: &[(&[u8], u16)] = &[
        (b"NAPTR", TYPE_NAPTR),
        (b"NS", 2),
        (b"SOA", TYPE_SOA),
        (b"A", 1),
        (b"AAAA", 28),
        (b"CNAME", 5),
        (b"TXT", 16),
        (b"PTR", 12),
        (b"MX", 15),
        (b"SRV", 33),
        (b"DNAME", 39),
        (b"SPF", 99),
    ];
    for (name, code) in COMMON {
        if t.eq_ignore_ascii_case(name) {
            return Ok(*code);
        }
    }
    let s = String::from_utf8_lossy(t).to_ascii_uppercase();
    if let Some(num) = s.strip_prefix("TYPE")
        && let Ok(v) = num.parse::<u16>()
    {
        return Ok(v);
    }
    match RecordType::from_str(&s) {
        Ok(rt) if !matches!(rt, RecordType::Unknown(_)) => Ok(u16::from(rt)),
        _ => Err(format!("unknown record type {s}")),
    }
}

pub fn type_name(rtype: u16) -> String {
    RecordType::from(rtype).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        let origin = Name::from_text("6.1.4.4.e164.arpa.").unwrap();
        let mut p = parse(text.as_bytes(), "z", &origin, None);
        let (_, _, issues) = std::mem::take(&mut p.builder).build();
        let mut out: Vec<String> = p.diagnostics.iter().map(|d| d.to_string()).collect();
        out.extend(
            issues
                .iter()
                .map(|i| format!("z:{}: {}", i.src.line, i.message)),
        );
        out
    }

    #[test]
    fn valid_zone_has_no_diagnostics() {
        let z = "$TTL 300\n@ IN SOA ns.example. host.example. ( 1 3600\n 900 604800 300 )\n\
                 @ NS ns.example.\n\
                 1.0.0.0.6.9.2.3 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b!\" .\n\
                 \t NAPTR 100 20 u E2U+sip \"!^.*$!sip:c@d!\" .\n";
        assert_eq!(errors(z), Vec::<String>::new());
    }

    #[test]
    fn every_error_has_its_line() {
        let z = "$TTL 300\n\
                 @ SOA ns.example. host.example. 1 3600 900 604800 300\n\
                 1 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^(.*$!sip:a@b!\" .\n\
                 2 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@b!\" x.example.\n\
                 3 NAPTR 100000 10 \"u\" \"E2U+sip\" \"\" .\n\
                 4.example.net. NAPTR 100 10 \"u\" \"E2U+sip\" \"\" .\n\
                 @ SOA ns.example. host.example. 2 3600 900 604800 300\n\
                 5 BOGUS 1\n\
                 6 NAPTR 100 10 \"u\" \"E2U+sip\"\n\
                 7 NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:\\0@b!\" .\n";
        let e = errors(z);
        let lines: Vec<&str> = e.iter().map(|s| s.split(':').nth(1).unwrap()).collect();
        assert_eq!(lines, ["3", "4", "5", "6", "8", "9", "10", "7"], "{e:#?}");
        assert!(e[0].contains("regexp"));
        assert!(e[1].contains("both a regexp and a replacement"));
        assert!(e[3].contains("outside the zone"));
        assert!(e[7].contains("duplicate SOA"));
    }

    #[test]
    fn missing_soa_is_an_error() {
        let e = errors("$TTL 60\n1 NAPTR 1 1 u E2U+sip \"!^.*$!sip:a@b!\" .\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("no SOA"));
    }
}
