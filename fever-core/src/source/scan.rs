//! A tokenizer-level scan of Python source into logical lines.
//!
//! It understands just enough of Python's lexical rules to find where each logical line starts and
//! ends: string literals of every kind (prefixes, triple quotes, escapes, f-strings with nested
//! replacement fields as in PEP 701), bracket nesting, backslash continuations and comments. It
//! never fails: text that Python would reject lexically (an unterminated string, an unclosed or
//! stray bracket) is reported in [`Scan::broken`] with its line, so the caller can ask Python's own
//! compiler for the exact message.

/// One logical line: a statement header or a simple statement, possibly spanning physical lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// Byte offset of the start of its first physical line (before the indentation).
    pub start: usize,
    /// Byte offset of its first non-blank character.
    pub text_start: usize,
    /// Byte offset just past its last character (before the newline or a trailing comment).
    pub end: usize,
    /// 1-based number of its first physical line.
    pub first_line: usize,
    /// 1-based number of its last physical line.
    pub last_line: usize,
    /// Indentation width of its first physical line (tabs to multiples of 8, as Python does).
    pub indent: usize,
    /// Byte offset of the first `:` outside brackets and strings (not `:=`), if any.
    pub colon: Option<usize>,
    /// It has an `=` (or augmented `+=` ...) outside brackets and strings: an assignment.
    pub assigns: bool,
}

/// The logical lines of a file, and the first line where the lexical structure broke, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub lines: Vec<LogicalLine>,
    pub broken: Option<usize>,
}

/// Cuts `text` into logical lines.
pub fn scan(text: &str) -> Scan {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
        broken: None,
    };
    let mut lines = Vec::new();
    while scanner.pos < scanner.bytes.len() {
        if let Some(line) = scanner.logical_line() {
            lines.push(line);
        }
    }
    Scan {
        lines,
        broken: scanner.broken,
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    broken: Option<usize>,
}

const STRING_PREFIXES: [&[u8]; 11] = [
    b"r", b"u", b"b", b"f", b"t", b"br", b"rb", b"fr", b"rf", b"tr", b"rt",
];

impl Scanner<'_> {
    fn peek(&self, offset: usize) -> u8 {
        self.bytes.get(self.pos + offset).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn mark_broken(&mut self, line: usize) {
        self.broken.get_or_insert(line);
    }

    /// Consumes one physical line start; returns a logical line, or `None` for a blank or
    /// comment-only line.
    fn logical_line(&mut self) -> Option<LogicalLine> {
        let start = self.pos;
        let mut indent = 0;
        while !self.at_end() {
            match self.peek(0) {
                b' ' => indent += 1,
                b'\t' => indent = (indent / 8 + 1) * 8,
                b'\x0c' => indent = 0,
                _ => break,
            }
            self.pos += 1;
        }
        if self.at_end() || matches!(self.peek(0), b'#' | b'\n' | b'\r') {
            self.skip_comment();
            self.newline();
            return None;
        }
        let text_start = self.pos;
        let first_line = self.line;
        let mut depth: usize = 0;
        let mut colon = None;
        let mut assigns = false;
        let mut end = self.pos;
        loop {
            if self.at_end() {
                if depth > 0 {
                    self.mark_broken(first_line);
                }
                break;
            }
            let c = self.peek(0);
            match c {
                b'#' => self.skip_comment(),
                b'\\' if self.peek(1) == b'\n' => {
                    self.pos += 2;
                    self.line += 1;
                }
                b'\\' if self.peek(1) == b'\r' => {
                    self.pos += if self.peek(2) == b'\n' { 3 } else { 2 };
                    self.line += 1;
                }
                b'\n' | b'\r' => {
                    if depth == 0 {
                        let last_line = self.line;
                        self.newline();
                        return Some(LogicalLine {
                            start,
                            text_start,
                            end,
                            first_line,
                            last_line,
                            indent,
                            colon,
                            assigns,
                        });
                    }
                    self.newline();
                }
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                    end = self.pos;
                }
                b')' | b']' | b'}' => {
                    if depth == 0 {
                        self.mark_broken(self.line);
                    }
                    depth = depth.saturating_sub(1);
                    self.pos += 1;
                    end = self.pos;
                }
                b':' => {
                    if depth == 0 && colon.is_none() && self.peek(1) != b'=' {
                        colon = Some(self.pos);
                    }
                    self.pos += 1;
                    end = self.pos;
                }
                b'=' => {
                    let before = if self.pos > 0 {
                        self.bytes[self.pos - 1]
                    } else {
                        0
                    };
                    if depth == 0 && self.peek(1) != b'=' && !b"=<>!".contains(&before) {
                        assigns = true;
                    }
                    self.pos += if self.peek(1) == b'=' { 2 } else { 1 };
                    end = self.pos;
                }
                b'"' | b'\'' => {
                    self.string(b"");
                    end = self.pos;
                }
                c if is_ident_byte(c) => {
                    self.name_or_prefixed_string();
                    end = self.pos;
                }
                b' ' | b'\t' | b'\x0c' => self.pos += 1,
                _ => {
                    self.pos += 1;
                    end = self.pos;
                }
            }
        }
        Some(LogicalLine {
            start,
            text_start,
            end,
            first_line,
            last_line: self.line,
            indent,
            colon,
            assigns,
        })
    }

    /// Consumes a name, or a string literal with a prefix (`rb"..."`, `f'...'`).
    fn name_or_prefixed_string(&mut self) {
        let start = self.pos;
        while is_ident_byte(self.peek(0)) {
            self.pos += 1;
        }
        let name = &self.bytes[start..self.pos];
        if matches!(self.peek(0), b'"' | b'\'')
            && name.len() <= 2
            && STRING_PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(name))
        {
            let prefix = name.to_ascii_lowercase();
            self.string(&prefix);
        }
    }

    fn skip_comment(&mut self) {
        while !self.at_end() && !matches!(self.peek(0), b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    /// Consumes a `\n`, `\r\n` or `\r` (or nothing at the end of the text).
    fn newline(&mut self) {
        match self.peek(0) {
            b'\r' if self.peek(1) == b'\n' => self.pos += 2,
            b'\r' | b'\n' => self.pos += 1,
            _ => return,
        }
        self.line += 1;
    }

    /// Consumes a string literal starting at the opening quote.
    fn string(&mut self, prefix: &[u8]) {
        let quote = self.peek(0);
        let start_line = self.line;
        let triple = self.peek(1) == quote && self.peek(2) == quote;
        let formatted = prefix.contains(&b'f') || prefix.contains(&b't');
        self.pos += if triple { 3 } else { 1 };
        loop {
            if self.at_end() {
                self.mark_broken(start_line);
                return;
            }
            let c = self.peek(0);
            match c {
                b'\\' => {
                    self.pos += 1;
                    if self.peek(0) == b'\n' || self.peek(0) == b'\r' {
                        self.newline();
                    } else if !self.at_end() {
                        self.pos += 1;
                    }
                }
                b'\n' | b'\r' => {
                    if !triple {
                        self.mark_broken(start_line);
                        return;
                    }
                    self.newline();
                }
                c if c == quote => {
                    if !triple {
                        self.pos += 1;
                        return;
                    }
                    if self.peek(1) == quote && self.peek(2) == quote {
                        self.pos += 3;
                        return;
                    }
                    self.pos += 1;
                }
                b'{' if formatted => {
                    if self.peek(1) == b'{' {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        self.replacement_field();
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Consumes the code of an f-string replacement field up to and including its closing `}`.
    fn replacement_field(&mut self) {
        let mut depth = 0usize;
        while !self.at_end() {
            let c = self.peek(0);
            match c {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' | b']' => {
                    depth = depth.saturating_sub(1);
                    self.pos += 1;
                }
                b'}' => {
                    self.pos += 1;
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                }
                b'"' | b'\'' => self.string(b""),
                b'\n' | b'\r' => self.newline(),
                c if is_ident_byte(c) => self.name_or_prefixed_string(),
                _ => self.pos += 1,
            }
        }
    }
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<(usize, usize, usize, &str)> {
        scan(source)
            .lines
            .iter()
            .map(|l| {
                (
                    l.first_line,
                    l.last_line,
                    l.indent,
                    &source[l.text_start..l.end],
                )
            })
            .collect()
    }

    #[test]
    fn simple_lines_and_blank_lines() {
        let src = "x = 1\n\n# comment\n  \ny = 2  # trailing\n";
        assert_eq!(texts(src), vec![(1, 1, 0, "x = 1"), (5, 5, 0, "y = 2")]);
    }

    #[test]
    fn brackets_and_continuations_join_lines() {
        let src = "f(1,\n  2)\nx = 1 + \\\n  2\ndef g(\n    a,\n) -> int:\n    return a\n";
        let lines = texts(src);
        assert_eq!(lines[0], (1, 2, 0, "f(1,\n  2)"));
        assert_eq!(lines[1], (3, 4, 0, "x = 1 + \\\n  2"));
        assert_eq!(lines[2].0..=lines[2].1, 5..=7);
        assert_eq!(lines[3], (8, 8, 4, "return a"));
    }

    #[test]
    fn strings_hide_brackets_colons_and_comments() {
        let src = "s = '(' + \"#\" + '''\n)\n''' + r'\\\\'\nt = 2\n";
        let lines = texts(src);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0..=lines[0].1, 1..=3);
        assert_eq!(lines[1], (4, 4, 0, "t = 2"));
        assert!(scan(src).broken.is_none());
    }

    #[test]
    fn fstring_with_nested_quotes_pep701() {
        let src = "x = f\"{d[\"k\"]} {{ {y:>{w}}\"\nz = 1\n";
        let result = scan(src);
        assert_eq!(result.lines.len(), 2, "{result:?}");
        assert!(result.broken.is_none());
    }

    #[test]
    fn header_colon_skips_walrus_and_brackets() {
        let src = "def f(x: int = {1: 2}) -> dict[str, int]: return x\nif (y := 3): pass\n";
        let result = scan(src);
        let first = &result.lines[0];
        assert_eq!(
            &src[first.colon.unwrap()..first.colon.unwrap() + 8],
            ": return"
        );
        let second = &result.lines[1];
        assert_eq!(&src[second.colon.unwrap()..second.end], ": pass");
    }

    #[test]
    fn assignments_are_told_from_comparisons() {
        let assigns = |src: &str| scan(src).lines[0].assigns;
        assert!(assigns("x = 1\n"));
        assert!(assigns("x += 1\n"));
        assert!(assigns("x: int = f(a=1)\n"));
        assert!(!assigns("f(a=1)\n"));
        assert!(!assigns("x == 1\n"));
        assert!(!assigns("x <= 1 or y != 2 or z >= 3\n"));
        assert!(!assigns("print('a = b')\n"));
    }

    #[test]
    fn tabs_count_to_eight() {
        let src = "if x:\n\ty = 1\n";
        assert_eq!(texts(src)[1].2, 8);
    }

    #[test]
    fn crlf_line_endings() {
        let src = "x = 1\r\ndef f():\r\n    return 2\r\n";
        assert_eq!(
            texts(src),
            vec![
                (1, 1, 0, "x = 1"),
                (2, 2, 0, "def f():"),
                (3, 3, 4, "return 2")
            ]
        );
    }

    #[test]
    fn unterminated_string_and_unclosed_bracket_are_broken() {
        assert_eq!(scan("x = 1\ny = 'abc\nz = 3\n").broken, Some(2));
        assert_eq!(scan("x = 1\ny = (1,\nz = 3\n").broken, Some(2));
        assert_eq!(scan("x = '''abc\n").broken, Some(1));
        assert_eq!(scan("x = 1)\n").broken, Some(1));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for src in [
            "",
            "\\",
            "'",
            "f'{",
            "f'{'",
            "\r",
            "(\\\r",
            "\u{feff}x",
            "\x00\x01",
            "f'{x:{'",
        ] {
            let _ = scan(src);
        }
    }
}
