//! The JUnit XML report of a replay: one `<testsuite>` per dialect, one `<testcase>` per
//! example, `<failure>` with the full diff, `<skipped>` with the reason. CI servers read it.

use std::fmt::Write as _;

use crate::replay::Record;
use credgate_examples::runner::Outcome;

/// The report for `records` (in replay order; suites keep the order dialects first appear).
pub fn render(records: &[Record]) -> String {
    let mut suites: Vec<(&str, Vec<&Record>)> = Vec::new();
    for r in records {
        match suites.iter_mut().find(|(name, _)| *name == r.dialect) {
            Some((_, list)) => list.push(r),
            None => suites.push((&r.dialect, vec![r])),
        }
    }
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let (failures, skipped, time) = counts(records.iter());
    let _ = writeln!(
        xml,
        "<testsuites name=\"credgate replay\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        records.len()
    );
    for (name, cases) in &suites {
        let (failures, skipped, time) = counts(cases.iter().copied());
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
            attr(name),
            cases.len()
        );
        for case in cases {
            testcase(&mut xml, case);
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn testcase(xml: &mut String, case: &Record) {
    let _ = write!(
        xml,
        "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" time=\"{:.3}\"",
        attr(&case.name),
        attr(&format!("replay.{}", case.dialect)),
        attr(&case.file.display().to_string()),
        case.seconds
    );
    match &case.outcome {
        Outcome::Passed => xml.push_str("/>\n"),
        Outcome::Skipped(reason) => {
            let _ = writeln!(xml, ">\n      <skipped message=\"{}\"/>", attr(reason));
            xml.push_str("    </testcase>\n");
        }
        Outcome::Failed(mismatches) => {
            let summary = match mismatches.as_slice() {
                [one] => one.to_string(),
                many => format!("{} mismatches; first: {}", many.len(), many[0]),
            };
            let mut detail = format!("{}\n", case.description);
            for m in mismatches {
                let _ = writeln!(detail, "{m}");
            }
            let _ = writeln!(
                xml,
                ">\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>",
                attr(&summary),
                text(&detail)
            );
            xml.push_str("    </testcase>\n");
        }
    }
}

/// (failures, skipped, seconds).
fn counts<'a>(records: impl Iterator<Item = &'a Record>) -> (usize, usize, f64) {
    records.fold((0, 0, 0.0), |(f, s, t), r| match r.outcome {
        Outcome::Passed => (f, s, t + r.seconds),
        Outcome::Failed(_) => (f + 1, s, t + r.seconds),
        Outcome::Skipped(_) => (f, s + 1, t + r.seconds),
    })
}

/// Character data: markup escaped, and characters XML 1.0 cannot carry at all written out
/// as `\u{..}` so a control byte in an answer cannot break the report.
fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value: as [`text`], plus quotes and line breaks (kept as references).
fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            '\n' | '\r' | '\t' if in_attribute => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '\n' | '\r' | '\t' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_characters_xml_cannot_hold() {
        assert_eq!(attr("a<b>&\"c'\n"), "a&lt;b&gt;&amp;&quot;c&apos;&#10;");
        assert_eq!(text("x\u{1b}y\u{0}z\n"), "x\\u{1b}y\\u{0}z\n");
        assert_eq!(text("\"quoted\""), "\"quoted\"");
    }
}
