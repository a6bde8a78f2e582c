//! The physical limit of a password change: one bcrypt verify plus one bcrypt hash, with the
//! gateway's own bcrypt crate, on every core, without HTTP, a store or a policy.

use std::time::{Duration, Instant};

use crate::BenchError;

/// Verify+hash pairs per second at `cost` on `threads` threads over about `window`. Each
/// thread's rate is its pairs over the time of its last completed pair, so a pair straddling
/// the end of the window does not skew the figure.
pub fn pairs_per_second(cost: u32, threads: usize, window: Duration) -> Result<f64, BenchError> {
    let password = crate::seed::PASSWORDS[0];
    let hash = bcrypt::hash(password, cost).map_err(|e| BenchError::Setup(e.to_string()))?;
    let rates = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let hash = hash.as_str();
                scope.spawn(move || -> Result<f64, bcrypt::BcryptError> {
                    let start = Instant::now();
                    let mut pairs = 0u32;
                    let mut last = Duration::ZERO;
                    while last < window {
                        bcrypt::non_truncating_verify(password.as_bytes(), hash)?;
                        bcrypt::non_truncating_hash(crate::seed::PASSWORDS[1].as_bytes(), cost)?;
                        pairs += 1;
                        last = start.elapsed();
                    }
                    Ok(f64::from(pairs) / last.as_secs_f64())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Ok(0.0)))
            .collect::<Result<Vec<f64>, _>>()
    });
    rates
        .map(|r| r.iter().sum())
        .map_err(|e| BenchError::Setup(format!("bcrypt: {e}")))
}

/// CPUs this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
