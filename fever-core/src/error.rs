//! The error type of fever-core.

/// Errors from reading Python source.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not valid in the file's declared (or default UTF-8) encoding.
    #[error("line {line}: cannot decode as {encoding}: {detail}")]
    Undecodable {
        line: usize,
        encoding: String,
        detail: String,
    },
    /// The file declares an encoding this crate does not decode itself; the caller (which has
    /// Python's codecs) must decode it.
    #[error("encoding {0} must be decoded by Python's codecs")]
    ForeignEncoding(String),
}
