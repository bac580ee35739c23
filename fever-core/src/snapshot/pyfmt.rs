//! Python's `repr()` of scalars, written in Rust: floats (shortest round-trip digits, Python's
//! switch to exponent notation), str and bytes literals (Python's quote choice and escapes), and
//! big ints in decimal.

use std::fmt::Write;

/// `repr(float)`; `add_dot_0` appends `.0` to integral values as `float.__repr__` does (complex
/// parts go without).
pub(super) fn float(out: &mut String, v: f64, add_dot_0: bool) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v < 0.0 { "-inf" } else { "inf" });
        return;
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Python's repr does.
    let sci = format!("{v:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let decpt = exponent + 1;
    if negative {
        out.push('-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
        return;
    }
    if decpt <= 0 {
        out.push_str("0.");
        zeros(out, decpt.unsigned_abs() as usize);
        out.push_str(&digits);
        return;
    }
    let point = decpt.unsigned_abs() as usize;
    if point >= digits.len() {
        out.push_str(&digits);
        zeros(out, point - digits.len());
        if add_dot_0 {
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..point]);
        out.push('.');
        out.push_str(&digits[point..]);
    }
}

fn zeros(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push('0');
    }
}

/// `repr(complex)`: `2j`, `(1+2j)`, `(1-2j)`.
pub(super) fn complex(out: &mut String, re: f64, im: f64) {
    if re == 0.0 && re.is_sign_positive() {
        float(out, im, false);
        out.push('j');
        return;
    }
    out.push('(');
    float(out, re, false);
    if im >= 0.0 || im.is_nan() {
        out.push('+');
    }
    float(out, im, false);
    out.push_str("j)");
}

/// Python picks `'` unless the text has a `'` and no `"`.
fn quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

/// Characters `str.__repr__` escapes besides quotes and backslashes (an approximation of
/// Python's `str.isprintable`, which needs the Unicode database).
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{e000}'..='\u{f8ff}')
}

/// `repr(str)` of at most the first `max_chars` characters of `s` (the caller marks the cut).
pub(super) fn str_literal(out: &mut String, s: &str, max_chars: usize) {
    let q = quote(s.contains('\''), s.contains('"'));
    out.push(q);
    let (mut rest, mut left) = (s, max_chars);
    while left > 0 {
        // A run of printable ASCII that needs no escape goes in at once.
        let plain = rest
            .bytes()
            .take(left)
            .take_while(|&b| (b' '..=b'~').contains(&b) && b != b'\\' && char::from(b) != q)
            .count();
        out.push_str(&rest[..plain]);
        rest = &rest[plain..];
        left -= plain;
        let Some(c) = rest.chars().next().filter(|_| left > 0) else {
            break;
        };
        rest = &rest[c.len_utf8()..];
        left -= 1;
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if is_unprintable(c) => {
                let code = u32::from(c);
                let _ = match code {
                    0..=0xff => write!(out, "\\x{code:02x}"),
                    0x100..=0xffff => write!(out, "\\u{code:04x}"),
                    _ => write!(out, "\\U{code:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(q);
}

/// `repr(bytes)` of at most the first `max_bytes` bytes of `data`.
pub(super) fn bytes_literal(out: &mut String, data: &[u8], max_bytes: usize) {
    let q = quote(data.contains(&b'\''), data.contains(&b'"'));
    out.push('b');
    out.push(q);
    for &b in data.iter().take(max_bytes) {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if char::from(b) == q => {
                out.push('\\');
                out.push(q);
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push(q);
}

/// Magnitudes longer than this are written in hex: decimal conversion is quadratic.
const MAX_DECIMAL_BYTES: usize = 1024;

/// An int given as sign and big-endian magnitude, in decimal (hex when it is huge).
#[allow(clippy::cast_possible_truncation)] // quotients and remainders of 10^9 fit in u32
pub(super) fn big_int(out: &mut String, negative: bool, magnitude: &[u8]) {
    if negative {
        out.push('-');
    }
    if magnitude.len() > MAX_DECIMAL_BYTES {
        out.push_str("0x");
        for b in magnitude {
            let _ = write!(out, "{b:02x}");
        }
        return;
    }
    // Little-endian base-2^32 limbs, divided by 10^9 until zero.
    let mut limbs: Vec<u32> = magnitude
        .rchunks(4)
        .map(|chunk| chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
        .collect();
    let mut groups = Vec::new();
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    while !limbs.is_empty() {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        groups.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    match groups.split_last() {
        None => out.push('0'),
        Some((first, rest)) => {
            let _ = write!(out, "{first}");
            for group in rest.iter().rev() {
                let _ = write!(out, "{group:09}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut s = String::new();
        float(&mut s, v, true);
        s
    }

    #[test]
    fn floats_print_as_python_does() {
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123_456_789.0, "123456789.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.234e-7, "1.234e-07"),
            (1e300, "1e+300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (2.0 / 3.0, "0.6666666666666666"),
        ];
        for (v, want) in cases {
            assert_eq!(f(v), want, "{v}");
        }
    }

    #[test]
    fn complex_prints_as_python_does() {
        let c = |re, im| {
            let mut s = String::new();
            complex(&mut s, re, im);
            s
        };
        assert_eq!(c(0.0, 2.0), "2j");
        assert_eq!(c(1.0, 2.0), "(1+2j)");
        assert_eq!(c(1.0, -2.5), "(1-2.5j)");
    }

    #[test]
    fn strings_quote_and_escape_as_python_does() {
        let r = |s: &str| {
            let mut out = String::new();
            str_literal(&mut out, s, usize::MAX);
            out
        };
        assert_eq!(r("abc"), "'abc'");
        assert_eq!(r("it's"), "\"it's\"");
        assert_eq!(r("'\""), "'\\'\"'");
        assert_eq!(r("a\nb\t\\"), "'a\\nb\\t\\\\'");
        assert_eq!(r("\u{1}é\u{a0}"), "'\\x01é\\xa0'");
        let mut cut = String::new();
        str_literal(&mut cut, "abcdef", 2);
        assert_eq!(cut, "'ab'");
    }

    #[test]
    fn bytes_quote_and_escape_as_python_does() {
        let mut out = String::new();
        bytes_literal(&mut out, b"a'\x00\xff\n", usize::MAX);
        assert_eq!(out, "b\"a'\\x00\\xff\\n\"");
    }

    #[test]
    fn big_ints_print_in_decimal() {
        let d = |negative, magnitude: &[u8]| {
            let mut s = String::new();
            big_int(&mut s, negative, magnitude);
            s
        };
        assert_eq!(d(false, &[]), "0");
        assert_eq!(
            d(false, &[0x01, 0, 0, 0, 0, 0, 0, 0, 0]),
            "18446744073709551616"
        );
        assert_eq!(
            d(true, &[0x80, 0, 0, 0, 0, 0, 0, 0, 0]),
            "-2361183241434822606848"
        );
        assert_eq!(d(false, &[0x3b, 0x9a, 0xca, 0x00]), "1000000000");
        assert!(d(false, &[1; 2000]).starts_with("0x0101"));
    }
}
