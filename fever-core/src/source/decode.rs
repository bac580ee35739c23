//! PEP 263: how Python decides the encoding of a source file.

/// Why a Python source file's bytes cannot be decoded here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceError {
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

/// Decodes `bytes` as Python would: a UTF-8 BOM, or a `coding[:=]` cookie on line 1 or 2, or UTF-8.
/// UTF-8, ASCII and Latin-1 are decoded here; any other declared encoding returns
/// [`SourceError::ForeignEncoding`] so the caller can use Python's codecs.
pub fn decode_source(bytes: &[u8]) -> Result<String, SourceError> {
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return decode_utf8(rest);
    }
    let encoding = declared_encoding(bytes).unwrap_or_else(|| "utf-8".to_owned());
    match normalize(&encoding).as_str() {
        "utf-8" => decode_utf8(bytes),
        "ascii" => {
            if let Some(pos) = bytes.iter().position(|b| !b.is_ascii()) {
                return Err(SourceError::Undecodable {
                    line: line_of(bytes, pos),
                    encoding: "ascii".into(),
                    detail: format!("invalid byte 0x{:02x}", bytes[pos]),
                });
            }
            decode_utf8(bytes)
        }
        "latin-1" => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => Err(SourceError::ForeignEncoding(encoding)),
    }
}

/// [`decode_source`] of bytes the caller is done with: UTF-8 without a BOM (the usual case)
/// becomes the text without a copy. An error gives the bytes back, for Python's codecs to decode
/// a [`SourceError::ForeignEncoding`].
pub fn decode_source_owned(bytes: Vec<u8>) -> Result<String, (SourceError, Vec<u8>)> {
    let plain_utf8 = !bytes.starts_with(b"\xef\xbb\xbf")
        && declared_encoding(&bytes).is_none_or(|encoding| normalize(&encoding) == "utf-8");
    let bytes = if plain_utf8 {
        match String::from_utf8(bytes) {
            Ok(text) => return Ok(text),
            Err(err) => err.into_bytes(),
        }
    } else {
        bytes
    };
    decode_source(&bytes).map_err(|err| (err, bytes))
}

fn decode_utf8(bytes: &[u8]) -> Result<String, SourceError> {
    String::from_utf8(bytes.to_vec()).map_err(|err| {
        let pos = err.utf8_error().valid_up_to();
        SourceError::Undecodable {
            line: line_of(bytes, pos),
            encoding: "utf-8".into(),
            detail: format!("invalid byte 0x{:02x}", bytes[pos]),
        }
    })
}

fn line_of(bytes: &[u8], pos: usize) -> usize {
    1 + bytes[..pos].iter().filter(|&&b| b == b'\n').count()
}

/// The encoding named by a coding cookie on the first or second line (the second only when the
/// first is a comment or blank).
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let first = lines.next()?;
    if let Some(enc) = cookie(first) {
        return Some(enc);
    }
    let trimmed = first
        .iter()
        .skip_while(|b| b" \t\x0c\r".contains(b))
        .copied()
        .collect::<Vec<_>>();
    if trimmed.is_empty() || trimmed[0] == b'#' {
        return lines.next().and_then(cookie);
    }
    None
}

fn cookie(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let comment = line.trim_start_matches([' ', '\t', '\x0c']);
    if !comment.starts_with('#') {
        return None;
    }
    let at = comment.find("coding")?;
    let rest = &comment[at + "coding".len()..];
    let rest = rest.strip_prefix([':', '='])?;
    let name: String = rest
        .trim_start_matches([' ', '\t'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    (!name.is_empty()).then_some(name)
}

fn normalize(encoding: &str) -> String {
    let lower = encoding.to_ascii_lowercase().replace('_', "-");
    match lower.as_str() {
        "utf-8" | "utf8" | "utf-8-sig" => "utf-8".into(),
        "ascii" | "us-ascii" => "ascii".into(),
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" => "latin-1".into(),
        _ => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_bytes_decode_as_borrowed_ones_do() {
        let cases: [&[u8]; 7] = [
            b"x = 1\n",
            "x = '\u{e9}'\n".as_bytes(),
            b"\xef\xbb\xbfx = 1\n",
            b"x = 1\ny = '\xff'\n",
            b"# -*- coding: latin-1 -*-\nx = '\xe9'\n",
            b"# coding: ascii\nx = '\xe9'\n",
            b"# coding: cp1252\nx = 1\n",
        ];
        for bytes in cases {
            match (decode_source(bytes), decode_source_owned(bytes.to_vec())) {
                (Ok(text), Ok(owned)) => assert_eq!(text, owned),
                (Err(err), Err((owned, back))) => {
                    assert_eq!(err, owned);
                    assert_eq!(back, bytes, "the bytes come back");
                }
                (borrowed, owned) => panic!("{borrowed:?} vs {owned:?} for {bytes:?}"),
            }
        }
    }

    #[test]
    fn utf8_by_default_and_with_bom() {
        assert_eq!(decode_source("x = 'é'\n".as_bytes()).unwrap(), "x = 'é'\n");
        assert_eq!(decode_source(b"\xef\xbb\xbfx = 1\n").unwrap(), "x = 1\n");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = decode_source(b"x = 1\ny = '\xff'\n").unwrap_err();
        assert_eq!(
            err,
            SourceError::Undecodable {
                line: 2,
                encoding: "utf-8".into(),
                detail: "invalid byte 0xff".into()
            }
        );
    }

    #[test]
    fn latin1_cookie_on_second_line() {
        let text = decode_source(b"#!/usr/bin/env python\n# -*- coding: latin-1 -*-\nx = '\xe9'\n")
            .unwrap();
        assert!(text.ends_with("x = 'é'\n"));
    }

    #[test]
    fn cookie_on_second_line_only_after_comment() {
        assert_eq!(declared_encoding(b"x = 1\n# coding: latin-1\n"), None);
        assert_eq!(
            declared_encoding(b"\n# vim: set fileencoding=cp1252 :\n"),
            Some("cp1252".into())
        );
    }

    #[test]
    fn other_encodings_go_to_python() {
        assert_eq!(
            decode_source(b"# coding: cp1252\nx = 1\n"),
            Err(SourceError::ForeignEncoding("cp1252".into()))
        );
    }
}
