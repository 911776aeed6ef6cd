//! SIP message framing and parsing on byte slices, without copying (httparse style).
//!
//! Owns: finding a message's end (headers, `Content-Length` body; partial input is
//! reported, not an error, so TCP can wait for more), the start line, header lines with
//! their compact forms (RFC 3261 §7.3.3), folded continuation lines, case-insensitive
//! names, and the header values a redirect server reads (Via, From, To, Call-ID, CSeq,
//! Max-Forwards, Content-Length, Require), each checked as RFC 3261 §8.2 and RFC 4475
//! §3.1.2/§3.3 require; the form of the Request-URI (RFC 4475 §3.1.2.7, RFC 5118 §4.2)
//! and of From/To name-addrs (RFC 4475 §3.1.2.6) for the handler to check.
//!
//! No limit on the number of header lines: the transport's `sip.max_message_bytes` bounds
//! a message, and parsing is linear in its size. Only lines with a known [`Name`] are
//! indexed (their count is bounded by the size too); other lines are checked and then
//! found again by [`Request::all_headers`] when asked for, so a request with thousands of
//! extension headers allocates nothing.
//!
//! Must not touch: sockets (see `sip::transport`), routing, which answer a request gets
//! (see `sip::redirect`) or its bytes (see `sip::response`).
//!
//! Written by hand rather than with a SIP crate: measured for issue 3, the best crate
//! took 2.7 µs per INVITE and each missed something needed here (compact forms, tel:
//! Request-URIs, maintenance), while a focused parser takes a fraction of that. Every
//! accessor borrows from the input; only folded header values are unfolded into an
//! owned string when read.

use std::borrow::Cow;

/// Why a message cannot be read at all (dropped, counted) or is malformed (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a SIP message: no start line we can read.
    #[error("not a SIP message")]
    Garbage,
    /// A SIP response (a UAS receives none): dropped.
    #[error("a response, not a request")]
    Response,
    /// The start line reads but something else is wrong: 400 with this phrase.
    #[error("{0}")]
    Bad(&'static str),
}

/// Parse outcome for possibly incomplete input (TCP).
#[derive(Debug)]
pub enum Status<T> {
    Complete(T),
    /// More bytes are needed (the headers or the body are not all there).
    Partial,
}

/// Header names a redirect server looks at; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    Require,
    Other,
}

/// How many names [`Name`] knows besides `Other` (the size of a request's index).
const KNOWN_NAMES: usize = Name::Other as usize;

/// Up to 8 bytes of a header name as one integer with ASCII letters lower-cased (the
/// bytes little-endian, OR 0x20 each). Exact for token characters against names made
/// of letters and `-`: a token byte ORed with 0x20 equals a lower-case letter only
/// when it is that letter in either case, and equals `-` only when it is `-`.
const fn folded(name: &[u8]) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < name.len() && i < 8 {
        v |= ((name[i] | 0x20) as u64) << (8 * i);
        i += 1;
    }
    v
}

/// `n` (1..=8) bytes of `rest` from `at` as in [`folded`]; bytes past the input are 0.
#[inline]
fn folded_at(rest: &[u8], at: usize, n: usize) -> u64 {
    let tail = rest.get(at..).unwrap_or(&[]);
    let word = match tail.first_chunk::<8>() {
        Some(chunk) => u64::from_le_bytes(*chunk),
        None => {
            let mut b = [0u8; 8];
            let k = tail.len().min(8);
            b[..k].copy_from_slice(&tail[..k]);
            u64::from_le_bytes(b)
        }
    };
    let keep = if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    (word | 0x2020_2020_2020_2020) & keep
}

impl Name {
    /// Classifies the header name `rest[..len]` (token characters; `rest` runs on to
    /// the end of the input): by length, then one or two integer comparisons of the
    /// folded name (see [`folded`]) instead of byte-wise case-blind comparisons.
    // Always inlined: called for every header line, from two places (the index and the
    // walk over all lines); out of line it cost ~35 instructions a call.
    #[inline(always)]
    fn classify(rest: &[u8], len: usize) -> Name {
        const TO: u64 = folded(b"to");
        const VIA: u64 = folded(b"via");
        const FROM: u64 = folded(b"from");
        const CSEQ: u64 = folded(b"cseq");
        const CALL_ID: u64 = folded(b"call-id");
        const REQUIRE: u64 = folded(b"require");
        const MAX_FORWARDS: (u64, u64) = (folded(b"max-forw"), folded(b"ards"));
        const CONTENT_LENGTH: (u64, u64) = (folded(b"content-"), folded(b"length"));
        match len {
            1 => match rest[0].to_ascii_lowercase() {
                b'v' => Name::Via,
                b'f' => Name::From,
                b't' => Name::To,
                b'i' => Name::CallId,
                b'l' => Name::ContentLength,
                _ => Name::Other,
            },
            2 if folded_at(rest, 0, 2) == TO => Name::To,
            3 if folded_at(rest, 0, 3) == VIA => Name::Via,
            4 => match folded_at(rest, 0, 4) {
                FROM => Name::From,
                CSEQ => Name::CSeq,
                _ => Name::Other,
            },
            7 => match folded_at(rest, 0, 7) {
                CALL_ID => Name::CallId,
                REQUIRE => Name::Require,
                _ => Name::Other,
            },
            12 if (folded_at(rest, 0, 8), folded_at(rest, 8, 4)) == MAX_FORWARDS => {
                Name::MaxForwards
            }
            14 if (folded_at(rest, 0, 8), folded_at(rest, 8, 6)) == CONTENT_LENGTH => {
                Name::ContentLength
            }
            _ => Name::Other,
        }
    }
}

/// One header line (or folded lines).
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub name: Name,
    pub raw_name: &'a str,
    /// The value as it stands, trimmed; may hold folded line breaks.
    raw_value: &'a str,
    /// Whether continuation lines were joined into this header.
    folded: bool,
}

impl<'a> Header<'a> {
    /// The value as it stands (trimmed; folded line breaks kept).
    #[inline]
    pub fn raw_value(&self) -> &'a str {
        self.raw_value
    }

    /// The value with folded lines joined by single spaces (borrowed when not folded).
    #[inline]
    pub fn value(&self) -> Cow<'a, str> {
        if self.folded {
            unfold(self.raw_value)
        } else {
            Cow::Borrowed(self.raw_value)
        }
    }
}

/// A request, borrowing the buffer it was parsed from.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub version: &'a str,
    /// The head (start line and header lines) the header positions point into.
    head: &'a str,
    /// The header index: every known-name line's name and trimmed value as positions
    /// in `head` (small to store and to move; [`Header`]s are made from them when asked
    /// for), and for each known [`Name`] the index of its first line in `lines`
    /// (`u32::MAX`: none) and how many lines carry it, so lookups and the RFC 3261 §8.2
    /// duplicate checks do not rescan the headers.
    lines: Lines,
    first: [u32; KNOWN_NAMES],
    count: [u32; KNOWN_NAMES],
    pub body: &'a [u8],
    /// Bytes of the buffer this message took (headers and body).
    pub len: usize,
}

fn unfold(v: &str) -> Cow<'_, str> {
    if !v.contains(['\r', '\n']) {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    for part in v.split(['\r', '\n']) {
        let t = part.trim_matches([' ', '\t']);
        if t.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    }
    Cow::Owned(out)
}

/// Token characters (RFC 3261 §25.1) as a table: every header-name byte is tested.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

#[inline]
fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// The known-name header lines of a request: inline for any usual request.
type Lines = smallvec::SmallVec<[RawHeader; 16]>;

/// A header line's place in the head, found before the head is known to be UTF-8.
#[derive(Debug, Clone, Copy)]
struct RawHeader {
    name: (u32, u32),
    value: (u32, u32),
    kind: Name,
    folded: bool,
}

/// What input without the blank line that ends the headers means.
fn without_end(buf: &[u8], stream: bool) -> Result<Status<Request<'_>>, ParseError> {
    if buf.is_empty() || (stream && looks_like_start(buf)) {
        return Ok(Status::Partial);
    }
    if looks_like_start(buf) {
        Err(ParseError::Bad("headers do not end with an empty line"))
    } else {
        Err(ParseError::Garbage)
    }
}

/// Parses one request from the start of `buf`. `stream`: the transport is TCP/TLS, so a
/// body shorter than Content-Length means "wait for more" and Content-Length is required;
/// over UDP the datagram is the message.
///
/// One pass finds the line ends, the blank line and each header's name and value; the
/// head is then checked to be UTF-8 once. Errors keep a fixed precedence (framing, UTF-8,
/// start line, header lines, NUL bytes, Content-Length) whatever their order in the input.
pub fn parse(buf: &[u8], stream: bool) -> Result<Status<Request<'_>>, ParseError> {
    // Leading CRLFs are keep-alives (RFC 5626 §3.5.1) and allowed before a message.
    let skip = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let buf = &buf[skip..];
    if buf.len() > u32::MAX as usize {
        return Err(ParseError::Bad("message too large"));
    }
    let Some(start_nl) = memchr::memchr(b'\n', buf) else {
        return without_end(buf, stream);
    };
    let mut index = Index::new();
    let mut line_error: Option<&'static str> = None;
    let mut pos = start_nl + 1;
    let (hend, body_start) = loop {
        let Some(p) = memchr::memchr(b'\n', &buf[pos..]) else {
            return without_end(buf, stream);
        };
        let nl = pos + p;
        let end = if nl > pos && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if end == pos {
            break (pos, nl + 1);
        }
        if line_error.is_none() {
            line_error = index.line(buf, pos, end).err();
        }
        pos = nl + 1;
    };
    let head = std::str::from_utf8(&buf[..hend]).map_err(|_| {
        if looks_like_start(buf) {
            ParseError::Bad("headers are not UTF-8")
        } else {
            ParseError::Garbage
        }
    })?;
    let start = head[..start_nl]
        .strip_suffix('\r')
        .unwrap_or(&head[..start_nl]);
    let (method, uri, version) = request_line(start)?;
    if let Some(why) = line_error {
        return Err(ParseError::Bad(why));
    }
    // One vectorized search: a NUL is in no header value (RFC 3261 §25.1 TEXT-UTF8char).
    if memchr::memchr(0, &buf[start_nl..hend]).is_some() {
        return Err(ParseError::Bad("NUL byte in a header"));
    }
    let Index {
        mut lines,
        first,
        count,
        ..
    } = index;

    // Values lose the white space around them (folded line breaks included).
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    for r in lines.iter_mut() {
        let (mut s, mut e) = (r.value.0 as usize, r.value.1 as usize);
        while s < e && space(buf[s]) {
            s += 1;
        }
        while e > s && space(buf[e - 1]) {
            e -= 1;
        }
        r.value = (s as u32, e as u32);
    }
    let content_length = content_length(head, &lines, &first, &count)?;
    let rest = &buf[body_start..];
    let body_len = match (content_length, stream) {
        (Some(n), _) if n <= rest.len() => n,
        (Some(_), true) => return Ok(Status::Partial),
        (Some(_), false) => return Err(ParseError::Bad("body shorter than Content-Length")),
        (None, true) => 0,
        (None, false) => rest.len(),
    };
    // Built once, in place: the header index is a few hundred bytes to move.
    Ok(Status::Complete(Request {
        method,
        uri,
        version,
        head,
        lines,
        first,
        count,
        body: &rest[..body_len],
        len: skip + body_start + body_len,
    }))
}

/// The request line `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1): a status
/// line is a response; anything that is not a request line is garbage, or a 400 when
/// it looks like one.
#[inline]
fn request_line(start: &str) -> Result<(&str, &str, &str), ParseError> {
    if start.starts_with("SIP/") {
        return Err(ParseError::Response);
    }
    let mut spaces = memchr::memchr_iter(b' ', start.as_bytes());
    let parts = match (spaces.next(), spaces.next(), spaces.next()) {
        (Some(a), Some(b), None) => Some((&start[..a], &start[a + 1..b], &start[b + 1..])),
        _ => None,
    };
    let Some((method, uri, version)) = parts else {
        return Err(
            if start.bytes().take_while(|b| is_token(*b)).count() > 0 && start.contains("SIP/") {
                ParseError::Bad("malformed request line")
            } else {
                ParseError::Garbage
            },
        );
    };
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(ParseError::Garbage);
    }
    if !version
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        return Err(ParseError::Garbage);
    }
    // Branch-free over the bytes so it vectorizes.
    let bad_byte = uri
        .bytes()
        .fold(false, |bad, b| bad | (b <= b' ') | (b == 0x7f));
    if uri.is_empty() || bad_byte || memchr::memchr(b':', uri.as_bytes()).is_none() {
        return Err(ParseError::Bad("malformed Request-URI"));
    }
    Ok((method, uri, version))
}

/// Content-Length: at most one, a number (RFC 4475 §3.1.2.7, §3.3.9).
#[inline]
fn content_length(
    head: &str,
    lines: &Lines,
    first: &[u32; KNOWN_NAMES],
    count: &[u32; KNOWN_NAMES],
) -> Result<Option<usize>, ParseError> {
    Ok(match count[Name::ContentLength as usize] {
        0 => None,
        1 => {
            let r = &lines[first[Name::ContentLength as usize] as usize];
            let v = &head[r.value.0 as usize..r.value.1 as usize];
            let v = if r.folded {
                unfold(v)
            } else {
                Cow::Borrowed(v)
            };
            let v = v.trim_ascii();
            if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Bad("malformed Content-Length"));
            }
            Some(
                v.parse::<usize>()
                    .map_err(|_| ParseError::Bad("malformed Content-Length"))?,
            )
        }
        _ => return Err(ParseError::Bad("duplicate Content-Length")),
    })
}

/// The header index while it is built (see [`Request`]'s `lines`, `first`, `count`).
struct Index {
    lines: Lines,
    first: [u32; KNOWN_NAMES],
    count: [u32; KNOWN_NAMES],
    /// What a folded line continues: nothing yet, an unindexed line, or `lines`' last.
    last: Last,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Other,
    Indexed,
}

impl Index {
    fn new() -> Self {
        Index {
            lines: Lines::new(),
            first: [u32::MAX; KNOWN_NAMES],
            count: [0; KNOWN_NAMES],
            last: Last::Nothing,
        }
    }

    /// Reads the header line `buf[start..end]` (without its line end): a new header, or a
    /// folded continuation of the previous one. Only known names are indexed.
    fn line(&mut self, buf: &[u8], start: usize, end: usize) -> Result<(), &'static str> {
        if matches!(buf[start], b' ' | b'\t') {
            match self.last {
                Last::Nothing => return Err("folded line before any header"),
                Last::Other => {}
                Last::Indexed => {
                    if let Some(last) = self.lines.last_mut() {
                        last.value.1 = end as u32;
                        last.folded = true;
                    }
                }
            }
            return Ok(());
        }
        let line = &buf[start..end];
        // Iterator form: no bounds checks in the loop (every header name byte passes here).
        let name_len = line
            .iter()
            .position(|&b| !is_token(b))
            .unwrap_or(line.len());
        let name_end = start + name_len;
        let i = name_end
            + line[name_len..]
                .iter()
                .position(|&b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(line.len() - name_len);
        if name_end == start || i == end || buf[i] != b':' {
            return Err(if memchr::memchr(b':', line).is_none() {
                "header line without a colon"
            } else {
                "malformed header name"
            });
        }
        let kind = Name::classify(&buf[start..], name_len);
        let k = kind as usize;
        if k >= KNOWN_NAMES {
            self.last = Last::Other;
            return Ok(());
        }
        // Fewer lines than bytes, and the input is under 4 GiB (checked by `parse`).
        let at = self.lines.len() as u32;
        if self.count[k] == 0 {
            self.first[k] = at;
        }
        self.count[k] += 1;
        self.lines.push(RawHeader {
            name: (start as u32, name_end as u32),
            value: (i as u32 + 1, end as u32),
            kind,
            folded: false,
        });
        self.last = Last::Indexed;
        Ok(())
    }
}

fn looks_like_start(buf: &[u8]) -> bool {
    let first = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let tok = first.iter().take_while(|b| is_token(**b)).count();
    tok > 0 && (first.get(tok) == Some(&b' ') || tok == first.len())
}

impl<'a> Request<'a> {
    #[inline]
    fn at(&self, r: &RawHeader) -> Header<'a> {
        let head: &'a str = self.head;
        Header {
            name: r.kind,
            raw_name: &head[r.name.0 as usize..r.name.1 as usize],
            raw_value: &head[r.value.0 as usize..r.value.1 as usize],
            folded: r.folded,
        }
    }

    /// Every header line in order, found again in the head (only known names are
    /// indexed): for the rare reader of other headers, linear in the head's size.
    pub fn all_headers(&self) -> impl Iterator<Item = Header<'a>> + use<'a> {
        let head: &'a str = self.head;
        let b = head.as_bytes();
        // The head was checked by `parse`: after the start line, header lines each
        // with a colon, continuation lines starting with white space.
        let mut pos = memchr::memchr(b'\n', b).map_or(b.len(), |i| i + 1);
        std::iter::from_fn(move || {
            if pos >= b.len() {
                return None;
            }
            let start = pos;
            let mut end;
            let mut folded = false;
            loop {
                end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |i| pos + i);
                pos = end + 1;
                if pos >= b.len() || !matches!(b[pos], b' ' | b'\t') {
                    break;
                }
                folded = true;
            }
            let line = &head[start..end];
            let name_len = line.bytes().position(|c| !is_token(c)).unwrap_or(0);
            let value = memchr::memchr(b':', line.as_bytes()).map_or("", |c| &line[c + 1..]);
            Some(Header {
                name: Name::classify(&b[start..], name_len),
                raw_name: &line[..name_len],
                raw_value: value.trim_matches([' ', '\t', '\r', '\n']),
                folded,
            })
        })
    }

    /// The header lines with this name, in order (`Other`: see [`Request::all_headers`]).
    pub fn headers(&self, name: Name) -> impl Iterator<Item = Header<'a>> + '_ {
        let others =
            (name == Name::Other).then(|| self.all_headers().filter(|h| h.name == Name::Other));
        self.lines
            .iter()
            .filter(move |r| r.kind == name)
            .map(|r| self.at(r))
            .chain(others.into_iter().flatten())
    }

    /// The first header line with this name.
    #[inline]
    pub fn header(&self, name: Name) -> Option<Header<'a>> {
        match self.first.get(name as usize) {
            Some(&i) => self.lines.get(i as usize).map(|r| self.at(r)),
            None => self.headers(name).next(),
        }
    }

    /// How many header lines carry this name.
    #[inline]
    pub fn count(&self, name: Name) -> usize {
        match self.count.get(name as usize) {
            Some(&n) => n as usize,
            None => self.headers(name).count(),
        }
    }
}

/// Positions of `sep` in `v` outside quoted strings (with their `\\` escapes) and angle
/// brackets (RFC 3261 §25.1): where a header value may be split. Jumps from one
/// interesting byte to the next with `memchr`: a name-addr's URI and display name are
/// skipped whole.
fn top_level(v: &str, sep: u8) -> impl Iterator<Item = usize> + '_ {
    let b = v.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            let at = i + memchr::memchr3(sep, b'"', b'<', &b[i..])?;
            i = at + 1;
            match b[at] {
                b'"' => i = after_quoted(b, i).unwrap_or(b.len()),
                b'<' => match memchr::memchr(b'>', &b[i..]) {
                    Some(gt) => i += gt + 1,
                    None => i = b.len(),
                },
                _ => return Some(at),
            }
        }
        None
    })
}

/// Where the quoted string whose opening quote is at `i - 1` ends (the index after its
/// closing quote), stepping over `\\` escapes; `None` when it is not terminated.
fn after_quoted(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let q = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[q] == b'\\' {
            i = q + 2;
        } else {
            return Some(q + 1);
        }
    }
}

/// Splits a header value on commas outside quoted strings and angle brackets.
pub fn split_commas(v: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    top_level(v, b',')
        .chain(std::iter::once(v.len()))
        .map(move |end| {
            let part = v[start..end].trim_ascii();
            start = end + 1;
            part
        })
        .filter(|p| !p.is_empty())
}

/// The `;`-separated parameters after a header's main value (outside quotes and angle
/// brackets), in order, as trimmed `(name, value)`; a flag without `=` has value `""`.
pub fn params(value: &str) -> impl Iterator<Item = (&str, &str)> {
    head_and_params(value).1
}

/// The main value before the first top-level `;` and its parameters (see [`params`]),
/// in one scan of the value.
pub fn head_and_params(value: &str) -> (&str, impl Iterator<Item = (&str, &str)>) {
    let mut cuts = top_level(value, b';');
    let first = cuts.next();
    let head = first.map_or(value, |c| &value[..c]);
    let mut start = first.map(|c| c + 1);
    let params = std::iter::from_fn(move || {
        let s = start?;
        let next = cuts.next();
        start = next.map(|c| c + 1);
        let p = &value[s..next.unwrap_or(value.len())];
        Some(match memchr::memchr(b'=', p.as_bytes()) {
            Some(eq) => (p[..eq].trim_ascii(), p[eq + 1..].trim_ascii()),
            None => (p.trim_ascii(), ""),
        })
    });
    (head, params)
}

/// The main value before the first top-level `;` (the whole value when it has none).
pub fn before_params(value: &str) -> &str {
    top_level(value, b';').next().map_or(value, |c| &value[..c])
}

/// The value of parameter `name` (see [`params`]): `Some("")` for a flag without `=`.
pub fn param<'v>(value: &'v str, name: &str) -> Option<&'v str> {
    params(value)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// What is wrong with a From or To value's form (RFC 3261 §20.20, §20.39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrProblem {
    /// A quoted string (the display name, RFC 4475 §3.1.2.6, or a parameter value) that
    /// does not end.
    UnterminatedQuote,
    /// A `<` without its `>`.
    UnclosedBracket,
}

/// Checks a From or To value's quoted strings and angle brackets. A To of a new
/// request, `<uri>`, takes one search; otherwise the few bytes outside the brackets
/// (display name, parameters) are stepped through and the URI is jumped over.
pub fn addr_problem(v: &str) -> Option<AddrProblem> {
    let b = v.as_bytes();
    if b.first() == Some(&b'<') && memchr::memchr(b'>', b) == Some(b.len() - 1) {
        return None;
    }
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i = match c {
            b'"' => match quoted_end(b, i + 1) {
                Some(end) => end,
                None => return Some(AddrProblem::UnterminatedQuote),
            },
            b'<' => match memchr::memchr(b'>', &b[i + 1..]) {
                Some(gt) => i + 2 + gt,
                None => return Some(AddrProblem::UnclosedBracket),
            },
            _ => i + 1,
        };
    }
    None
}

/// As [`after_quoted`], byte by byte: for the short quoted strings of a display name.
fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// A port's digits as a number (saturating at `u32::MAX`), `None` when they are not
/// 1*DIGIT (RFC 3261 §25.1).
#[inline]
pub fn port_value(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.saturating_mul(10).saturating_add(u32::from(d - b'0')))
    })
}

/// What is wrong with the form of a Request-URI, as a 400 reason phrase: angle brackets
/// around it (RFC 4475 §3.1.2.7); for `sip:`/`sips:`, no host, an IPv6 reference without
/// brackets (RFC 5118 §4.2), or a port that is not a number up to 65535. The scheme
/// itself is the router's (416), and so is the user part.
pub fn request_uri_problem(uri: &str) -> Option<&'static str> {
    let rest = match uri.as_bytes() {
        [b'<', ..] => return Some("Request-URI in angle brackets"),
        [s, i, p, b':', rest @ ..] if [*s, *i, *p].eq_ignore_ascii_case(b"sip") => rest,
        [s, i, p, s2, b':', rest @ ..] if [*s, *i, *p, *s2].eq_ignore_ascii_case(b"sips") => rest,
        _ => return None,
    };
    // userinfo ends at the first `@` (RFC 3261 §25.1: not allowed unescaped before it
    // nor in the parameters and headers after the host). memchr: measured (callgrind),
    // fewer instructions than stepping through the bytes even for a short Request-URI.
    let host = memchr::memchr(b'@', rest).map_or(rest, |at| &rest[at + 1..]);
    let end = memchr::memchr2(b';', b'?', host);
    let hostport = &host[..end.unwrap_or(host.len())];
    let port = match hostport {
        [] => return Some("Request-URI without a host"),
        [b'[', v6 @ ..] => match memchr::memchr(b']', v6) {
            Some(close) => &v6[close + 1..],
            None => return Some("malformed IPv6 reference in Request-URI"),
        },
        _ => match memchr::memchr(b':', hostport) {
            Some(c) if memchr::memchr(b':', &hostport[c + 1..]).is_some() => {
                let v6 = |d: &u8| d.is_ascii_hexdigit() || matches!(d, b':' | b'.');
                return Some(if hostport.iter().all(v6) {
                    "IPv6 address in Request-URI without brackets"
                } else {
                    "malformed Request-URI port"
                });
            }
            Some(c) => &hostport[c..],
            None => &[],
        },
    };
    port_problem(port)
}

/// What follows a Request-URI's host: nothing, or `:` and a port up to 65535.
fn port_problem(port: &[u8]) -> Option<&'static str> {
    match port {
        [] => None,
        [b':', digits @ ..] if port_value(digits).is_some_and(|p| p <= 65535) => None,
        _ => Some("malformed Request-URI port"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Via value in order, one per comma-separated value (RFC 3261 §7.3.1).
    fn vias(r: &Request<'_>) -> Vec<String> {
        r.headers(Name::Via)
            .flat_map(|h| {
                let v = h.value();
                split_commas(&v).map(str::to_string).collect::<Vec<_>>()
            })
            .collect()
    }

    const INVITE: &str = "INVITE sip:+441632960001@example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
        v: SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKa, SIP/2.0/UDP h.example;branch=z9hG4bKb\r\n\
        Max-Forwards: 70\r\n\
        t: <sip:+441632960001@example.net>\r\n\
        f: \"Alice, A.\" <sip:alice@example.org>;tag=1928301774\r\n\
        i: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Subject: folded\r\n  continues here\r\n\
        l: 4\r\n\r\nv=0\r\n";

    #[test]
    fn header_names_classified_in_any_case_and_only_exactly() {
        let cases: &[(&str, Name)] = &[
            ("To", Name::To),
            ("tO", Name::To),
            ("t", Name::To),
            ("VIA", Name::Via),
            ("v", Name::Via),
            ("From", Name::From),
            ("CSeq", Name::CSeq),
            ("cseq", Name::CSeq),
            ("Call-ID", Name::CallId),
            ("i", Name::CallId),
            ("Require", Name::Require),
            ("Max-Forwards", Name::MaxForwards),
            ("Content-Length", Name::ContentLength),
            ("CONTENT-LENGTH", Name::ContentLength),
            ("l", Name::ContentLength),
            ("Tox", Name::Other),
            ("Vi", Name::Other),
            ("Content-Lengths", Name::Other),
            ("Content_Length", Name::Other),
            ("Call.ID", Name::Other),
            ("Contact", Name::Other),
            ("Content-Type", Name::Other),
            ("X-Very-Long-Header-Name", Name::Other),
            ("c", Name::Other),
        ];
        for (name, want) in cases {
            // At the end of the input (fewer than 16 bytes follow) and within it.
            assert_eq!(Name::classify(name.as_bytes(), name.len()), *want, "{name}");
            let line = format!("{name}: value of some length\r\n");
            assert_eq!(Name::classify(line.as_bytes(), name.len()), *want, "{name}");
        }
    }

    #[test]
    fn parses_compact_folded_multi_valued() {
        let Status::Complete(r) = parse(INVITE.as_bytes(), false).unwrap() else {
            panic!()
        };
        assert_eq!(r.method, "INVITE");
        assert_eq!(r.uri, "sip:+441632960001@example.net");
        assert_eq!(vias(&r).len(), 3);
        assert_eq!(vias(&r)[1], "SIP/2.0/TCP [2001:db8::1];branch=z9hG4bKa");
        assert_eq!(r.header(Name::CallId).unwrap().value(), "a84b4c76e66710");
        let from = r.header(Name::From).unwrap().value();
        assert_eq!(param(&from, "tag"), Some("1928301774"));
        let subj = r.all_headers().find(|h| h.raw_name == "Subject").unwrap();
        assert_eq!(subj.value(), "folded continues here");
        assert_eq!(r.body, b"v=0\r");
        assert_eq!(r.len, INVITE.len() - 1);
        assert_eq!(param(&vias(&r)[0], "rport"), Some(""));
    }

    #[test]
    fn separators_inside_quotes_and_brackets_do_not_split() {
        let v = "\"a;tag=x, y\" <sip:b;tag=y,z>;tag=z;lr";
        assert_eq!(param(v, "tag"), Some("z"));
        assert_eq!(param(v, "lr"), Some(""));
        assert_eq!(param(v, "maddr"), None);
        assert_eq!(split_commas(v).count(), 1);
        assert_eq!(
            split_commas("a, b ,,c").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn framing_over_streams() {
        let msg = INVITE.as_bytes();
        // split anywhere: partial until the body is complete
        for cut in [10, 100, msg.len() - 3] {
            assert!(
                matches!(parse(&msg[..cut], true).unwrap(), Status::Partial),
                "cut {cut}"
            );
        }
        // two messages in one read
        let two = [&msg[..msg.len() - 1], &msg[..msg.len() - 1]].concat();
        let Status::Complete(r) = parse(&two, true).unwrap() else {
            panic!()
        };
        assert_eq!(r.len, msg.len() - 1);
        // keep-alive CRLFs before a message
        let ka = [b"\r\n\r\n".as_slice(), msg].concat();
        let Status::Complete(r) = parse(&ka, true).unwrap() else {
            panic!()
        };
        assert_eq!(r.method, "INVITE");
    }

    #[test]
    fn rejects() {
        let bad = |s: &str| parse(s.as_bytes(), false).unwrap_err();
        assert_eq!(bad("SIP/2.0 200 OK\r\n\r\n"), ParseError::Response);
        assert_eq!(bad("\x00\x01garbage"), ParseError::Garbage);
        assert_eq!(
            bad("INVITE sip:a@b SIP/2.0\r\nl: 5\r\nContent-Length: 5\r\n\r\nabcde"),
            ParseError::Bad("duplicate Content-Length")
        );
        assert_eq!(
            bad("INVITE sip:a@b SIP/2.0\r\nl: -1\r\n\r\n"),
            ParseError::Bad("malformed Content-Length")
        );
        assert_eq!(
            bad("INVITE sip:a@b SIP/2.0\r\nl: 50\r\n\r\nabc"),
            ParseError::Bad("body shorter than Content-Length")
        );
        assert_eq!(
            bad("INVITE  sip:a@b SIP/2.0\r\n\r\n"),
            ParseError::Bad("malformed request line")
        );
        assert_eq!(
            bad("INVITE bogus SIP/2.0\r\n\r\n"),
            ParseError::Bad("malformed Request-URI")
        );
        assert_eq!(
            bad("INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n"),
            ParseError::Bad("header line without a colon")
        );
    }

    #[test]
    fn thousands_of_extension_headers_parse_without_allocating() {
        let ext: String = (0..3500).map(|i| format!("X-H{i}: v{i}\r\n")).collect();
        let msg = INVITE.replace("Subject:", &format!("{ext}Subject:"));
        assert!(msg.len() > 50_000 && msg.len() < 65_535, "{}", msg.len());
        let Status::Complete(r) = parse(msg.as_bytes(), false).unwrap() else {
            panic!()
        };
        // Only the known names are indexed: inline, nothing allocated.
        assert!(!r.lines.spilled());
        assert_eq!(r.count(Name::Via), 2);
        assert_eq!(r.header(Name::CSeq).unwrap().value(), "314159 INVITE");
        assert_eq!(r.count(Name::Other), 3500 + 1);
        let last = r.headers(Name::Other).nth(3499).unwrap();
        assert_eq!((last.raw_name, last.value()), ("X-H3499", "v3499".into()));
        assert_eq!(r.body, b"v=0\r");
    }

    #[test]
    fn all_headers_finds_what_the_index_holds() {
        let msg = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
            X-A: one\r\n two\r\nv: SIP/2.0/UDP g\r\n\t;branch=z9hG4bK2\r\nX-B:\r\n\
            CSeq:1 OPTIONS\n\r\n";
        let Status::Complete(r) = parse(msg.as_bytes(), false).unwrap() else {
            panic!()
        };
        let all: Vec<(Name, &str, String)> = r
            .all_headers()
            .map(|h| (h.name, h.raw_name, h.value().into_owned()))
            .collect();
        assert_eq!(
            all,
            [
                (
                    Name::Via,
                    "Via",
                    "SIP/2.0/UDP h;branch=z9hG4bK1".to_string()
                ),
                (Name::Other, "X-A", "one two".into()),
                (Name::Via, "v", "SIP/2.0/UDP g ;branch=z9hG4bK2".into()),
                (Name::Other, "X-B", "".into()),
                (Name::CSeq, "CSeq", "1 OPTIONS".into()),
            ]
        );
        // A line folded into an unindexed header does not join the indexed one before.
        let vias: Vec<String> = r.headers(Name::Via).map(|h| h.value().into()).collect();
        assert_eq!(vias, [all[0].2.as_str(), &all[2].2]);
        for h in r.all_headers().filter(|h| h.name != Name::Other) {
            let indexed = r
                .headers(h.name)
                .find(|i| i.raw_name == h.raw_name)
                .unwrap();
            assert_eq!(indexed.raw_value(), h.raw_value());
        }
    }

    #[test]
    fn nul_in_a_header_is_malformed() {
        for msg in [
            "INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\0\r\n\r\n",
            "INVITE sip:a@b SIP/2.0\r\nX-Foo: a\0b\r\n\r\n",
            "INVITE sip:a@b SIP/2.0\r\nSubject: a\r\n \0\r\n\r\n",
        ] {
            assert_eq!(
                parse(msg.as_bytes(), false).unwrap_err(),
                ParseError::Bad("NUL byte in a header"),
                "{msg:?}"
            );
        }
        // A NUL in the body is the body's business.
        let msg = "INVITE sip:a@b SIP/2.0\r\nl: 3\r\n\r\na\0b";
        assert!(matches!(
            parse(msg.as_bytes(), false),
            Ok(Status::Complete(_))
        ));
    }

    #[test]
    fn request_uri_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("sip:+441632960001@example.net", None),
            ("sip:+441632960001@example.net:5060;user=phone", None),
            ("SIPS:alice@[2001:db8::10]:5061", None),
            ("sip:[2001:db8::10:5070]", None),
            ("sip:+44;npdi;rn=+44@h;user=phone?subject=x", None),
            ("sip:user:pw@h:65535", None),
            ("tel:+441632960001", None),
            ("tel:2001:db8::10", None),
            ("http://example.net", None),
            (
                "<sip:+441632960001@example.net>",
                Some("Request-URI in angle brackets"),
            ),
            ("<tel:+441632960001>", Some("Request-URI in angle brackets")),
            (
                "sip:+441632960001@2001:db8::10",
                Some("IPv6 address in Request-URI without brackets"),
            ),
            (
                "sip:2001:db8::10;user=phone",
                Some("IPv6 address in Request-URI without brackets"),
            ),
            (
                "sip:a@[2001:db8::10",
                Some("malformed IPv6 reference in Request-URI"),
            ),
            ("sip:a@[::1]x", Some("malformed Request-URI port")),
            ("sip:a@h:", Some("malformed Request-URI port")),
            ("sip:a@h:50x", Some("malformed Request-URI port")),
            ("sip:a@h:65536", Some("malformed Request-URI port")),
            ("sip:a@h:5:6x", Some("malformed Request-URI port")),
            ("sip:a@", Some("Request-URI without a host")),
            ("sip:a@;user=phone", Some("Request-URI without a host")),
        ];
        for (uri, want) in cases {
            assert_eq!(request_uri_problem(uri), *want, "{uri}");
        }
    }

    #[test]
    fn name_addr_forms() {
        use AddrProblem::*;
        let cases: &[(&str, Option<AddrProblem>)] = &[
            ("<sip:a@b>;tag=1", None),
            ("sip:a@b;tag=1", None),
            ("\"A \\\"q\\\" B\" <sip:a@b>;tag=1", None),
            ("\"A\" <sip:a@b>;x=\"v;w\";tag=1", None),
            ("Bob <sip:a@b> ;tag = 1", None),
            ("", None),
            (
                "\"Mr. J. User <sip:j.user@example.com>",
                Some(UnterminatedQuote),
            ),
            ("\"A\\\" <sip:a@b>", Some(UnterminatedQuote)),
            ("\"A\\", Some(UnterminatedQuote)),
            ("<sip:a@b>;x=\"v", Some(UnterminatedQuote)),
            ("<sip:a@b;tag=1", Some(UnclosedBracket)),
            ("\"A\" <sip:a@b", Some(UnclosedBracket)),
            ("<sip:a@b><", Some(UnclosedBracket)),
        ];
        for (v, want) in cases {
            assert_eq!(addr_problem(v), *want, "{v}");
        }
    }

    #[test]
    fn port_values() {
        assert_eq!(port_value(b"5060"), Some(5060));
        assert_eq!(port_value(b"0005060"), Some(5060));
        assert_eq!(port_value(b"65536"), Some(65536));
        assert_eq!(port_value(b"99999999999999999999"), Some(u32::MAX));
        assert_eq!(port_value(b""), None);
        assert_eq!(port_value(b"+5"), None);
        assert_eq!(port_value(b"50 60"), None);
    }
}
