//! The table: every figure's median next to the target and a met/missed verdict.

use crate::report::{latency, num, pct, Figures, Table, Verdict};
use crate::run::{CHANGE_CONNECTIONS, MEMORY_CONNECTIONS};
use crate::targets::Api;
use crate::Profile;

pub fn table(f: &Figures, profile: &Profile) -> Table {
    let mut t = Table::default();
    for cost in [12, 10] {
        let bound = f.get(&format!("bound.{cost}"));
        if bound.is_nan() {
            continue;
        }
        t.info(
            "1 bcrypt bound",
            format!(
                "cost {cost}: verify+hash pairs/s, {} threads",
                crate::bound::cores()
            ),
            num(bound, 2),
        );
    }
    for cost in [12, 10] {
        for api in Api::all() {
            let key = format!("change.{cost}.{}", api.name());
            if !f.has(&key) {
                continue;
            }
            let ratio = f.get(&format!("change.ratio.{cost}.{}", api.name()));
            t.row(
                "2 change vs bound",
                format!(
                    "cost {cost}, {}: changes/s ({CHANGE_CONNECTIONS} conns), ratio to bound",
                    api.name()
                ),
                format!("{} /s, {}", num(f.get(&key), 2), pct(ratio)),
                "≥ 90% of bound",
                Verdict::check(ratio, |r| r >= 0.90),
            );
        }
    }
    for api in Api::all() {
        let n = api.name();
        if !f.has(&format!("t4.rate.{n}")) {
            continue;
        }
        let ratio = f.get(&format!("t4.ratio.{n}"));
        let added = f.get(&format!("t4.added.{n}"));
        let value = format!(
            "{} /s ({}); p50 {} p99 {}; added p50 {}",
            num(f.get(&format!("t4.rate.{n}")), 0),
            pct(ratio),
            latency(f.get(&format!("t4.p50.{n}"))),
            latency(f.get(&format!("t4.p99.{n}"))),
            latency(added)
        );
        if api == Api::Native {
            t.info(
                "3 translation, cost 4",
                "native: changes/s; 1-conn latency",
                value,
            );
        } else {
            let verdict = match (
                Verdict::check(ratio, |r| r >= 0.90),
                Verdict::check(added, |a| a <= 100.0),
            ) {
                (Verdict::Met, Verdict::Met) => Verdict::Met,
                (Verdict::NotMeasured, _) | (_, Verdict::NotMeasured) => Verdict::NotMeasured,
                _ => Verdict::Missed,
            };
            t.row(
                "3 translation, cost 4",
                format!("{n}: changes/s (vs native); 1-conn latency"),
                value,
                "≥ 90% of native, added p50 ≤ 100 µs",
                verdict,
            );
        }
    }
    for probe in ["healthz", "unauthenticated", "reset_validate"] {
        let p99 = f.get(&format!("iso.{probe}.p99"));
        if p99.is_nan() {
            continue;
        }
        t.row(
            "4 isolation, cost 12",
            format!("{probe} (every 10 ms) while changes saturate the pool: p50 / p99"),
            format!(
                "{} / {}",
                latency(f.get(&format!("iso.{probe}.p50"))),
                latency(p99)
            ),
            "p99 ≤ 10 ms",
            Verdict::check(p99, |v| v <= 10_000.0),
        );
    }
    if f.has("iso.changes") {
        t.info(
            "4 isolation, cost 12",
            "changes/s meanwhile (native, 8 conns)",
            num(f.get("iso.changes"), 2),
        );
    }
    crate::cheap_wrk::rows(f, &mut t);
    if f.has("mem.peak") {
        let peak = f.get("mem.peak");
        t.row(
            "6 memory",
            format!(
                "peak RSS (VmHWM) at {MEMORY_CONNECTIONS} connections changing passwords (idle {} MiB)",
                num(f.get("mem.idle"), 1)
            ),
            format!("{} MiB", num(peak, 1)),
            "≤ 64 MiB",
            Verdict::check(peak, |p| p <= 64.0),
        );
    }
    for (op, what) in [
        ("login", "native password login"),
        ("change", "native change"),
    ] {
        let ratio = f.get(&format!("scale.ratio.{op}"));
        if ratio.is_nan() {
            continue;
        }
        t.row(
            "7 scale, cost 4",
            format!(
                "{what}, 1 conn: p50 at 1,000 vs {} users",
                profile.large_users
            ),
            format!(
                "{} vs {} ({:+.1}%)",
                latency(f.get(&format!("scale.small.{op}"))),
                latency(f.get(&format!("scale.large.{op}"))),
                (ratio - 1.0) * 100.0
            ),
            "within 20%",
            Verdict::check(ratio, |r| r <= 1.20),
        );
    }
    t
}
