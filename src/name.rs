//! Domain names as the zone index, the master-file parser, the configuration and the
//! DNS wire code need them: the bottom of the tree, importing nothing of this crate.
//!
//! Owns: the record-type numbers the crate names (`TYPE_A`, `TYPE_NAPTR`, …), the
//! compact [`Label`] stored in every index node, the label ordering used by the
//! index (length first, then ASCII-case-insensitive bytes), and conversion of
//! presentation-format names (RFC 1035 §5.1 escapes `\X` and `\DDD`, `@`, relative and
//! absolute names) into label lists and uncompressed wire form.
//!
//! Must not touch: record data or lookups. hickory's `Name` is not used here because the
//! index stores millions of labels and a `Name` costs several heap allocations each; this
//! module keeps one inline label per index node instead.

use std::cmp::Ordering;

/// Record types this crate looks at by number (RFC 1035, 3596, 3403, 4034).
pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_NAPTR: u16 = 35;
pub const TYPE_DS: u16 = 43;

/// Longest label allowed (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;
/// Longest name in wire form, including the root label (RFC 1035 §2.3.4).
pub const MAX_NAME_WIRE: usize = 255;

/// One label, lower-cased, stored inline when short (every ENUM digit label is one byte).
#[derive(Clone)]
pub struct Label(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; 22] },
    Heap(Box<[u8]>),
}

impl Label {
    /// Builds a label from raw bytes, lower-casing ASCII letters (DNS names compare
    /// case-insensitively, RFC 4343).
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= 22 {
            let mut buf = [0u8; 22];
            for (dst, src) in buf.iter_mut().zip(bytes) {
                *dst = src.to_ascii_lowercase();
            }
            Label(Repr::Inline {
                len: bytes.len() as u8,
                buf,
            })
        } else {
            Label(Repr::Heap(bytes.to_ascii_lowercase().into_boxed_slice()))
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Heap(b) => b,
        }
    }

    pub fn is_wildcard(&self) -> bool {
        self.as_bytes() == b"*"
    }
}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_label(f, self.as_bytes())
    }
}

/// The index's sibling order: shorter labels first, then bytewise ignoring ASCII case.
/// Any total order consistent with case-insensitive equality works for binary search;
/// this one is cheap for the one-byte digit labels that dominate ENUM zones.
#[inline]
/// Labels below a zone apex (closest to the apex first) as one key, each label
/// `[len][bytes]`, case kept: the owner form the store, the journal and IXFR share.
pub fn labels_key<L: AsRef<[u8]>>(below_apex: &[L]) -> Vec<u8> {
    let mut key = Vec::with_capacity(below_apex.len() * 2);
    for l in below_apex {
        let l = l.as_ref();
        key.push(l.len() as u8);
        key.extend_from_slice(l);
    }
    key
}

/// The labels of a [`labels_key`] key, in order; a damaged key ends early.
pub fn key_labels(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let len = usize::from(*key.get(i)?);
        let label = key.get(i + 1..i + 1 + len)?;
        i += 1 + len;
        Some(label)
    })
}

pub fn cmp_labels(stored: &[u8], query: &[u8]) -> Ordering {
    match stored.len().cmp(&query.len()) {
        Ordering::Equal => {
            for (a, b) in stored.iter().zip(query) {
                match a.cmp(&b.to_ascii_lowercase()) {
                    Ordering::Equal => continue,
                    other => return other,
                }
            }
            Ordering::Equal
        }
        other => other,
    }
}

/// Writes one label in presentation form, escaping what RFC 1035 §5.1 requires.
pub fn write_label(out: &mut impl std::fmt::Write, label: &[u8]) -> std::fmt::Result {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                out.write_char('\\')?;
                out.write_char(b as char)?;
            }
            0x21..=0x7e => out.write_char(b as char)?,
            _ => write!(out, "\\{b:03}")?,
        }
    }
    Ok(())
}

/// Errors from parsing a presentation-format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty label in name")]
    EmptyLabel,
    #[error("label longer than 63 bytes")]
    LabelTooLong,
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("bad escape sequence in name")]
    BadEscape,
    #[error("relative name with no origin")]
    NoOrigin,
}

/// A fully qualified name as labels, leaf first (`["4", "4", "e164", "arpa"]`), case kept.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Name {
    labels: Vec<Box<[u8]>>,
}

impl Name {
    pub fn root() -> Self {
        Name { labels: Vec::new() }
    }

    /// Parses a name in presentation form. A name without a trailing dot is relative to
    /// `origin`; `@` is the origin itself.
    pub fn parse(text: &[u8], origin: Option<&Name>) -> Result<Name, NameError> {
        if text == b"@" {
            return origin.cloned().ok_or(NameError::NoOrigin);
        }
        if text == b"." {
            return Ok(Name::root());
        }
        let mut labels = Vec::new();
        let mut cur = Vec::new();
        let mut i = 0;
        let mut absolute = false;
        while i < text.len() {
            let b = text[i];
            if b == b'\\' {
                let (byte, used) = unescape(&text[i..]).ok_or(NameError::BadEscape)?;
                cur.push(byte);
                i += used;
                continue;
            }
            if b == b'.' {
                if cur.is_empty() {
                    return Err(NameError::EmptyLabel);
                }
                labels.push(std::mem::take(&mut cur).into_boxed_slice());
                if i + 1 == text.len() {
                    absolute = true;
                }
                i += 1;
                continue;
            }
            cur.push(b);
            i += 1;
        }
        if !cur.is_empty() {
            labels.push(cur.into_boxed_slice());
        }
        if labels.iter().any(|l| l.len() > MAX_LABEL) {
            return Err(NameError::LabelTooLong);
        }
        if !absolute {
            let origin = origin.ok_or(NameError::NoOrigin)?;
            labels.extend(origin.labels.iter().cloned());
        }
        let name = Name { labels };
        if name.wire_len() > MAX_NAME_WIRE {
            return Err(NameError::NameTooLong);
        }
        Ok(name)
    }

    /// Parses a UTF-8 string; convenience for config values and tests.
    pub fn from_text(text: &str) -> Result<Name, NameError> {
        let fq = if text.ends_with('.') {
            text.to_string()
        } else {
            format!("{text}.")
        };
        Name::parse(fq.as_bytes(), None)
    }

    pub fn labels(&self) -> &[Box<[u8]>] {
        &self.labels
    }

    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    pub fn wire_len(&self) -> usize {
        self.labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1
    }

    /// True when `self` equals `ancestor` or lies below it (case-insensitive).
    pub fn is_at_or_below(&self, ancestor: &Name) -> bool {
        let n = ancestor.labels.len();
        if self.labels.len() < n {
            return false;
        }
        self.labels[self.labels.len() - n..]
            .iter()
            .zip(&ancestor.labels)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// The labels of `self` below `ancestor`, in root-side order (closest to the
    /// ancestor first). Caller must have checked `is_at_or_below`.
    pub fn relative_root_side(&self, ancestor: &Name) -> impl Iterator<Item = &[u8]> {
        let keep = self.labels.len() - ancestor.labels.len();
        self.labels[..keep].iter().rev().map(|l| &l[..])
    }

    /// Uncompressed wire form, case kept.
    pub fn to_wire(&self, out: &mut Vec<u8>) {
        for l in &self.labels {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
    }

    /// Builds a name from uncompressed wire form; `None` when malformed.
    pub fn from_wire(wire: &[u8]) -> Option<(Name, usize)> {
        let mut labels = Vec::new();
        let mut i = 0;
        loop {
            let len = *wire.get(i)? as usize;
            i += 1;
            if len == 0 {
                return Some((Name { labels }, i));
            }
            if len > MAX_LABEL || i + len > wire.len() {
                return None;
            }
            labels.push(wire[i..i + len].into());
            i += len;
        }
    }

    pub fn eq_ignore_case(&self, other: &Name) -> bool {
        self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// A case-folded copy, for use as a map key.
    pub fn to_lowercase(&self) -> Name {
        Name {
            labels: self
                .labels
                .iter()
                .map(|l| l.to_ascii_lowercase().into_boxed_slice())
                .collect(),
        }
    }

    /// Prepends one label (leaf side).
    pub fn prepend(&self, label: &[u8]) -> Name {
        let mut labels = Vec::with_capacity(self.labels.len() + 1);
        labels.push(label.into());
        labels.extend(self.labels.iter().cloned());
        Name { labels }
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for l in &self.labels {
            write_label(f, l)?;
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// Length of the uncompressed wire-form name at the start of `wire`, without
/// allocating; `None` when malformed.
#[inline]
pub fn wire_name_len(wire: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let len = *wire.get(i)? as usize;
        i += 1;
        if len == 0 {
            return (i <= MAX_NAME_WIRE).then_some(i);
        }
        if len > MAX_LABEL {
            return None;
        }
        i += len;
    }
}

/// Decodes one `\X` or `\DDD` escape at the start of `s`; returns the byte and the
/// number of input bytes used.
pub fn unescape(s: &[u8]) -> Option<(u8, usize)> {
    debug_assert_eq!(s.first(), Some(&b'\\'));
    let next = *s.get(1)?;
    if next.is_ascii_digit() {
        let d = s.get(1..4)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
        if v > 255 {
            return None;
        }
        Some((v as u8, 4))
    } else {
        Some((next, 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_relative_absolute_and_escapes() {
        let origin = Name::from_text("e164.arpa").unwrap();
        let n = Name::parse(b"1.5.5", Some(&origin)).unwrap();
        assert_eq!(n.to_string(), "1.5.5.e164.arpa.");
        let n = Name::parse(b"a\\.b.example.", None).unwrap();
        assert_eq!(n.label_count(), 2);
        assert_eq!(n.to_string(), "a\\.b.example.");
        let n = Name::parse(b"\\065bc.", None).unwrap();
        assert_eq!(n.to_string(), "Abc.");
        assert_eq!(Name::parse(b"a..b.", None), Err(NameError::EmptyLabel));
        assert_eq!(Name::parse(b"x", None), Err(NameError::NoOrigin));
        let long = vec![b'a'; 64];
        assert_eq!(
            Name::parse(&long, Some(&origin)),
            Err(NameError::LabelTooLong)
        );
    }

    #[test]
    fn label_order_ignores_case() {
        assert_eq!(cmp_labels(b"abc", b"ABC"), Ordering::Equal);
        assert_eq!(cmp_labels(b"9", b"10"), Ordering::Less);
        assert_eq!(cmp_labels(b"b", b"A"), Ordering::Greater);
    }
}
