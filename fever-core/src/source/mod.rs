//! Python source files as text and as an index of their definitions.
//!
//! [`decode_source`] turns a file's bytes into text the way Python's tokenizer does (BOM, PEP 263
//! coding cookie). [`scan`] cuts the text into logical lines (strings, brackets, continuations and
//! comments understood), and [`index`] builds the tree of definitions — functions, classes, methods
//! and top-level statements — with qualified names, line ranges and content hashes.
//! [`bound_names`] tells which names a piece of module-level code binds; [`from_import`] reads a
//! `from m import a as b` statement; [`future_features`] which `__future__` features a module
//! turns on. [`synthetic`] builds the sources that compile one definition at its real lines.

mod bindings;
mod decode;
mod index;
mod scan;
pub mod synthetic;

pub use bindings::{bound_names, from_import, future_features, future_features_in, FromImport};
pub use decode::{decode_source, decode_source_owned, SourceError};
pub use index::{Definition, Index, Kind};
pub use scan::{scan, LogicalLine, Scan};
