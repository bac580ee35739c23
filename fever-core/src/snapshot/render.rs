//! Text forms of decoded snapshots: one python-like line of bounded width
//! ([`render_value_short`], and the [`Line`] it writes to, which `short.rs` shares to render
//! straight from the bytes) for call trees, and a stable multi-line form ([`render_pretty`])
//! with one element per line, for unified diffs.
//!
//! Elements left out by the recorder's limits show as `…+N`; values known only in part as
//! `<...>` (`<unrepresentable T>`, `<bytes len=N xxh3=H>`). Sets render sorted in the pretty
//! form (their iteration order changes from run to run); everything else keeps its order.

use std::fmt::Write;

use super::hash::content_hash;
use super::kinds::{ObjectKind, RefKind};
use super::pyfmt;
use super::value::{Array, ArrayData, Blob, Exception, Fields, Map, Object, Seq, Text, Value};

/// What a snapshot that does not decode renders as.
pub(super) const CORRUPT: &str = "<corrupt snapshot>";

/// [`render_short`](super::render_short) of a decoded value.
pub fn render_value_short(value: &Value, max_chars: usize) -> String {
    let mut line = Line::new(max_chars);
    line.value(value);
    line.finish()
}

/// Multi-line rendering for diffs: containers with one element per line (trailing commas,
/// four-space indents), sets sorted, everything else as in [`render_short`](super::render_short)
/// but never cut. An arguments snapshot renders one `name=value` per line.
pub fn render_pretty(value: &Value) -> String {
    let mut out = String::new();
    if let Value::Args(fields) = value {
        for (name, v) in &fields.entries {
            out.push_str(name);
            out.push('=');
            pretty(&mut out, v, 0);
            out.push('\n');
        }
        if fields.omitted > 0 {
            let _ = writeln!(out, "…+{}", fields.omitted);
        }
    } else {
        pretty(&mut out, value, 0);
        out.push('\n');
    }
    out
}

/// `text` cut to `max_chars` characters as a [`Line`] cuts.
pub(super) fn cut(text: &str, max_chars: usize) -> String {
    let mut line = Line::new(max_chars);
    line.push(text);
    line.finish()
}

/// The most a [`Line`] reserves up front, in bytes.
const LINE_CAPACITY: usize = 512;

/// A line with a character budget; once it is spent, the rest is dropped and the last
/// character becomes `…`.
pub(super) struct Line {
    out: String,
    left: usize,
    cut: bool,
}

impl Line {
    pub(super) fn new(max_chars: usize) -> Self {
        Self {
            // Room for a short line, so that writing it does not grow the buffer step by step.
            out: String::with_capacity(max_chars.min(LINE_CAPACITY)),
            left: max_chars,
            cut: false,
        }
    }

    /// Whether the budget is spent: nothing more will be shown.
    pub(super) fn is_cut(&self) -> bool {
        self.cut
    }

    /// Characters left in the budget.
    pub(super) fn left(&self) -> usize {
        self.left
    }

    pub(super) fn finish(mut self) -> String {
        if self.cut && self.out.pop().is_some() {
            self.out.push('…');
        }
        self.out
    }

    pub(super) fn push(&mut self, text: &str) {
        if self.cut {
            return;
        }
        if text.len() <= self.left {
            // No more characters than bytes: it fits whole.
            self.left -= text.chars().count();
            self.out.push_str(text);
            return;
        }
        let mut chars = text.char_indices();
        match chars.nth(self.left) {
            None => {
                self.left -= text.chars().count();
                self.out.push_str(text);
            }
            Some((end, _)) => {
                self.out.push_str(&text[..end]);
                self.left = 0;
                self.cut = true;
            }
        }
    }

    pub(super) fn value(&mut self, value: &Value) {
        if self.cut {
            return;
        }
        match value {
            Value::List(seq) => self.items("[", seq, "]"),
            Value::Tuple(seq) if seq.items.len() == 1 && seq.omitted == 0 => {
                self.push("(");
                self.value(&seq.items[0]);
                self.push(",)");
            }
            Value::Tuple(seq) => self.items("(", seq, ")"),
            Value::Set(seq) if is_empty(seq) => self.push("set()"),
            Value::Set(seq) => self.items("{", seq, "}"),
            Value::FrozenSet(seq) if is_empty(seq) => self.push("frozenset()"),
            Value::FrozenSet(seq) => self.items("frozenset({", seq, "})"),
            Value::Dict(map) => self.dict(map),
            Value::Object(object) => self.object(object),
            Value::Exception(exception) => {
                self.push(&exception.qualname);
                self.items("(", &exception.args, ")");
            }
            Value::Args(fields) => {
                self.push("(");
                self.named_entries(fields);
                self.push(")");
            }
            leaf => {
                let mut text = String::new();
                write_leaf(&mut text, leaf, self.left.saturating_add(1));
                self.push(&text);
            }
        }
    }

    fn items(&mut self, open: &str, seq: &Seq, close: &str) {
        self.push(open);
        for (i, item) in seq.items.iter().enumerate() {
            if self.cut {
                return;
            }
            if i > 0 {
                self.push(", ");
            }
            self.value(item);
        }
        self.omitted(!seq.items.is_empty(), seq.omitted);
        self.push(close);
    }

    pub(super) fn omitted(&mut self, after_items: bool, omitted: u64) {
        if omitted > 0 {
            if after_items {
                self.push(", ");
            }
            self.push(&format!("…+{omitted}"));
        }
    }

    fn dict(&mut self, map: &Map) {
        self.push("{");
        for (i, (key, value)) in map.entries.iter().enumerate() {
            if self.cut {
                return;
            }
            if i > 0 {
                self.push(", ");
            }
            self.value(key);
            self.push(": ");
            self.value(value);
        }
        self.omitted(!map.entries.is_empty(), map.omitted);
        self.push("}");
    }

    fn object(&mut self, object: &Object) {
        if object.kind == ObjectKind::Reduced {
            return self.reduced(object);
        }
        self.push(&object.qualname);
        self.push("(");
        if let Some(base) = &object.base {
            self.value(base);
            if !object.fields.entries.is_empty() || object.fields.omitted > 0 {
                self.push(", ");
            }
        }
        self.named_entries(&object.fields);
        self.push(")");
    }

    /// A C object known by its reduction: its repr when one was kept, else
    /// `Class(args..., [items])` (its state, if any, as `state=`).
    fn reduced(&mut self, object: &Object) {
        if let Some(Value::Str(Text::Full(repr))) = reduced_field(object, "repr") {
            return self.push(repr);
        }
        self.push(&object.qualname);
        self.push("(");
        let mut first = true;
        let mut sep = |line: &mut Self| {
            if !std::mem::take(&mut first) {
                line.push(", ");
            }
        };
        if let Some(Value::Tuple(args)) = reduced_field(object, "args") {
            for arg in &args.items {
                sep(self);
                self.value(arg);
            }
        }
        if let Some(items) = reduced_field(object, "listitems") {
            sep(self);
            self.value(items);
        }
        if let Some(state) = reduced_field(object, "state") {
            sep(self);
            self.push("state=");
            self.value(state);
        }
        self.omitted(!first, object.fields.omitted);
        self.push(")");
    }

    pub(super) fn named_entries(&mut self, fields: &Fields) {
        for (i, (name, value)) in fields.entries.iter().enumerate() {
            if self.cut {
                return;
            }
            if i > 0 {
                self.push(", ");
            }
            self.push(name);
            self.push("=");
            self.value(value);
        }
        self.omitted(!fields.entries.is_empty(), fields.omitted);
    }
}

fn is_empty(seq: &Seq) -> bool {
    seq.items.is_empty() && seq.omitted == 0
}

/// Writes a value that has no children; `max_chars` bounds how much of long literals is
/// written (the caller cuts the rest).
fn write_leaf(out: &mut String, value: &Value, max_chars: usize) {
    match value {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::BigInt {
            negative,
            magnitude,
        } => pyfmt::big_int(out, *negative, magnitude),
        Value::Float(v) => pyfmt::float(out, *v, true),
        Value::Complex { re, im } => pyfmt::complex(out, *re, *im),
        Value::Str(text) => write_text(out, text, max_chars),
        Value::Bytes { kind, blob } => match blob {
            Blob::Data(data) => {
                let name = kind.type_name();
                if name == "bytes" {
                    pyfmt::bytes_literal(out, data, max_chars);
                } else {
                    out.push_str(name);
                    out.push('(');
                    pyfmt::bytes_literal(out, data, max_chars);
                    out.push(')');
                }
            }
            Blob::Hashed { len, hash } => {
                let _ = write!(out, "<{} len={len} xxh3={hash:016x}>", kind.type_name());
            }
        },
        Value::Array(array) => write_array(out, array),
        Value::Ref {
            kind,
            module,
            qualname,
        } => write_ref(out, *kind, module, qualname),
        Value::Repr { text, .. } => {
            out.push_str(text.as_str());
            if let Text::Truncated { .. } = text {
                out.push('…');
            }
        }
        Value::Unrepresentable { type_name } => {
            let _ = write!(out, "<unrepresentable {type_name}>");
        }
        Value::Opaque { type_name } => {
            let _ = write!(out, "<{type_name} object>");
        }
        Value::DepthLimit { type_name } => out.push_str(match type_name.as_str() {
            "list" => "[…]",
            "tuple" => "(…)",
            "dict" | "set" => "{…}",
            other => {
                let _ = write!(out, "{}(…)", short_type(other));
                return;
            }
        }),
        Value::Cycle { .. } => out.push_str("..."),
        Value::List(_)
        | Value::Tuple(_)
        | Value::Set(_)
        | Value::FrozenSet(_)
        | Value::Dict(_)
        | Value::Object(_)
        | Value::Exception(_)
        | Value::Args(_) => {
            // Both callers render containers themselves; render one whole if it gets here.
            pretty(out, value, 0);
        }
    }
}

fn write_text(out: &mut String, text: &Text, max_chars: usize) {
    match text {
        Text::Full(s) => pyfmt::str_literal(out, s, max_chars),
        Text::Truncated {
            prefix,
            omitted_chars,
            ..
        } => {
            pyfmt::str_literal(out, prefix, max_chars);
            let _ = write!(out, "…+{omitted_chars}");
        }
    }
}

/// The last dotted part of a type name (`numpy.ndarray` -> `ndarray`).
fn short_type(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

fn write_array(out: &mut String, array: &Array) {
    let _ = write!(
        out,
        "{}({}, shape=(",
        short_type(&array.type_name),
        array.dtype
    );
    for (i, dim) in array.shape.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{dim}");
    }
    if array.shape.len() == 1 {
        out.push(',');
    }
    out.push(')');
    match &array.data {
        ArrayData::Data(data) => {
            let _ = write!(out, ", xxh3={:016x})", content_hash(data));
        }
        ArrayData::Hashed { hash, .. } => {
            let _ = write!(out, ", xxh3={hash:016x})");
        }
        ArrayData::Unavailable { .. } => out.push(')'),
    }
}

fn write_ref(out: &mut String, kind: RefKind, module: &str, qualname: &str) {
    let dotted = if module.is_empty() || module == "builtins" {
        qualname.to_owned()
    } else {
        format!("{module}.{qualname}")
    };
    let _ = match kind {
        RefKind::Class => write!(out, "<class '{dotted}'>"),
        RefKind::Function => write!(out, "<function {dotted}>"),
        RefKind::Builtin => write!(out, "<built-in function {dotted}>"),
        RefKind::Method => write!(out, "<bound method {dotted}>"),
        RefKind::Module => write!(out, "<module '{module}'>"),
        RefKind::EnumMember => write!(out, "{qualname}"),
    };
}

/// Writes `value` at the current position; its inner lines are indented by `indent + 1` levels.
fn pretty(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::List(seq) => pretty_items(out, "[", seq, "]", indent, false),
        Value::Tuple(seq) => pretty_items(out, "(", seq, ")", indent, false),
        Value::Set(seq) if is_empty(seq) => out.push_str("set()"),
        Value::Set(seq) => pretty_items(out, "{", seq, "}", indent, true),
        Value::FrozenSet(seq) if is_empty(seq) => out.push_str("frozenset()"),
        Value::FrozenSet(seq) => pretty_items(out, "frozenset({", seq, "})", indent, true),
        Value::Dict(map) => {
            let lines = map.entries.iter().map(|(k, v)| {
                let mut line = String::new();
                pretty(&mut line, k, indent + 1);
                line.push_str(": ");
                pretty(&mut line, v, indent + 1);
                line
            });
            pretty_block(out, "{", lines.collect(), map.omitted, "}", indent);
        }
        Value::Object(object) if object.kind == ObjectKind::Reduced => {
            out.push_str(&render_value_short(value, usize::MAX));
        }
        Value::Object(object) => {
            let mut lines = Vec::new();
            if let Some(base) = &object.base {
                let mut line = String::new();
                pretty(&mut line, base, indent + 1);
                lines.push(line);
            }
            lines.extend(named_lines(&object.fields, indent));
            let open = format!("{}(", object.qualname);
            pretty_block(out, &open, lines, object.fields.omitted, ")", indent);
        }
        Value::Exception(Exception { qualname, args, .. }) => {
            pretty_items(out, &format!("{qualname}("), args, ")", indent, false);
        }
        Value::Args(fields) => {
            let lines = named_lines(fields, indent);
            pretty_block(out, "(", lines, fields.omitted, ")", indent);
        }
        leaf => write_leaf(out, leaf, usize::MAX),
    }
}

fn named_lines(fields: &Fields, indent: usize) -> Vec<String> {
    fields
        .entries
        .iter()
        .map(|(name, v)| {
            let mut line = format!("{name}=");
            pretty(&mut line, v, indent + 1);
            line
        })
        .collect()
}

fn pretty_items(out: &mut String, open: &str, seq: &Seq, close: &str, indent: usize, sort: bool) {
    let mut lines: Vec<String> = seq
        .items
        .iter()
        .map(|item| {
            let mut line = String::new();
            pretty(&mut line, item, indent + 1);
            line
        })
        .collect();
    if sort {
        lines.sort();
    }
    pretty_block(out, open, lines, seq.omitted, close, indent);
}

/// `open`, then each line indented with a trailing comma, then `…+N`, then `close`; empty
/// blocks stay on one line.
fn pretty_block(
    out: &mut String,
    open: &str,
    lines: Vec<String>,
    omitted: u64,
    close: &str,
    indent: usize,
) {
    out.push_str(open);
    if lines.is_empty() {
        if omitted > 0 {
            let _ = write!(out, "…+{omitted}");
        }
        out.push_str(close);
        return;
    }
    let pad = "    ".repeat(indent + 1);
    out.push('\n');
    for line in lines {
        out.push_str(&pad);
        out.push_str(&line);
        out.push_str(",\n");
    }
    if omitted > 0 {
        let _ = writeln!(out, "{pad}…+{omitted}");
    }
    out.push_str(&"    ".repeat(indent));
    out.push_str(close);
}

/// The field `name` of a reduced object's snapshot.
fn reduced_field<'a>(object: &'a Object, name: &str) -> Option<&'a Value> {
    object
        .fields
        .entries
        .iter()
        .find_map(|(n, v)| (n == name).then_some(v))
}
