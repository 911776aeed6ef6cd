//! From what the caller dialled to an E.164 number.
//!
//! Owns: reading the number out of a Request-URI (`sip:`/`sips:` user part,
//! percent-decoded, with `;user=phone` honoured but not required; `tel:` global numbers;
//! `tel:` local numbers with `phone-context=+CC…`, RFC 3966 §5.1.5), removing visual
//! separators (`-.()`, and spaces in a bare number as people paste it), the dial plan
//! (rules in order, first match wins; each rule, a [`crate::config::DialRule`], parsed
//! and applied by `config::dialplan`), and the digit-count rules of SPEC §10.4/§10.20.
//!
//! Must not touch: lookups. The result is a plain `+digits` string or the SIP status
//! that the number earns by itself (404, 416, 484).

use crate::config::DialplanConfig;

/// Why a dialled string is not a routable number; each maps to a SIP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("URI scheme {0:?} is not sip, sips or tel")]
    UnsupportedScheme(String),
    #[error("{0}")]
    NotANumber(String),
    #[error("{0}")]
    Incomplete(String),
}

impl NumberError {
    pub fn status(&self) -> u16 {
        match self {
            NumberError::UnsupportedScheme(_) => 416,
            NumberError::NotANumber(_) => 404,
            NumberError::Incomplete(_) => 484,
        }
    }
}

/// The dialled string as read from the input, before the dial plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialled {
    /// Separators removed, percent-escapes decoded; `+digits` when already global.
    pub text: String,
    /// The URI scheme, lower case, when the input was a URI.
    pub scheme: Option<&'static str>,
}

/// A normalized number and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// `+` and digits.
    pub e164: String,
    /// The dial-plan rule that produced it (its index) and the text it was given; `None`
    /// when the dialled text already was E.164.
    pub rule: Option<(usize, String)>,
}

/// Reads the dialled number from a Request-URI or from a bare number as typed.
pub fn extract(input: &str) -> Result<Dialled, NumberError> {
    let mut text = String::new();
    let scheme = extract_into(input, &mut text)?;
    Ok(Dialled { text, scheme })
}

/// As [`extract`], writing the dialled text into `out` (cleared first), so that a caller
/// routing many numbers reuses one buffer; returns the scheme.
pub fn extract_into(input: &str, out: &mut String) -> Result<Option<&'static str>, NumberError> {
    out.clear();
    let input = input.trim_ascii();
    let colon = memchr::memchr(b':', input.as_bytes());
    let (scheme, body) = match colon.map(|c| (&input[..c], &input[c + 1..])) {
        Some((s, rest)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic()) => {
            let scheme = ["sip", "sips", "tel"]
                .into_iter()
                .find(|k| s.eq_ignore_ascii_case(k))
                .ok_or_else(|| NumberError::UnsupportedScheme(s.to_ascii_lowercase()))?;
            (Some(scheme), rest)
        }
        _ => (None, input),
    };
    let number_part = match scheme {
        Some("sip" | "sips") => {
            let at = memchr::memrchr(b'@', body.as_bytes()).ok_or_else(|| {
                NumberError::NotANumber("the Request-URI has no user part".into())
            })?;
            &body[..at]
        }
        _ => body,
    };
    let decoded = percent_decode(number_part)?;
    // A sip user part or a tel URI may carry `;`-parameters (RFC 3261 §19.1.6, RFC 3966).
    let (number, params) = match scheme {
        Some(_) => match memchr::memchr(b';', decoded.as_bytes()) {
            Some(semi) => (&decoded[..semi], &decoded[semi + 1..]),
            None => (&*decoded, ""),
        },
        None => (&*decoded, ""),
    };
    let number = match scheme {
        Some("sip" | "sips") => {
            memchr::memchr(b':', number.as_bytes()).map_or(number, |c| &number[..c])
        }
        _ => number,
    };
    write_with_context(number, params, out);
    // A bare number is typed or pasted by a person ("+44 1632 960002"): spaces separate
    // digit groups there. A URI cannot carry a bare space, so only a bare number gets it.
    let spaces = scheme.is_none();
    if out.bytes().fold(false, |v, b| v | is_separator(b, spaces)) {
        out.retain(|c| !c.is_ascii() || !is_separator(c as u8, spaces));
    }
    Ok(scheme)
}

/// A number as a person types or pastes it (`+44 1632 960001`, `+44-1632-960001`)
/// without its visual separators, as a bare number is read here.
pub fn without_separators(s: &str) -> String {
    s.chars()
        .filter(|&c| !c.is_ascii() || !is_separator(c as u8, true))
        .collect()
}

/// RFC 3966 visual separators (`-.()`), and a space when `spaces` is set.
fn is_separator(b: u8, spaces: bool) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')') || (spaces && b == b' ')
}

/// Writes a number with `phone-context=+CC…` applied to a local number (RFC 3966
/// §5.1.5); a domain context leaves the number local, for the dial plan.
fn write_with_context(number: &str, params: &str, out: &mut String) {
    if !number.starts_with('+') {
        let ctx = params.split(';').find_map(|p| {
            let (n, v) = p.split_once('=')?;
            n.eq_ignore_ascii_case("phone-context").then_some(v)
        });
        if let Some(c) = ctx.filter(|c| c.starts_with('+')) {
            out.push_str(c);
        }
    }
    out.push_str(number);
}

/// Decodes `%XX` escapes; borrows when there are none (the usual case).
fn percent_decode(s: &str) -> Result<std::borrow::Cow<'_, str>, NumberError> {
    if memchr::memchr(b'%', s.as_bytes()).is_none() {
        return Ok(std::borrow::Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| NumberError::NotANumber(format!("bad percent-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| NumberError::NotANumber(format!("{s:?} is not UTF-8 once decoded")))
}

/// Classifies `+digits` by the digit-count limits.
fn check_global(text: &str, plan: &DialplanConfig) -> Result<(), NumberError> {
    let digits = &text[1..];
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::NotANumber(format!(
            "{text:?} has characters other than digits"
        )));
    }
    if digits.len() < plan.min_digits {
        return Err(NumberError::Incomplete(format!(
            "{text} has {} digits, fewer than dialplan.min_digits = {}",
            digits.len(),
            plan.min_digits
        )));
    }
    if digits.len() > plan.max_digits {
        return Err(NumberError::NotANumber(format!(
            "{text} has {} digits, more than dialplan.max_digits = {}",
            digits.len(),
            plan.max_digits
        )));
    }
    Ok(())
}

/// Classifies text the dial plan did not turn into `+digits`.
fn local_verdict(text: &str, plan: &DialplanConfig, rule: Option<usize>) -> NumberError {
    if text.is_empty() {
        return NumberError::Incomplete("no digits were dialled".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return NumberError::NotANumber(format!("{text:?} is not a telephone number"));
    }
    if text.len() > plan.max_digits {
        return NumberError::NotANumber(format!(
            "{text} has {} digits, more than dialplan.max_digits = {}",
            text.len(),
            plan.max_digits
        ));
    }
    match rule {
        Some(i) => NumberError::Incomplete(format!(
            "dial-plan rule {i} turned the number into {text:?}, not +digits"
        )),
        None => NumberError::Incomplete(format!(
            "{text} is not in international form and no dial-plan rule matches it"
        )),
    }
}

/// Runs the dialled text through the dial plan in place (SPEC §3, §10.4): on success
/// `text` is `+digits` and the result names the rule that made it, if one did.
pub fn normalize_in_place(
    text: &mut String,
    plan: &DialplanConfig,
) -> Result<Option<usize>, NumberError> {
    if text.starts_with('+') {
        check_global(text, plan)?;
        return Ok(None);
    }
    for (i, rule) in plan.rules.iter().enumerate() {
        if let Some(out) = rule.apply(text) {
            if out.starts_with('+') {
                check_global(&out, plan)?;
                *text = out;
                return Ok(Some(i));
            }
            return Err(local_verdict(&out, plan, Some(i)));
        }
    }
    Err(local_verdict(text, plan, None))
}

/// Runs a dialled string through the dial plan (SPEC §3, §10.4).
pub fn normalize(mut dialled: String, plan: &DialplanConfig) -> Result<Normalized, NumberError> {
    let original = dialled.clone();
    let rule = normalize_in_place(&mut dialled, plan)?;
    Ok(Normalized {
        e164: dialled,
        rule: rule.map(|i| (i, original)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DialRule;

    fn plan() -> DialplanConfig {
        let rule = |m: &str, r: &str| DialRule::parse(m, r).unwrap();
        DialplanConfig {
            rules: vec![
                rule(r"^00([1-9][0-9]+)$", "+$1"),
                rule(r"^0([1-9][0-9]+)$", "+44$1"),
                rule(r"^9([0-9]{3})$", "$1"),
            ],
            min_digits: 3,
            max_digits: 15,
        }
    }

    fn run(input: &str) -> Result<String, u16> {
        let d = extract(input).map_err(|e| e.status())?;
        normalize(d.text, &plan())
            .map(|n| n.e164)
            .map_err(|e| e.status())
    }

    #[test]
    fn normalization_table() {
        let cases: &[(&str, Result<&str, u16>)] = &[
            ("+441632960001", Ok("+441632960001")),
            (
                "sip:+441632960001@example.net;user=phone",
                Ok("+441632960001"),
            ),
            ("sip:+44-1632-960.001@example.net", Ok("+441632960001")),
            ("sip:(01632)960001@example.net", Ok("+441632960001")),
            ("sips:%2B441632960001@example.net", Ok("+441632960001")),
            ("%2B441632960001", Ok("+441632960001")),
            ("tel:+44-1632-960001", Ok("+441632960001")),
            ("tel:960001;phone-context=+44-1632", Ok("+441632960001")),
            ("tel:960001;phone-context=example.com", Err(484)),
            (
                "sip:960001;phone-context=+441632@gw.example;user=phone",
                Ok("+441632960001"),
            ),
            ("00441632960001", Ok("+441632960001")),
            ("01632960001", Ok("+441632960001")),
            ("sip:9123@pbx", Err(484)),
            ("1234", Err(484)),
            ("+12", Err(484)),
            ("+", Err(484)),
            ("+1234567890123456", Err(404)),
            ("1234567890123456", Err(404)),
            ("sip:alice@example.com", Err(404)),
            ("sip:*98@example.com", Err(404)),
            ("+44abc", Err(404)),
            ("mailto:a@b", Err(416)),
            ("http://x", Err(416)),
            ("sip:example.com", Err(404)),
            ("sip:%zz@x", Err(404)),
            // spaces separate digit groups in a bare number, as people paste them
            ("+44 1632 960002", Ok("+441632960002")),
            ("+44%201632%20960002", Ok("+441632960002")),
            ("0 1632 960001", Ok("+441632960001")),
            // not inside a URI, where a space cannot be
            ("sip:+44%201632960001@x", Err(404)),
        ];
        for (input, want) in cases {
            assert_eq!(run(input), want.map(str::to_string), "input {input}");
        }
    }

    #[test]
    fn digit_limits_are_configurable() {
        let mut p = plan();
        p.min_digits = 1;
        p.max_digits = 20;
        assert_eq!(normalize("+7".into(), &p).unwrap().e164, "+7");
        assert_eq!(
            normalize("+12345678901234567890".into(), &p).unwrap().e164,
            "+12345678901234567890"
        );
        assert_eq!(
            normalize("+123456789012345678901".into(), &p)
                .unwrap_err()
                .status(),
            404
        );
    }
}
