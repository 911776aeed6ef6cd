//! A bulk import held between its upload and its commit (SPEC §13), 16 bytes a number:
//! its key below its zone's apex, the id of its routes' shape and its line. A 10^8-line
//! upload of the generator's mix then waits in 1.6 GB beside the zone it goes into, where
//! numbers as text with their records as vectors took ~200 bytes each. The routes of
//! numbers that differ only by the number they carry (`!^.*$!sip:+15551234567@sbc3…!`)
//! are one shape, the number cut out of the regexps as the compact zone form does
//! (`zone::index::shape`), kept once in [`RouteShapes`]; routes unlike any other's cost
//! their own bytes, and a number of more than 15 digits below its apex is kept as text.
//! Zones are named by origin while staging: the keeper takes each one as served when
//! the import commits, so edits and reloads during a long upload go on unhindered.
//!
//! Owns: [`Stager`]: numbers added as the parser reads them, each found in its zone and
//! checked there (the zone an import names, read-only secondaries, delete lines in a
//! replace), a number's rows merged (consecutive rows as they come; rows far apart once
//! the numbers are sorted, by the [`Repeats`] rule of the format), and [`Staged`]: per
//! zone, its numbers in key order and those too long for a key by text.
//!
//! Must not touch: the upload's formats (the admin API parses them), SQL, or what a
//! change writes and serves (`change`, `stored`, `import`).

use super::stored::number_text;
use super::{EditError, ImportOptions, Keeper};
use crate::name::Name;
use crate::zone::Zone;
use crate::zone::index::shape::{ShapeError, number_key};
use crate::zone::kept::{Kept, NaptrSet, number_shape, shape_naptr_set, shape_naptrs};
use std::collections::HashMap;
use std::sync::Arc;

/// The shape id of a delete: the number's NAPTRs removed.
pub const DELETE: u32 = u32::MAX;

/// The last line an import may have: lines are kept in 32 bits.
pub const MAX_LINE: usize = u32::MAX as usize;

/// A staged number that has a key: 1–15 digits below its zone's apex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyed {
    /// [`number_key`] of the digits below the apex.
    pub key: u64,
    /// Its routes' id in [`RouteShapes`], or [`DELETE`].
    pub shape: u32,
    /// The line that gave it (its first, for a number of several rows); 0 for a number
    /// a replace leaves out.
    pub line: u32,
}

/// A staged number without a key (more than 15 digits below the apex, or the apex
/// itself): by its text, as the store keeps such names.
#[derive(Debug, Clone)]
pub struct Named {
    /// `+` and digits.
    pub number: Box<str>,
    pub shape: u32,
    pub line: u32,
}

/// What an import does to one zone.
pub struct StagedZone {
    /// The zone's origin (the keeper takes the copy served at the commit).
    pub origin: Name,
    /// The zone's digits ([`Zone::number_prefix`]): a number's text is `+`, these and
    /// the digits of its key.
    pub prefix: String,
    /// In key order, each key once.
    pub keyed: Vec<Keyed>,
    /// In text order, each number once.
    pub named: Vec<Named>,
}

impl StagedZone {
    fn new(zone: &Zone) -> StagedZone {
        StagedZone {
            origin: zone.origin.clone(),
            prefix: zone.number_prefix(),
            keyed: Vec::new(),
            named: Vec::new(),
        }
    }

    /// How many numbers are set or deleted.
    pub fn len(&self) -> usize {
        self.keyed.len() + self.named.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digits of a number kept by text, below the apex.
    pub fn digits_of<'n>(&self, n: &'n Named) -> &'n [u8] {
        &n.number.as_bytes()[1 + self.prefix.len()..]
    }
}

/// Keeps in `list` the `max` items of the smallest `line`s once it holds twice as many:
/// a bounded list of the first lines of a long upload, whatever order they come in.
/// Call with `done` at the end, for the final cut.
pub fn keep_first_lines<T>(list: &mut Vec<T>, max: usize, line: impl Fn(&T) -> usize, done: bool) {
    if done || list.len() >= 2 * max.max(1) {
        list.sort_by_key(|t| line(t));
        list.truncate(max);
    }
}

/// The NAPTR RRsets of staged numbers, each kept once as a shape (the number cut out;
/// [`number_shape`] of a name with no other records).
#[derive(Default)]
pub struct RouteShapes {
    ids: HashMap<Arc<[u8]>, u32, foldhash::fast::RandomState>,
    /// By id: the shape (one allocation with its key in `ids`) and how many NAPTR
    /// records it holds.
    list: Vec<(Arc<[u8]>, u32)>,
}

impl RouteShapes {
    /// The id of the shape of the NAPTR RRset `(ttl, rdatas)` for a number whose digits
    /// below the apex are `digits`; [`DELETE`] when it holds no record.
    fn intern(
        &mut self,
        digits: &[u8],
        (ttl, rdatas): (u32, &[Vec<u8>]),
    ) -> Result<u32, ShapeError> {
        let Some(shape) = number_shape(digits, Kept::Records(&[]), Some((ttl, rdatas)))? else {
            return Ok(DELETE);
        };
        if let Some(id) = self.ids.get(&shape[..]) {
            return Ok(*id);
        }
        let id = self.list.len() as u32;
        if id == DELETE {
            return Err(ShapeError::Unknown(id));
        }
        let naptrs = shape_naptrs(&shape) as u32;
        let shape: Arc<[u8]> = shape.into();
        self.ids.insert(shape.clone(), id);
        self.list.push((shape, naptrs));
        Ok(id)
    }

    /// The shape `id` stands for (`None` for [`DELETE`]).
    pub fn get(&self, id: u32) -> Option<&[u8]> {
        self.list.get(id as usize).map(|(s, _)| &s[..])
    }

    /// How many NAPTR records shape `id` holds (0 for [`DELETE`]).
    pub fn naptrs(&self, id: u32) -> usize {
        self.list.get(id as usize).map_or(0, |s| s.1 as usize)
    }

    /// The NAPTR RRset shape `id` gives the number `digits` (`None` for [`DELETE`]).
    pub fn naptr_set(&self, id: u32, digits: &[u8]) -> Result<Option<NaptrSet>, ShapeError> {
        match self.get(id) {
            Some(shape) => shape_naptr_set(shape, digits),
            None => Ok(None),
        }
    }

    /// How many distinct shapes there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// What a number given twice means in a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeats {
    /// Its rows add up, in row order (CSV: one route a row).
    Append,
    /// An error at the later line (NDJSON: one number a line).
    Refuse,
}

/// A line the stager refuses, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub field: &'static str,
    pub message: String,
}

/// The lines a stager refused: the `max` of the smallest lines listed, all counted.
#[derive(Debug, Default)]
pub struct StageErrors {
    pub list: Vec<LineError>,
    pub total: usize,
    max: usize,
}

impl StageErrors {
    fn new(max: usize) -> StageErrors {
        StageErrors {
            list: Vec::new(),
            total: 0,
            max,
        }
    }

    /// Counts `e`, and keeps it while it is among the `max` smallest lines so far.
    fn push(&mut self, e: LineError) {
        self.total += 1;
        self.list.push(e);
        keep_first_lines(&mut self.list, self.max, |e| e.line, false);
    }

    fn trim(&mut self) {
        keep_first_lines(&mut self.list, self.max, |e| e.line, true);
    }
}

/// An import read and checked, not yet written: per zone its numbers, and the shapes
/// they name.
pub struct Staged {
    pub zones: Vec<StagedZone>,
    pub shapes: RouteShapes,
    pub options: ImportOptions,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let zones: Vec<(String, usize)> = self
            .zones
            .iter()
            .map(|z| (z.origin.to_string(), z.len()))
            .collect();
        f.debug_struct("Staged")
            .field("zones", &zones)
            .field("shapes", &self.shapes.len())
            .field("options", &self.options)
            .finish()
    }
}

/// The rows of one number seen last, until a row of another number comes.
struct Pending {
    line: usize,
    number: String,
    /// `None`: a delete row.
    routes: Option<NaptrSet>,
}

/// Numbers added one row (or line) at a time, each located and checked; see the module
/// doc.
pub struct Stager<'k> {
    keeper: &'k Keeper,
    options: ImportOptions,
    repeats: Repeats,
    /// Most routes one number may have.
    max_routes: usize,
    zones: Vec<StagedZone>,
    shapes: RouteShapes,
    /// The zone (place in `zones`) and digits of the last zone found, when no other
    /// served or secondary zone lies inside it: a number with those digits and more
    /// is in it without asking the keeper.
    leaf: Option<(usize, String)>,
    pending: Option<Pending>,
}

impl Keeper {
    /// A stager for an import with these options; the zone it names (if any) must be
    /// one the API changes.
    pub fn stager(
        &self,
        options: &ImportOptions,
        repeats: Repeats,
        max_routes: usize,
    ) -> Result<Stager<'_>, EditError> {
        let mut zones = Vec::new();
        if let Some(origin) = &options.zone {
            zones.push(StagedZone::new(self.import_target(origin)?.as_ref()));
        }
        Ok(Stager {
            keeper: self,
            options: options.clone(),
            repeats,
            max_routes,
            zones,
            shapes: RouteShapes::default(),
            leaf: None,
            pending: None,
        })
    }
}

impl Stager<'_> {
    /// Adds the routes of `number` (`+digits`, as the parser checked it) given on
    /// `line`: a CSV row's one route, an NDJSON line's all; `None` deletes the number.
    /// An error may name the line of the number before, whose rows end here.
    pub fn add(
        &mut self,
        line: usize,
        number: &str,
        routes: Option<(u32, &[Vec<u8>])>,
    ) -> Result<(), LineError> {
        if line > MAX_LINE {
            return Err(LineError {
                line,
                field: "body",
                message: format!("an import has at most {MAX_LINE} lines"),
            });
        }
        if let Some(p) = self.pending.as_mut().filter(|p| p.number == number) {
            let first = p.line;
            return match self.repeats {
                Repeats::Refuse => Err(given_twice(number, first, line)),
                Repeats::Append => append(
                    &mut p.routes,
                    (first, line),
                    number,
                    routes,
                    self.max_routes,
                ),
            };
        }
        self.flush()?;
        self.pending = Some(Pending {
            line,
            number: number.to_string(),
            routes: routes.map(|(ttl, rds)| (ttl, rds.to_vec())),
        });
        Ok(())
    }

    /// The staged import: every zone's numbers sorted, a number's rows far apart merged
    /// (or refused), or the errors (those of the `max_errors` smallest lines listed).
    pub fn finish(mut self, max_errors: usize) -> Result<Staged, StageErrors> {
        let mut errors = StageErrors::new(max_errors);
        if let Err(e) = self.flush() {
            errors.push(e);
            return Err(errors);
        }
        for at in 0..self.zones.len() {
            self.merge_repeats(at, &mut errors);
        }
        if errors.total > 0 {
            errors.trim();
            return Err(errors);
        }
        Ok(Staged {
            zones: self.zones,
            shapes: self.shapes,
            options: self.options,
        })
    }

    /// Stages the pending number, found in its zone.
    fn flush(&mut self) -> Result<(), LineError> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let at_line = |message: String| LineError {
            line: p.line,
            field: "number",
            message,
        };
        if self.options.replace && p.routes.is_none() {
            return Err(at_line(format!(
                "{}: a delete line has no place in mode=replace (leave the number out \
                 of the import to delete it)",
                p.number
            )));
        }
        let (at, skip) = self.zone_of(&p.number).map_err(at_line)?;
        let digits = &p.number.as_bytes()[1 + skip..];
        let shape = match &p.routes {
            Some((ttl, rdatas)) => self
                .shapes
                .intern(digits, (*ttl, rdatas))
                .map_err(|e| at_line(e.to_string()))?,
            None => DELETE,
        };
        let line = p.line as u32;
        let zone = &mut self.zones[at];
        match number_key(digits) {
            Some(key) => zone.keyed.push(Keyed { key, shape, line }),
            None => zone.named.push(Named {
                number: p.number.into(),
                shape,
                line,
            }),
        }
        Ok(())
    }

    /// The place in `zones` of the zone `number` falls in (added when new) and how many
    /// of its digits the zone's origin holds.
    fn zone_of(&mut self, number: &str) -> Result<(usize, usize), String> {
        let digits = &number[1..];
        if let Some((at, prefix)) = &self.leaf
            && digits.len() > prefix.len()
            && digits.starts_with(prefix.as_str())
        {
            return Ok((*at, prefix.len()));
        }
        let (zone, _) = self.keeper.locate(number).map_err(|e| e.to_string())?;
        // By origin: a copy published during the upload is the same zone.
        if let Some(target) = self.options.zone.as_ref()
            && *target != zone.origin
        {
            return Err(format!(
                "{number} is in zone {}, not in {target}, the zone this import is for",
                zone.origin_text
            ));
        }
        let at = match self.zones.iter().position(|z| z.origin == zone.origin) {
            Some(at) => at,
            None => {
                self.zones.push(StagedZone::new(&zone));
                self.zones.len() - 1
            }
        };
        let prefix = &self.zones[at].prefix;
        let skip = prefix.len();
        self.leaf = self.keeper.is_leaf(prefix).then(|| (at, prefix.clone()));
        Ok((at, skip))
    }

    /// Sorts zone `at`'s numbers and merges (or refuses) the rows of one number that
    /// were not consecutive.
    fn merge_repeats(&mut self, at: usize, errors: &mut StageErrors) {
        let zone = &mut self.zones[at];
        zone.keyed.sort_unstable_by_key(|k| (k.key, k.line));
        zone.named
            .sort_by(|a, b| (&a.number, a.line).cmp(&(&b.number, b.line)));
        let has_repeats = zone.keyed.windows(2).any(|w| w[0].key == w[1].key)
            || zone.named.windows(2).any(|w| w[0].number == w[1].number);
        if !has_repeats {
            return;
        }
        let mut keyed = std::mem::take(&mut zone.keyed);
        let mut named = std::mem::take(&mut zone.named);
        let prefix = self.zones[at].prefix.clone();
        let skip = prefix.len();
        let mut merge = Merge {
            shapes: &mut self.shapes,
            repeats: self.repeats,
            max_routes: self.max_routes,
            errors,
        };
        keyed.dedup_by(|later, kept| {
            kept.key == later.key && {
                let number = number_text(&prefix, kept.key as i64);
                merge.rows(
                    &number,
                    skip,
                    (&mut kept.shape, kept.line),
                    (later.shape, later.line),
                );
                true
            }
        });
        named.dedup_by(|later, kept| {
            kept.number == later.number && {
                merge.rows(
                    &kept.number,
                    skip,
                    (&mut kept.shape, kept.line),
                    (later.shape, later.line),
                );
                true
            }
        });
        let zone = &mut self.zones[at];
        zone.keyed = keyed;
        zone.named = named;
    }
}

/// Merges the rows of one number found apart after the sort.
struct Merge<'a> {
    shapes: &'a mut RouteShapes,
    repeats: Repeats,
    max_routes: usize,
    errors: &'a mut StageErrors,
}

impl Merge<'_> {
    /// The rows of `number` (`skip` digits of it in the zone's origin) on line `first`
    /// (shape `kept`) and `later` merged into `kept`, or an error noted.
    fn rows(
        &mut self,
        number: &str,
        skip: usize,
        (kept, first): (&mut u32, u32),
        (shape, later): (u32, u32),
    ) {
        let (first, later) = (first as usize, later as usize);
        let outcome = match self.repeats {
            Repeats::Refuse => Err(given_twice(number, first, later)),
            Repeats::Append => self.append(number, skip, (kept, first), (shape, later)),
        };
        if let Err(e) = outcome {
            self.errors.push(e);
        }
    }

    fn append(
        &mut self,
        number: &str,
        skip: usize,
        (kept, first): (&mut u32, usize),
        (shape, later): (u32, usize),
    ) -> Result<(), LineError> {
        let digits = &number.as_bytes()[1 + skip..];
        let shape_error = |e: ShapeError| LineError {
            line: later,
            field: "number",
            message: e.to_string(),
        };
        let mut routes = self.shapes.naptr_set(*kept, digits).map_err(shape_error)?;
        let more = self.shapes.naptr_set(shape, digits).map_err(shape_error)?;
        let more = more.as_ref().map(|(ttl, rds)| (*ttl, &rds[..]));
        append(&mut routes, (first, later), number, more, self.max_routes)?;
        *kept = match &routes {
            Some((ttl, rds)) => self
                .shapes
                .intern(digits, (*ttl, rds))
                .map_err(shape_error)?,
            None => DELETE,
        };
        Ok(())
    }
}

/// Adds the routes of `number`'s row on line `later` to those of its rows from line
/// `first` on: one TTL for all (RFC 2181 §5.2), at most `max_routes`, and a delete row
/// only alone.
fn append(
    routes: &mut Option<NaptrSet>,
    (first, later): (usize, usize),
    number: &str,
    more: Option<(u32, &[Vec<u8>])>,
    max_routes: usize,
) -> Result<(), LineError> {
    let error = |field, message| LineError {
        line: later,
        field,
        message,
    };
    let (Some((ttl, rdatas)), Some((more_ttl, more))) = (routes.as_mut(), more) else {
        return Err(error(
            "uri",
            format!(
                "{number} has rows on lines {first} and {later}, one with an empty uri; an empty uri deletes a number and must be its only row"
            ),
        ));
    };
    if *ttl != more_ttl {
        return Err(error(
            "ttl",
            format!(
                "{more_ttl} differs from {ttl} given for {number} on line {first}; a number's routes share one TTL (RFC 2181 §5.2)"
            ),
        ));
    }
    if rdatas.len() + more.len() > max_routes {
        return Err(error(
            "number",
            format!("more than {max_routes} routes for {number}"),
        ));
    }
    rdatas.extend_from_slice(more);
    Ok(())
}

fn given_twice(number: &str, first: usize, later: usize) -> LineError {
    LineError {
        line: later,
        field: "number",
        message: format!("{number} is also on line {first}; give each number once"),
    }
}
