//! Figures collected per round, their medians, and the one Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::stats::median;

/// Named values, one per round in which they were measured.
#[derive(Debug, Default)]
pub struct Figures {
    values: BTreeMap<String, Vec<f64>>,
    pub notes: Vec<String>,
}

impl Figures {
    pub fn record(&mut self, key: impl Into<String>, value: f64) {
        self.values.entry(key.into()).or_default().push(value);
    }

    /// The median over rounds; NaN when never measured.
    pub fn get(&self, key: &str) -> f64 {
        self.values.get(key).map_or(f64::NAN, |v| median(v))
    }

    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// A target's verdict: met, missed, or not measured in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    NotMeasured,
    /// A figure shown for context; no target applies.
    Info,
}

impl Verdict {
    pub fn check(value: f64, ok: impl FnOnce(f64) -> bool) -> Self {
        if value.is_nan() {
            Verdict::NotMeasured
        } else if ok(value) {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::NotMeasured => "not measured",
            Verdict::Info => "",
        }
    }
}

pub struct Row {
    pub section: String,
    pub measure: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

impl Table {
    pub fn row(
        &mut self,
        section: &str,
        measure: impl Into<String>,
        value: impl Into<String>,
        target: &str,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            section: section.to_owned(),
            measure: measure.into(),
            value: value.into(),
            target: target.to_owned(),
            verdict,
        });
    }

    pub fn info(&mut self, section: &str, measure: impl Into<String>, value: impl Into<String>) {
        self.row(section, measure, value, "", Verdict::Info);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| section | measure | median | target | result |\n|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.section,
                r.measure,
                r.value,
                r.target,
                r.verdict.text()
            );
        }
        out
    }

    pub fn missed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Missed)
            .count()
    }
}

/// A number for the table: NaN reads as "n/a".
pub fn num(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        "n/a".into()
    } else {
        format!("{value:.decimals$}")
    }
}

pub fn pct(ratio: f64) -> String {
    if ratio.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}%", ratio * 100.0)
    }
}

/// Microseconds as µs below 10 ms, else ms.
pub fn latency(us: f64) -> String {
    if us.is_nan() {
        "n/a".into()
    } else if us < 10_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}
