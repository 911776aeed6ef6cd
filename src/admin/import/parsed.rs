//! What the two import formats read a body into: the numbers to write ([`Import`]),
//! the errors and warnings by line, capped ([`Capped`]), and the numbers seen so far
//! ([`Seen`]: each number once).
//!
//! Must not touch: the formats themselves (`csv.rs`, `ndjson.rs`) or HTTP (`mod.rs`).

use crate::admin::problem::FieldError;
use crate::keeper::ImportItem;
use std::collections::HashMap;

/// Errors listed in one answer; the rest are counted.
pub const MAX_ERRORS: usize = 100;

/// What one import says about its lines: at most [`MAX_ERRORS`] listed, all counted.
#[derive(Debug)]
pub struct Capped<T> {
    pub list: Vec<T>,
    pub total: usize,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped {
            list: Vec::new(),
            total: 0,
        }
    }
}

impl<T: Shorten> Capped<T> {
    /// Counts `item`, and keeps it (shortened) while fewer than [`MAX_ERRORS`] are.
    pub(super) fn push(&mut self, mut item: T) {
        self.total += 1;
        if self.list.len() < MAX_ERRORS {
            item.shorten();
            self.list.push(item);
        }
    }
}

/// The longest message kept: a message may quote a field of the upload, and a field
/// may be a megabyte long.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// A message cut to [`MAX_MESSAGE_BYTES`] (on a character boundary, marked `…`).
pub trait Shorten {
    fn shorten(&mut self);
}

impl Shorten for String {
    fn shorten(&mut self) {
        if self.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !self.is_char_boundary(end) {
                end -= 1;
            }
            self.truncate(end);
            self.push('…');
        }
    }
}

impl Shorten for FieldError {
    fn shorten(&mut self) {
        self.detail.shorten();
        self.field.shorten();
    }
}

/// Warnings of an import, each `line N: …`.
pub type Warnings = Capped<String>;

/// A bulk import that failed: its errors.
pub type ImportErrors = Capped<FieldError>;

/// Numbers seen so far in one import, each with the index or line the caller keeps.
/// Numbers of up to 15 digits (E.164) are kept as one integer with a fast hash: ten
/// million of them are hashed once each; longer ones (private numbering plans) as text.
#[derive(Default)]
pub struct Seen {
    short: HashMap<u64, usize, foldhash::fast::RandomState>,
    long: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
}

impl Seen {
    /// Notes `number` (`+` and digits, as `parse_e164` checked it) with `value`; the
    /// value it had when it was seen before.
    pub fn insert(&mut self, number: &str, value: usize) -> Option<usize> {
        match short_key(number) {
            Some(k) => self.short.insert(k, value),
            None => self.long.insert(number.into(), value),
        }
    }

    pub fn get(&self, number: &str) -> Option<usize> {
        match short_key(number) {
            Some(k) => self.short.get(&k).copied(),
            None => self.long.get(number).copied(),
        }
    }
}

/// Up to 15 digits as one integer: the zone index's number key, whose trailing zero
/// nibbles keep `+0123` and `+123` apart.
fn short_key(number: &str) -> Option<u64> {
    crate::zone::index::shape::number_key(number.trim_start_matches('+').as_bytes())
}

/// An import as parsed: the numbers to write and the warnings (each `line N: …`).
#[derive(Debug)]
pub struct Import {
    pub items: Vec<ImportItem>,
    pub warnings: Warnings,
}
