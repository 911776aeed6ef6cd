//! RFC 3402 §3.2 substitution expressions: `delim ere delim repl delim [i]`.
//!
//! Owns parsing (any delimiter, escaped delimiters, the `i` flag, back-references
//! `\1`–`\9`), compiling the ERE with the `regex` crate under size limits (the text
//! comes from the network), expansion, and applying a NAPTR regexp to an application
//! unique string ([`apply_regexp`]: the commonest ENUM forms without parsing, then the
//! parser, then the engine) as DDDS runs it.
//!
//! Must not touch: whether a record is used or what its result must look like (that is
//! `resolve::ddds`).
//!
//! Written by hand because no crate implements RFC 3402's grammar.
//!
//! POSIX ERE versus Rust's `regex`: POSIX picks the leftmost-*longest* match, `regex` the
//! leftmost-*first* (Perl-like). The overall match of the anchored patterns ENUM uses
//! (`^.*$`, `^\+(.*)$`, `^\+44(.*)$`, `^\+([0-9]+)$`) is the same under both; the two can
//! differ only where an alternation or a nested quantifier lets a capture group end at
//! more than one place, e.g. `^(1|12)(.*)$` on `+123…`: POSIX gives `\1 = 12`, Rust
//! `\1 = 1`. Write the longer alternative first (`(12|1)`) to get the same answer from
//! both. Rust also accepts a few extensions ERE lacks (`\d`, `(?i)`), which is harmless.
//!
//! The result of a match is the expanded replacement alone (text outside the match is
//! not kept), as Kamailio's and Asterisk's ENUM clients do.

use std::borrow::Cow;

/// Parse failures, each one a reason DDDS counts as "bad regexp".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    #[error("empty regexp")]
    Empty,
    #[error("delimiter {0:?} is not allowed (digits, backslash and 'i' cannot delimit)")]
    BadDelimiter(char),
    #[error("expected three {0:?} delimiters")]
    MissingDelimiter(char),
    #[error("unknown flag {0:?} after the last delimiter (only 'i' is defined)")]
    BadFlag(char),
    #[error("regexp is not valid UTF-8")]
    NotUtf8,
    #[error("back-reference \\0 is not allowed (RFC 3402 allows \\1 to \\9)")]
    BackrefZero,
    #[error("back-reference \\{0} names a group the pattern does not have")]
    BackrefOutOfRange(u8),
    #[error("dangling backslash at the end of the replacement")]
    DanglingEscape,
    #[error("invalid pattern: {0}")]
    Pattern(String),
}

/// A parsed substitution expression, borrowing from the NAPTR rdata.
#[derive(Debug, Clone)]
pub struct SubstExpr<'a> {
    /// The ERE with escaped delimiters resolved.
    pub pattern: Cow<'a, str>,
    /// The replacement, still with its escapes; see [`SubstExpr::expand`].
    replacement: &'a str,
    pub case_insensitive: bool,
    /// Highest back-reference used in the replacement.
    max_backref: u8,
}

/// Characters that mean something to the regex parser: an escaped delimiter that is one
/// of these keeps its backslash so it stays literal.
const REGEX_META: &[u8] = b".^$*+?()[]{}|\\";

impl<'a> SubstExpr<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Self, SubstError> {
        let text = std::str::from_utf8(raw).map_err(|_| SubstError::NotUtf8)?;
        let bytes = text.as_bytes();
        let &delim = bytes.first().ok_or(SubstError::Empty)?;
        if delim.is_ascii_digit() || delim == b'\\' || delim == b'i' || !delim.is_ascii() {
            return Err(SubstError::BadDelimiter(delim as char));
        }
        // Positions of the two remaining unescaped delimiters.
        let mut cuts = [0usize; 2];
        let mut found = 0;
        let mut i = 1;
        while i < bytes.len() && found < 2 {
            match bytes[i] {
                b'\\' => i += 2,
                b if b == delim => {
                    cuts[found] = i;
                    found += 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        if found < 2 {
            return Err(SubstError::MissingDelimiter(delim as char));
        }
        let raw_pattern = &text[1..cuts[0]];
        let replacement = &text[cuts[0] + 1..cuts[1]];
        let mut case_insensitive = false;
        for c in text[cuts[1] + 1..].chars() {
            match c {
                'i' => case_insensitive = true,
                other => return Err(SubstError::BadFlag(other)),
            }
        }
        let pattern = unescape_delim(raw_pattern, delim);
        let max_backref = scan_replacement(replacement)?;
        Ok(SubstExpr {
            pattern,
            replacement,
            case_insensitive,
            max_backref,
        })
    }

    /// `^.*$` matches every AUS (which never holds a newline) and captures nothing: the
    /// commonest ENUM pattern, so DDDS skips the regex engine for it.
    pub fn matches_everything(&self) -> bool {
        self.pattern == "^.*$" && self.max_backref == 0
    }

    /// Compiles the pattern with limits suitable for untrusted input and checks that
    /// every back-reference names an existing group.
    pub fn compile(&self) -> Result<regex::Regex, SubstError> {
        let re = regex::RegexBuilder::new(&self.pattern)
            .case_insensitive(self.case_insensitive)
            .size_limit(256 * 1024)
            .dfa_size_limit(256 * 1024)
            .nest_limit(32)
            .build()
            .map_err(|e| SubstError::Pattern(first_line(&e.to_string())))?;
        let groups = re.captures_len() - 1;
        if self.max_backref as usize > groups {
            return Err(SubstError::BackrefOutOfRange(self.max_backref));
        }
        Ok(re)
    }

    /// Appends the replacement to `out`, taking back-references from `caps` (`None`
    /// when the pattern was matched without captures).
    pub fn expand(&self, caps: Option<&regex::Captures<'_>>, out: &mut String) {
        self.expand_with(|n| caps.and_then(|c| c.get(n)).map(|m| m.as_str()), out);
    }

    /// As [`SubstExpr::expand`], with group `n` given by `group`.
    pub fn expand_with<'t>(&self, group: impl Fn(usize) -> Option<&'t str>, out: &mut String) {
        let b = self.replacement.as_bytes();
        let mut i = 0;
        let mut lit_start = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                out.push_str(&self.replacement[lit_start..i]);
                let next = b[i + 1];
                if next.is_ascii_digit() {
                    let n = (next - b'0') as usize;
                    if let Some(m) = group(n) {
                        out.push_str(m);
                    }
                } else {
                    // `\<delim>`, `\\` and any other escaped character stand for themselves.
                    let ch_len = self.replacement[i + 1..]
                        .chars()
                        .next()
                        .map_or(1, char::len_utf8);
                    out.push_str(&self.replacement[i + 1..i + 1 + ch_len]);
                    i += ch_len - 1;
                }
                i += 2;
                lit_start = i;
            } else {
                i += 1;
            }
        }
        out.push_str(&self.replacement[lit_start..]);
    }

    /// Checks this expression's back-references against a regex compiled from the same
    /// pattern (for callers that cache compiled patterns).
    pub fn compile_check(&self, re: &regex::Regex) -> Result<(), SubstError> {
        if self.max_backref as usize > re.captures_len() - 1 {
            return Err(SubstError::BackrefOutOfRange(self.max_backref));
        }
        Ok(())
    }

    pub fn uses_backrefs(&self) -> bool {
        self.max_backref > 0
    }

    /// For the commonest ENUM pattern, `^<literal>(.*)$` (`^\+(.*)$`, `^\+44(.*)$`), the
    /// literal: such a pattern matches an application unique string exactly when the
    /// string starts with the literal, and group 1 is the rest (the AUS holds no line
    /// breaks, so `.` matches all of it). Only digits, letters, `-` and the escaped `\+`,
    /// `\.` are taken as literal; anything else goes to the regex engine.
    pub fn prefix_capture(&self) -> Option<String> {
        let body = self.pattern.strip_prefix('^')?.strip_suffix("(.*)$")?;
        let b = body.as_bytes();
        let mut lit = String::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if matches!(b.get(i + 1), Some(b'+' | b'.')) => {
                    lit.push(b[i + 1] as char);
                    i += 2;
                }
                c if c.is_ascii_alphanumeric() || c == b'-' => {
                    lit.push(c as char);
                    i += 1;
                }
                _ => return None,
            }
        }
        (self.max_backref <= 1).then_some(lit)
    }
}

fn unescape_delim(pattern: &str, delim: u8) -> Cow<'_, str> {
    let needle = [b'\\', delim];
    if REGEX_META.contains(&delim) || !pattern.as_bytes().windows(2).any(|w| w == needle) {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len());
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] != delim {
                out.push('\\');
            }
            let c = pattern[i + 1..].chars().next().unwrap_or('\\');
            out.push(c);
            i += 1 + c.len_utf8();
        } else {
            let c = pattern[i..].chars().next().unwrap_or('\\');
            out.push(c);
            i += c.len_utf8();
        }
    }
    Cow::Owned(out)
}

/// Checks the replacement's escapes and returns the highest back-reference.
fn scan_replacement(repl: &str) -> Result<u8, SubstError> {
    let b = repl.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let next = *b.get(i + 1).ok_or(SubstError::DanglingEscape)?;
            if next == b'0' {
                return Err(SubstError::BackrefZero);
            }
            if next.is_ascii_digit() {
                max = max.max(next - b'0');
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(max)
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

const REGEX_CACHE_MAX: usize = 4096;

thread_local! {
    /// Compiled patterns by (case-insensitive flag, pattern). Per thread, so the hot path
    /// takes no lock; bounded, and cleared whole when full. Real zones use few distinct
    /// patterns (they repeat across numbers; only the replacement differs), so zone
    /// validation and DDDS compile each one once per thread.
    static REGEX_CACHE: std::cell::RefCell<[std::collections::HashMap<String, Result<regex::Regex, SubstError>>; 2]> =
        std::cell::RefCell::new([std::collections::HashMap::new(), std::collections::HashMap::new()]);
}

impl SubstExpr<'_> {
    /// Runs `f` with the compiled pattern, compiling it at most once per thread, and
    /// checks this expression's back-references against it.
    pub fn with_compiled<R>(&self, f: impl FnOnce(&regex::Regex) -> R) -> Result<R, SubstError> {
        REGEX_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let map = &mut cache[self.case_insensitive as usize];
            if !map.contains_key(self.pattern.as_ref()) {
                if map.len() >= REGEX_CACHE_MAX {
                    map.clear();
                }
                map.insert(self.pattern.to_string(), self.compile());
            }
            match &map[self.pattern.as_ref()] {
                Ok(re) => {
                    self.compile_check(re)?;
                    Ok(f(re))
                }
                // A pattern error is cached as such; a back-reference error depends on
                // the replacement, so recompute it for this expression.
                Err(SubstError::BackrefOutOfRange(_)) => self.compile().map(|re| f(&re)),
                Err(e) => Err(e.clone()),
            }
        })
    }
}

/// Applies a parsed expression to `aus` with an already compiled regex; returns whether
/// it matched. On a match the expansion is appended to `out`.
pub fn apply(expr: &SubstExpr<'_>, re: &regex::Regex, aus: &str, out: &mut String) -> bool {
    if expr.uses_backrefs() {
        match re.captures(aus) {
            Some(caps) => {
                expr.expand(Some(&caps), out);
                true
            }
            None => false,
        }
    } else if re.is_match(aus) {
        expr.expand(None, out);
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------------
// Applying a NAPTR regexp to an application unique string: the two commonest ENUM
// forms without parsing, then `^literal(.*)$` without the regex engine, then the engine.

/// Delimiters the fast path takes: never a letter, digit, `-`, backslash or regex
/// metacharacter, so that the pattern forms it recognizes cannot be confused with an
/// escaped or embedded delimiter.
fn fast_delimiter(d: u8) -> bool {
    d.is_ascii()
        && !d.is_ascii_alphanumeric()
        && !matches!(
            d,
            b'-' | b'.'
                | b'^'
                | b'$'
                | b'*'
                | b'+'
                | b'?'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'|'
                | b'\\'
        )
}

/// `b` as text when it is all ASCII. `str::from_utf8` costs three times as much on
/// the tens of bytes of a NAPTR regexp, and the fast path wants ASCII anyway.
#[inline]
fn ascii_str(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: every byte is below 0x80, and a string of ASCII bytes is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        None
    }
}

/// The two commonest ENUM regexps, applied without parsing them into a [`SubstExpr`]:
/// `D^.*$DtextD` (the result is `text` whatever the number) and `D^prefix(.*)$DtextD`
/// (a match when the AUS starts with `prefix`; `\1` in `text` stands for the rest),
/// where `prefix` holds digits, letters, `-`, `\+` and `\.`, `text` no escape but
/// `\1` (prefix form only), and an `i` flag may follow; all of it ASCII. `None` for
/// anything else, which the general path handles; where both apply they agree (see the
/// tests).
#[inline]
fn fast_regexp(raw: &[u8], aus: &str, out: &mut String) -> Option<bool> {
    let (&delim, body) = raw.split_first()?;
    if !fast_delimiter(delim) {
        return None;
    }
    let body = body.strip_prefix(b"^")?;
    // The prefix, in its escaped form, up to `(.*)$D` (or `.*$D` with no prefix).
    let (prefix, repl_start) = if body.starts_with(b".*$") && body.get(3) == Some(&delim) {
        (None, 1 + 1 + 3 + 1)
    } else {
        let mut k = 0;
        loop {
            match body.get(k..k + 2)? {
                [b'\\', b'+' | b'.'] => k += 2,
                [b'(', _] => break,
                [c, _] if c.is_ascii_alphanumeric() || *c == b'-' => k += 1,
                _ => return None,
            }
        }
        if body.get(k..k + 5)? != b"(.*)$" || *body.get(k + 5)? != delim {
            return None;
        }
        (Some(&body[..k]), 1 + 1 + k + 5 + 1)
    };
    // The replacement ends at the last delimiter, which ends the field or precedes `i`;
    // one pass over it (no early exit, so it compiles to vector code) checks that no
    // delimiter is inside and whether any backslash is.
    let (repl, case_insensitive) = match raw[repl_start..].split_last()? {
        (&d, r) if d == delim => (r, false),
        (&b'i', r) => match r.split_last()? {
            (&d, r) if d == delim => (r, true),
            _ => return None,
        },
        _ => return None,
    };
    let seen = repl.iter().fold(0u8, |seen, &c| {
        seen | u8::from(c == delim) | (u8::from(c == b'\\') << 1)
    });
    if seen & 1 != 0 {
        return None;
    }
    // Escapes: only `\1`, and only with a capture group.
    if seen & 2 != 0
        && (prefix.is_none()
            || !memchr::memchr_iter(b'\\', repl).all(|at| repl.get(at + 1) == Some(&b'1')))
    {
        return None;
    }
    let repl = ascii_str(repl)?;
    let Some(prefix) = prefix else {
        out.push_str(repl);
        return Some(true);
    };
    // Match the prefix against the AUS, unit by unit.
    let a = aus.as_bytes();
    let (mut i, mut k) = (0, 0);
    while i < prefix.len() {
        let want = if prefix[i] == b'\\' {
            i += 1;
            prefix[i]
        } else {
            prefix[i]
        };
        let Some(&got) = a.get(k) else {
            return Some(false);
        };
        let same = if case_insensitive {
            got.eq_ignore_ascii_case(&want)
        } else {
            got == want
        };
        if !same {
            return Some(false);
        }
        i += 1;
        k += 1;
    }
    let captured = &aus[k..];
    let mut pieces = repl.split("\\1");
    if let Some(first) = pieces.next() {
        out.push_str(first);
    }
    for piece in pieces {
        out.push_str(captured);
        out.push_str(piece);
    }
    Some(true)
}

/// Parses and applies a NAPTR regexp to `aus`; `Ok(true)` with the result in `out` on a
/// match.
pub fn apply_regexp(raw: &[u8], aus: &str, out: &mut String) -> Result<bool, SubstError> {
    if let Some(matched) = fast_regexp(raw, aus, out) {
        return Ok(matched);
    }
    let expr = SubstExpr::parse(raw)?;
    if expr.matches_everything() {
        expr.expand(None, out);
        return Ok(true);
    }
    if let Some(prefix) = expr.prefix_capture() {
        // `^literal(.*)$` without the regex engine (same answer; see `prefix_capture`).
        let head = aus.get(..prefix.len());
        let matched = head.is_some_and(|h| {
            if expr.case_insensitive {
                h.eq_ignore_ascii_case(&prefix)
            } else {
                h == prefix
            }
        });
        if !matched {
            return Ok(false);
        }
        let rest = &aus[prefix.len()..];
        expr.expand_with(
            |n| match n {
                0 => Some(aus),
                1 => Some(rest),
                _ => None,
            },
            out,
        );
        return Ok(true);
    }
    expr.with_compiled(|re| apply(&expr, re, aus, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(regexp: &str, aus: &str) -> Result<Option<String>, SubstError> {
        let e = SubstExpr::parse(regexp.as_bytes())?;
        let re = e.compile()?;
        let mut out = String::new();
        Ok(apply(&e, &re, aus, &mut out).then_some(out))
    }

    #[test]
    fn table() {
        let aus = "+441632960001";
        let cases: &[(&str, Result<Option<&str>, SubstError>)] = &[
            (
                "!^.*$!sip:info@example.com!",
                Ok(Some("sip:info@example.com")),
            ),
            (
                "/^.*$/sip:slash@example.com/",
                Ok(Some("sip:slash@example.com")),
            ),
            (
                "#^.*$#sip:hash@example.com#",
                Ok(Some("sip:hash@example.com")),
            ),
            (
                r"!^\+(.*)$!sip:\1@example.com!",
                Ok(Some("sip:441632960001@example.com")),
            ),
            (
                r"!^\+44(1632)(.*)$!sip:\2@\1.example.com!",
                Ok(Some("sip:960001@1632.example.com")),
            ),
            // `i` flag: the pattern letters match either case
            (
                "!^\\+44(.*)$!sip:\\1@EX.com!i",
                Ok(Some("sip:1632960001@EX.com")),
            ),
            // escaped delimiter in the replacement and in the pattern
            (r"/^\+(.*)$/sip:\1@a\/b/", Ok(Some("sip:441632960001@a/b"))),
            (r"/^\+44\/?(.*)$/x:\1/", Ok(Some("x:1632960001"))),
            ("!^\\+1(.*)$!sip:\\1@us.example!", Ok(None)),
            (r"!^.*$!sip:\0@x!", Err(SubstError::BackrefZero)),
            (r"!^.*$!sip:\1@x!", Err(SubstError::BackrefOutOfRange(1))),
            ("!^.*$!sip:x!g", Err(SubstError::BadFlag('g'))),
            ("!^.*$sip:x", Err(SubstError::MissingDelimiter('!'))),
            ("1^.*$1x1", Err(SubstError::BadDelimiter('1'))),
        ];
        for (regexp, want) in cases {
            let got = run(regexp, aus);
            let want = want.clone().map(|o| o.map(str::to_string));
            assert_eq!(got, want, "regexp {regexp}");
        }
        assert!(matches!(run("!^(.*$!x!", aus), Err(SubstError::Pattern(_))));
    }

    #[test]
    fn case_flag_applies_to_pattern() {
        assert_eq!(
            run("!^TEL(.*)$!x\\1!i", "tel123").unwrap().as_deref(),
            Some("x123")
        );
        assert_eq!(run("!^TEL(.*)$!x\\1!", "tel123").unwrap(), None);
    }

    #[test]
    fn leftmost_first_difference_documented() {
        // POSIX would give \1 = "12"; Rust's leftmost-first gives "1".
        assert_eq!(
            run(r"!^\+(1|12)(.*)$!\1!", "+123").unwrap().as_deref(),
            Some("1")
        );
        // Longer alternative first: both engines agree.
        assert_eq!(
            run(r"!^\+(12|1)(.*)$!\1!", "+123").unwrap().as_deref(),
            Some("12")
        );
    }

    #[test]
    fn fast_paths_agree_with_the_parser() {
        let regexps = [
            "!^.*$!sip:a@b.example!",
            "/^.*$/sip:a@b.example/",
            "!^.*$!!",
            "!^.*$!sip:a@b!i",
            "!^.*$!sip:\\!x@b!",
            "!^.*$!sip:\\1@b!",
            "1^.*$1x1",
            "+^.*$+x+",
            "!^.*$!sip:a@b",
            "!^.*$!sip:a@b!x",
            "!^\\+(.*)$!sip:\\1@b.example!",
            "!^\\+44(.*)$!sip:0\\1@b.example!",
            "!^\\+44(.*)$!sip:\\1@b.example;x=\\1!",
            "!^\\+1(.*)$!sip:\\1@us.example!",
            "!^\\+(.*)$!sip:\\2@b!",
            "!^\\+(.*)$!sip:\\0@b!",
            "!^\\+(.*)$!sip:\\\\1@b!",
            "!^\\+44-?(.*)$!sip:\\1@b!",
            "!^\\+(.*)$!\\1!i",
            "!^abc(.*)$!\\1!i",
            "!^abc(.*)$!\\1!",
            "!^\\+44(.*)$!sip:\\1@b",
            "!^\\+44(.*)!sip:\\1@b!",
            "!^\\+44(.*)$$!sip:\\1@b!",
            "-^\\+4-4(.*)$-x-",
            "#^\\.4(.*)$#x\\1#",
            "!^(.*)$!sip:\\1@b!",
        ];
        let inputs = [
            "+441632960001",
            "+15550001",
            "+44",
            "+4",
            "",
            "ABC1",
            "abc1",
        ];
        for raw in regexps {
            for aus in inputs {
                let mut fast = String::new();
                let fast_result = apply_regexp(raw.as_bytes(), aus, &mut fast);
                let mut slow = String::new();
                let slow_result = SubstExpr::parse(raw.as_bytes()).and_then(|e| {
                    let mut o = String::new();
                    let m = e.with_compiled(|re| apply(&e, re, aus, &mut o))?;
                    slow = o;
                    Ok(m)
                });
                assert_eq!(fast_result, slow_result, "{raw} on {aus:?}");
                assert_eq!(fast, slow, "{raw} on {aus:?}");
            }
        }
        // The forms the fast path takes, and only those.
        let mut o = String::new();
        for (raw, taken) in [
            ("!^.*$!sip:a@b!", true),
            ("!^.*$!sip:a@b!i", true),
            ("/^\\+44(.*)$/sip:0\\1@b/", true),
            ("!^ab-1\\.(.*)$!\\1!i", true),
            ("+^.*$+x+", false),
            ("!^\\+(.*)$!sip:\\2@b!", false),
            ("!^.*$!sip:\\1@b!", false),
            ("!^\\+44-?(.*)$!sip:\\1@b!", false),
            ("!^(1|12)(.*)$!\\2!", false),
        ] {
            let got = fast_regexp(raw.as_bytes(), "+44", &mut o).is_some();
            assert_eq!(got, taken, "{raw}");
        }
    }
}
