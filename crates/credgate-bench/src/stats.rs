//! Percentiles, medians and rates: the arithmetic behind every figure in the table.

use std::time::Duration;

/// The `q` quantile (0..=1) of `samples`, by nearest rank; `None` when empty.
pub fn quantile(samples: &mut [Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1])
}

/// The median of the finite values; NaN when there are none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Completions per second from completion instants (offsets from a common start): the span
/// from the first to the last completion, so the rate does not depend on where a slow
/// operation happens to fall against the window's edges.
pub fn rate(completions: &mut [Duration]) -> f64 {
    if completions.len() < 2 {
        return 0.0;
    }
    completions.sort_unstable();
    let span = completions[completions.len() - 1] - completions[0];
    if span.is_zero() {
        return 0.0;
    }
    (completions.len() - 1) as f64 / span.as_secs_f64()
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_medians() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut s, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&mut s, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[f64::NAN]).is_nan());
    }

    #[test]
    fn rate_spans_first_to_last_completion() {
        let mut c: Vec<Duration> = (0..11).map(|i| Duration::from_millis(100 * i)).collect();
        assert!((rate(&mut c) - 10.0).abs() < 1e-9);
        assert_eq!(rate(&mut [Duration::ZERO]), 0.0);
    }
}
