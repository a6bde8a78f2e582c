//! Prints the median verify time of each fixture format (tests/fixtures/hashes) next to
//! bcrypt's, as a Markdown table for BENCHMARKS.md:
//! `cargo run -p credgate-legacy-hash --example verify_times --profile release`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use credgate_legacy_hash::{Hint, LegacyHash, Limits};

const FIXTURES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/hashes/fixtures.jsonl"
));

fn median(mut f: impl FnMut() -> bool) -> Duration {
    let mut times: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            assert!(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    println!(
        "| format | parameters of the fixture | verify (median of 15) | wrapped verify (cost 10) |"
    );
    println!("|---|---|---|---|");
    let mut seen = std::collections::BTreeSet::new();
    for line in FIXTURES.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (format, hash, pw) = (
            v["format"].as_str().unwrap(),
            v["hash"].as_str().unwrap(),
            v["password"].as_str().unwrap(),
        );
        let params = hash
            .split('$')
            .nth(2)
            .unwrap_or("")
            .chars()
            .take(24)
            .collect::<String>();
        if !seen.insert(format!("{format}{}", hash.len())) || pw.contains('ü') {
            continue;
        }
        if format == "bcrypt" {
            for cost in [4, 10, 12] {
                let h = bcrypt::hash(pw, cost).unwrap();
                let t = median(|| bcrypt::verify(pw, &h).unwrap());
                println!("| bcrypt | cost {cost} | {t:.2?} | |");
            }
            continue;
        }
        let hint = v["hint"].as_str().map(|h| Hint::parse(h).unwrap());
        let h = LegacyHash::parse(hash, hint, &Limits::default()).unwrap();
        let t = median(|| h.verify(pw));
        let wrapped = h
            .wrap(10)
            .map(|w| format!("{:.2?}", median(|| w.verify(pw))))
            .unwrap_or_default();
        let params = if hint.is_some() {
            String::new()
        } else {
            params
        };
        println!("| {format} | {params} | {t:.2?} | {wrapped} |");
    }
}
