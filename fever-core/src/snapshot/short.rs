//! [`render_short`] and [`render_args_short`]: the one-line text of a snapshot, written straight
//! from its bytes with a character budget, without building the [`Value`] tree.
//!
//! The text is exactly what rendering the decoded tree gives ([`render_value_short`]): both write
//! to the same [`Line`]. Once the line is full, the rest of the snapshot is only checked (as
//! [`decode`](super::decode) would check it, so bytes that do not decode still render as
//! `<corrupt snapshot>`), never formatted. The common values (scalars, strings, containers,
//! arguments, plain objects) are rendered from the bytes; the rare ones whose text needs a look
//! ahead (reduced C objects) or is built by the tree renderer anyway (arrays, references, reprs,
//! ...) are decoded and rendered as a tree, which gives the same text.
//!
//! [`render_value_short`]: super::render_value_short

use std::fmt::Write;

use super::decode::{self, check_depth, end};
use super::format::{tag, unzigzag, Reader, VERSION};
use super::kinds::ObjectKind;
use super::pyfmt;
use super::render::{cut, Line, CORRUPT};
use super::value::Value;
use super::SnapshotError;

/// One line, python-like rendering of snapshot bytes, at most `max_chars` characters (cut
/// with `…`). An arguments snapshot renders as `(x=1, y='a')`; bytes that do not decode as
/// `<corrupt snapshot>`.
pub fn render_short(bytes: &[u8], max_chars: usize) -> String {
    render(bytes, max_chars, false)
}

/// One line rendering of an arguments snapshot without parentheses, `x=1, y='a'`, at most
/// `max_chars` characters; any other snapshot renders as [`render_short`] does.
pub fn render_args_short(bytes: &[u8], max_chars: usize) -> String {
    render(bytes, max_chars, true)
}

/// The most the scratch buffer of a leaf's text reserves up front, in bytes.
const SCRATCH_CAPACITY: usize = 512;

fn render(bytes: &[u8], max_chars: usize, bare_args: bool) -> String {
    let mut short = Short {
        r: Reader::new(bytes),
        line: Line::new(max_chars),
        scratch: String::with_capacity(max_chars.min(SCRATCH_CAPACITY)),
    };
    match short.root(bare_args) {
        Ok(()) => short.line.finish(),
        Err(_) => cut(CORRUPT, max_chars),
    }
}

/// The bytes being read and the line being written.
struct Short<'a> {
    r: Reader<'a>,
    line: Line,
    /// A leaf's text before it goes into the line.
    scratch: String,
}

impl Short<'_> {
    /// The version byte, one root value (arguments in parentheses unless `bare_args`), and
    /// nothing after it.
    fn root(&mut self, bare_args: bool) -> Result<(), SnapshotError> {
        let version = self.r.u8()?;
        if version != VERSION {
            return Err(SnapshotError::BadVersion(version));
        }
        if self.r.peek()? == tag::ARGS {
            self.r.u8()?;
            if !bare_args {
                self.line.push("(");
            }
            self.named_entries(1)?;
            if !bare_args {
                self.line.push(")");
            }
        } else {
            self.value(0)?;
        }
        match self.r.remaining() {
            0 => Ok(()),
            n => Err(SnapshotError::TrailingBytes(n)),
        }
    }

    /// One value, which `depth` containers enclose.
    fn value(&mut self, depth: usize) -> Result<(), SnapshotError> {
        if self.line.is_cut() {
            return skip(&mut self.r, depth);
        }
        let start = self.r.clone();
        let t = self.r.u8()?;
        match t {
            tag::NONE => self.line.push("None"),
            tag::FALSE => self.line.push("False"),
            tag::TRUE => self.line.push("True"),
            tag::INT => {
                let v = unzigzag(self.r.varint()?);
                self.scratch.clear();
                let _ = write!(self.scratch, "{v}");
                self.line.push(&self.scratch);
            }
            tag::STR | tag::STR_TRUNCATED => {
                let s = self.r.str()?;
                self.scratch.clear();
                pyfmt::str_literal(&mut self.scratch, s, self.line.left().saturating_add(1));
                if t == tag::STR_TRUNCATED {
                    let omitted = self.r.varint()?;
                    self.r.u64_le()?;
                    let _ = write!(self.scratch, "…+{omitted}");
                }
                self.line.push(&self.scratch);
            }
            tag::LIST => self.items("[", "]", depth + 1)?,
            tag::TUPLE => self.tuple(depth + 1)?,
            tag::SET => self.set("{", "set()", "}", depth + 1)?,
            tag::FROZENSET => self.set("frozenset({", "frozenset()", "})", depth + 1)?,
            tag::DICT => self.dict(depth + 1)?,
            tag::OBJECT if !self.is_reduced_object() => self.object(depth + 1)?,
            tag::EXCEPTION => self.exception(depth + 1)?,
            _ => {
                // Rare, or rendered from the whole value: decode it and render the tree.
                self.r = start;
                let value = decode::value(&mut self.r, depth)?;
                self.line.value(&value);
            }
        }
        Ok(())
    }

    /// The items of a list, tuple or set up to its `END`, after `open` (the first item, if
    /// any, already rendered when `rendered` is 1), then the count left out and `close`.
    fn rest_of_items(
        &mut self,
        mut rendered: usize,
        close: &str,
        depth: usize,
    ) -> Result<(), SnapshotError> {
        loop {
            if let Some(omitted) = end(&mut self.r)? {
                self.line.omitted(rendered > 0, omitted);
                self.line.push(close);
                return Ok(());
            }
            if rendered > 0 {
                self.line.push(", ");
            }
            self.value(depth)?;
            rendered += 1;
        }
    }

    fn items(&mut self, open: &str, close: &str, depth: usize) -> Result<(), SnapshotError> {
        check_depth(depth)?;
        self.line.push(open);
        self.rest_of_items(0, close, depth)
    }

    /// `(x,)` for a tuple of one item (none left out), else like a list.
    fn tuple(&mut self, depth: usize) -> Result<(), SnapshotError> {
        check_depth(depth)?;
        self.line.push("(");
        if let Some(omitted) = end(&mut self.r)? {
            self.line.omitted(false, omitted);
            self.line.push(")");
            return Ok(());
        }
        self.value(depth)?;
        if self.r.peek()? == tag::END {
            let mut after = self.r.clone();
            after.u8()?;
            if after.varint()? == 0 {
                self.r = after;
                self.line.push(",)");
                return Ok(());
            }
        }
        self.rest_of_items(1, ")", depth)
    }

    /// A set or frozenset: `empty` when it has no item and none left out.
    fn set(
        &mut self,
        open: &str,
        empty: &str,
        close: &str,
        depth: usize,
    ) -> Result<(), SnapshotError> {
        check_depth(depth)?;
        match end(&mut self.r)? {
            Some(0) => self.line.push(empty),
            Some(omitted) => {
                self.line.push(open);
                self.line.omitted(false, omitted);
                self.line.push(close);
            }
            None => {
                self.line.push(open);
                self.rest_of_items(0, close, depth)?;
            }
        }
        Ok(())
    }

    fn dict(&mut self, depth: usize) -> Result<(), SnapshotError> {
        check_depth(depth)?;
        self.line.push("{");
        let mut rendered = 0;
        loop {
            if let Some(omitted) = end(&mut self.r)? {
                self.line.omitted(rendered > 0, omitted);
                self.line.push("}");
                return Ok(());
            }
            if rendered > 0 {
                self.line.push(", ");
            }
            self.value(depth)?;
            self.line.push(": ");
            self.value(depth)?;
            rendered += 1;
        }
    }

    /// Whether the object whose tag was just read is a reduced C object (rendered from fields
    /// looked up by name, so from the tree).
    fn is_reduced_object(&self) -> bool {
        self.r
            .clone()
            .u8()
            .is_ok_and(|kind| ObjectKind::from_byte(kind) == Some(ObjectKind::Reduced))
    }

    /// `Class(base, name=value, ...)`: an object that is not a reduced one.
    fn object(&mut self, depth: usize) -> Result<(), SnapshotError> {
        check_depth(depth)?;
        let kind = ObjectKind::from_byte(self.r.u8()?)
            .ok_or_else(|| self.r.invalid("unknown object kind"))?;
        if self.r.u8()? > 1 {
            return Err(self.r.invalid("object flag is not 0 or 1"));
        }
        self.r.str()?;
        let qualname = self.r.str()?;
        self.line.push(qualname);
        self.line.push("(");
        if kind == ObjectKind::Subclass {
            self.value(depth)?;
            // `, ` unless the fields are empty with none left out (`END 0`).
            let mut after = self.r.clone();
            let no_fields = after.u8()? == tag::END && after.varint()? == 0;
            if !no_fields {
                self.line.push(", ");
            }
        }
        self.named_entries(depth)?;
        self.line.push(")");
        Ok(())
    }

    /// `Error(args...)`: its message is not shown, only checked.
    fn exception(&mut self, depth: usize) -> Result<(), SnapshotError> {
        check_depth(depth)?;
        self.r.str()?;
        let qualname = self.r.str()?;
        if self.r.peek()? == tag::NONE {
            self.r.u8()?;
        } else {
            decode::text(&mut self.r)?;
        }
        self.line.push(qualname);
        self.items("(", ")", depth)
    }

    /// `name=value, ...` up to the `END`, then the count left out.
    fn named_entries(&mut self, depth: usize) -> Result<(), SnapshotError> {
        check_depth(depth)?;
        let mut rendered = 0;
        loop {
            if let Some(omitted) = end(&mut self.r)? {
                self.line.omitted(rendered > 0, omitted);
                return Ok(());
            }
            if self.r.u8()? != tag::FIELD {
                return Err(self.r.invalid("expected a field name"));
            }
            let name = self.r.str()?;
            if rendered > 0 {
                self.line.push(", ");
            }
            self.line.push(name);
            self.line.push("=");
            self.value(depth)?;
            rendered += 1;
        }
    }
}

/// Checks one value, which `depth` containers enclose, as [`decode`](super::decode) would,
/// without building it; the common kinds without allocating.
fn skip(r: &mut Reader<'_>, depth: usize) -> Result<(), SnapshotError> {
    let start = r.clone();
    match r.u8()? {
        tag::NONE | tag::FALSE | tag::TRUE => {}
        tag::INT => {
            r.varint()?;
        }
        tag::FLOAT => {
            r.u64_le()?;
        }
        tag::STR => {
            r.str()?;
        }
        tag::STR_TRUNCATED => {
            r.str()?;
            r.varint()?;
            r.u64_le()?;
        }
        tag::LIST | tag::TUPLE | tag::SET | tag::FROZENSET => {
            check_depth(depth + 1)?;
            while end(r)?.is_none() {
                skip(r, depth + 1)?;
            }
        }
        tag::DICT => {
            check_depth(depth + 1)?;
            while end(r)?.is_none() {
                skip(r, depth + 1)?;
                skip(r, depth + 1)?;
            }
        }
        _ => {
            *r = start;
            let _: Value = decode::value(r, depth)?;
        }
    }
    Ok(())
}
