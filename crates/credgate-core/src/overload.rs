//! Admission to the hash pool under overload: a request's first bcrypt job is refused at once
//! (`Error::Overloaded`, the dialect's 503 with `Retry-After`) when it could not start within
//! the configured wait. The wait it would have is estimated from the measured time of one job
//! and the jobs ahead of it; jobs already queued keep their place. Time comes from an injected
//! [`Ticker`], so the decisions are tested without sleeping.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A monotonic clock: the time since some fixed start.
pub trait Ticker: Send + Sync + 'static {
    fn now(&self) -> Duration;
}

/// The process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicTicker(Instant);

impl Default for MonotonicTicker {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Ticker for MonotonicTicker {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A ticker that moves only when told to; shared by clones (tests).
#[derive(Debug, Clone, Default)]
pub struct ManualTicker(Arc<AtomicU64>);

impl ManualTicker {
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            by.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::SeqCst,
        );
    }
}

impl Ticker for ManualTicker {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// Sheds after this long without one start a new burst (audited once).
pub const BURST_GAP: Duration = Duration::from_secs(60);

/// The admission state of one pool.
pub struct Admission {
    /// Longest a new job may be expected to wait before it starts; zero: never shed.
    max_wait: Duration,
    pub(crate) ticker: Arc<dyn Ticker>,
    /// Moving average of one job's run time, in nanoseconds.
    job_ns: AtomicU64,
    /// When the last job was shed (ticker nanoseconds + 1; 0: never).
    last_shed: AtomicU64,
    /// A burst began and nobody has audited it yet.
    burst_unaudited: AtomicBool,
    shed: AtomicU64,
}

impl Admission {
    pub fn new(max_wait: Duration, ticker: Arc<dyn Ticker>, first_job: Duration) -> Self {
        Self {
            max_wait,
            ticker,
            job_ns: AtomicU64::new(nanos(first_job)),
            last_shed: AtomicU64::new(0),
            burst_unaudited: AtomicBool::new(false),
            shed: AtomicU64::new(0),
        }
    }

    /// The measured time of one job.
    pub fn job_time(&self) -> Duration {
        Duration::from_nanos(self.job_ns.load(Ordering::Relaxed))
    }

    /// Feeds one finished job's run time into the average.
    pub fn observe(&self, took: Duration) {
        let took = nanos(took);
        let _ = self
            .job_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(old - old / 8 + took / 8)
            });
    }

    /// How long a job submitted now waits before a thread takes it: the `ahead` jobs submitted
    /// and unfinished go `threads` at a time.
    pub fn expected_wait(&self, ahead: usize, threads: usize) -> Duration {
        let threads = threads.max(1);
        let rounds = (ahead + 1).saturating_sub(threads).div_ceil(threads);
        self.job_time()
            .saturating_mul(rounds.min(u32::MAX as usize) as u32)
    }

    /// Admits a new job behind `ahead` others, or says after how many seconds to come back.
    pub fn admit(&self, ahead: usize, threads: usize) -> Result<(), u64> {
        if self.max_wait.is_zero() {
            return Ok(());
        }
        let wait = self.expected_wait(ahead, threads);
        if wait <= self.max_wait {
            return Ok(());
        }
        self.shed.fetch_add(1, Ordering::Relaxed);
        let now = nanos(self.ticker.now()).saturating_add(1);
        let previous = self.last_shed.swap(now, Ordering::Relaxed);
        if previous == 0 || now.saturating_sub(previous) > nanos(BURST_GAP) {
            self.burst_unaudited.store(true, Ordering::Relaxed);
        }
        // Come back when the queue ahead should have drained to the bound.
        Err((wait - self.max_wait).as_secs_f64().ceil().max(1.0) as u64)
    }

    /// True once per burst of refusals: the caller audits it.
    pub fn take_burst(&self) -> bool {
        self.burst_unaudited.swap(false, Ordering::Relaxed)
    }

    /// Jobs refused since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_wait_ms: u64, job_ms: u64) -> (Admission, ManualTicker) {
        let ticker = ManualTicker::default();
        let a = Admission::new(
            Duration::from_millis(max_wait_ms),
            Arc::new(ticker.clone()),
            Duration::from_millis(job_ms),
        );
        (a, ticker)
    }

    #[test]
    fn the_wait_is_the_jobs_ahead_in_rounds_of_the_threads() {
        let (a, _) = admission(2_000, 250);
        assert_eq!(a.expected_wait(0, 2), Duration::ZERO);
        assert_eq!(a.expected_wait(1, 2), Duration::ZERO);
        assert_eq!(a.expected_wait(2, 2), Duration::from_millis(250));
        assert_eq!(a.expected_wait(3, 2), Duration::from_millis(250));
        assert_eq!(a.expected_wait(4, 2), Duration::from_millis(500));
        // 16 rounds of 250 ms = 4 s > 2 s: refused, to come back in 2 s.
        assert_eq!(a.admit(16, 1), Err(2));
        assert_eq!(a.admit(8, 1), Ok(()));
        assert_eq!(a.shed_count(), 1);
    }

    #[test]
    fn a_burst_is_reported_once_and_a_new_one_after_a_quiet_gap() {
        let (a, ticker) = admission(1_000, 500);
        assert!(!a.take_burst());
        for _ in 0..5 {
            assert!(a.admit(10, 1).is_err());
            ticker.advance(Duration::from_secs(1));
        }
        assert!(a.take_burst());
        assert!(!a.take_burst(), "once per burst");
        ticker.advance(BURST_GAP + Duration::from_secs(1));
        assert!(a.admit(10, 1).is_err());
        assert!(a.take_burst(), "a new burst after a quiet gap");
    }

    #[test]
    fn zero_wait_never_sheds_and_the_average_follows_measurements() {
        let (a, _) = admission(0, 500);
        assert_eq!(a.admit(10_000, 1), Ok(()));
        let (a, _) = admission(1_000, 800);
        for _ in 0..64 {
            a.observe(Duration::from_millis(100));
        }
        assert!(a.job_time() < Duration::from_millis(110));
        assert_eq!(a.admit(9, 1), Ok(()));
    }
}
