//! `--junit FILE`: the verdicts as `JUnit` XML, the format CI systems read: one `<testcase>` per
//! call (class name = module, name = `qualname[k]`), a `<failure>` holding the diff, a
//! `<skipped>` with the reason.

use std::fmt::Write;

use super::report::{Summary, Verdict};
use super::select::Case;

/// One checked call, for the report.
#[derive(Debug, Clone, Copy)]
pub struct Tested<'a> {
    /// The call.
    pub case: &'a Case,
    /// What checking it found.
    pub verdict: &'a Verdict,
    /// How long re-invoking it took, in seconds.
    pub seconds: f64,
}

/// The `JUnit` XML document of a run named `suite`.
pub fn junit_xml(suite: &str, tested: &[Tested<'_>]) -> String {
    let mut summary = Summary::default();
    for t in tested {
        summary.add(t.verdict);
    }
    let total: f64 = tested.iter().map(|t| t.seconds).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{total:.6}\">",
        escape(suite),
        tested.len(),
        summary.failed,
        summary.skipped
    );
    for t in tested {
        let qualname = t.case.id.strip_prefix(&format!("{}.", t.case.code.module));
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.6}\"",
            escape(&t.case.code.module),
            escape(qualname.unwrap_or(&t.case.id)),
            escape(&t.case.code.file),
            t.case.code.first_line,
            t.seconds
        );
        match t.verdict {
            Verdict::Passed => out.push_str("/>\n"),
            Verdict::Failed(report) => {
                let _ = writeln!(
                    out,
                    ">\n    <failure message=\"the result differs from the recording\">{}</failure>\n  </testcase>",
                    escape(report)
                );
            }
            Verdict::Skipped(reason) => {
                let _ = writeln!(
                    out,
                    ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                    escape(reason)
                );
            }
        }
    }
    out.push_str("</testsuite></testsuites>\n");
    out
}

/// `text` as XML character data or attribute value: markup characters escaped, characters XML
/// 1.0 forbids (most control characters) replaced by `?`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::CodeInfo;

    fn case(id: &str) -> Case {
        Case {
            id: id.into(),
            code: CodeInfo {
                id: 0,
                module: "shop".into(),
                qualname: "Cart.total".into(),
                file: "shop.py".into(),
                first_line: 3,
                code_hash: 0,
            },
            args: None,
            expected: None,
            skip: None,
            end_event: 0,
            callers: Vec::new(),
            yields: None,
        }
    }

    #[test]
    fn one_testcase_per_call_with_counts_and_escaped_text() {
        let (a, b, c) = (
            case("shop.Cart.total[1]"),
            case("shop.Cart.total[2]"),
            case("x"),
        );
        let passed = Verdict::Passed;
        let failed = Verdict::Failed("-<a & 'b'>\n+\u{1}\"c\"".into());
        let skipped = Verdict::Skipped("a <lambda>".into());
        let xml = junit_xml(
            "fever check run.trace",
            &[
                Tested {
                    case: &a,
                    verdict: &passed,
                    seconds: 0.5,
                },
                Tested {
                    case: &b,
                    verdict: &failed,
                    seconds: 0.25,
                },
                Tested {
                    case: &c,
                    verdict: &skipped,
                    seconds: 0.0,
                },
            ],
        );
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"0.750000\""),
            "{xml}"
        );
        assert!(
            xml.contains("classname=\"shop\" name=\"Cart.total[1]\" file=\"shop.py\" line=\"3\""),
            "{xml}"
        );
        assert!(
            xml.contains(">-&lt;a &amp; &apos;b&apos;&gt;\n+?&quot;c&quot;</failure>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"a &lt;lambda&gt;\"/>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase ").count(), 3);
    }
}
