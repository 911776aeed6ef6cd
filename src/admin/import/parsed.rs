//! What the two import formats give besides the staged numbers: the errors and
//! warnings by line, capped ([`Capped`]), and the stager's errors as the answer lists
//! them ([`staged_error`]).
//!
//! Must not touch: the formats themselves (`csv.rs`, `ndjson.rs`) or HTTP (`mod.rs`).

use crate::admin::problem::FieldError;
use crate::keeper::staged::{LineError, StageErrors};

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

/// The lines the keeper's stager refused when it finished, as the answer lists them.
pub fn staged_errors(e: StageErrors) -> ImportErrors {
    ImportErrors {
        list: e.list.into_iter().map(staged_error).collect(),
        total: e.total,
    }
}

/// A line the keeper's stager refused, as the answer lists it.
pub fn staged_error(e: LineError) -> FieldError {
    FieldError {
        line: Some(e.line),
        field: e.field.into(),
        detail: e.message,
    }
}
