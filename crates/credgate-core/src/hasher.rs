//! bcrypt on a bounded pool of dedicated threads, so hashing never runs on an HTTP worker and
//! a burst of password changes queues here instead of starving cheap requests.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::Error;
use crate::overload::{Admission, MonotonicTicker, Ticker};
use crate::secret::Password;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// bcrypt accepts at most 72 bytes; longer input is refused by policy, never truncated.
pub const BCRYPT_MAX_BYTES: usize = 72;

pub struct HashPool {
    jobs: crossbeam_channel::Sender<Job>,
    queued: Arc<AtomicUsize>,
    completed: Arc<AtomicUsize>,
    threads: usize,
    cost: u32,
    /// Whether to report queue depth and wait time through the `metrics` facade.
    record_metrics: bool,
    /// Verified against when a user does not exist, so that path costs one verify too.
    dummy_hash: String,
    floor: Arc<Floor>,
    /// Refuses a request's first job when it could not start within the configured wait.
    admission: Arc<Admission>,
    /// Queued jobs dropped unhashed because their request was gone.
    skipped: Arc<AtomicUsize>,
    /// Called once per burst of refusals (the service audits it), with the `Retry-After`.
    on_shed_burst: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// How long a failed verification must take: as long as one against the slowest hash stored.
/// bcrypt's work doubles with each cost step, so the time of one unit of work (a verify's time
/// divided by 2^cost), averaged over recent verifications, times 2^(highest cost seen) is the
/// time of the slowest verify.
struct Floor {
    /// Moving average of nanoseconds per unit of bcrypt work.
    unit_ns: AtomicU64,
    /// The highest cost seen: configured, stored (read by the service) or verified against.
    max_cost: AtomicU32,
}

/// Nanoseconds per unit of bcrypt work of a verify or hash at `cost` that took `took`.
fn unit_ns(took: Duration, cost: u32) -> u64 {
    (took.as_nanos() >> cost).min(u128::from(u64::MAX)) as u64
}

/// Costs below this are too quick to time reliably; they do not feed the average.
const TIMED_MIN_COST: u32 = 6;

impl Floor {
    fn observe(&self, cost: u32, took: Duration) {
        if !(4..=31).contains(&cost) {
            return;
        }
        self.max_cost.fetch_max(cost, Ordering::Relaxed);
        if cost < TIMED_MIN_COST {
            return;
        }
        let unit = unit_ns(took, cost);
        let _ = self
            .unit_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(old - old / 8 + unit / 8)
            });
    }

    fn get(&self) -> Duration {
        let cost = self.max_cost.load(Ordering::Relaxed).min(31);
        Duration::from_nanos(
            self.unit_ns
                .load(Ordering::Relaxed)
                .saturating_mul(1 << cost),
        )
    }
}

impl HashPool {
    /// Starts `threads` hashing threads (at least one) for bcrypt at `cost`, at the process's
    /// own priority.
    pub fn new(threads: usize, cost: u32) -> Result<Self, Error> {
        Self::with_nice(threads, cost, 0)
    }

    /// Like [`HashPool::new`], with the hashing threads' nice value raised by `nice` (Linux;
    /// 0 leaves it): a saturated pool then yields the CPU to request threads at once, so cheap
    /// requests keep their latency, while an idle machine still gives bcrypt every cycle.
    pub fn with_nice(threads: usize, cost: u32, nice: i32) -> Result<Self, Error> {
        if !(4..=31).contains(&cost) {
            return Err(Error::Internal);
        }
        let threads = threads.max(1);
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("bcrypt-{i}"))
                .spawn(move || {
                    crate::priority::lower_current_thread(nice);
                    // Ends when the pool (the only sender) is dropped.
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                })
                .map_err(|_| Error::Internal)?;
        }
        let started = Instant::now();
        let dummy_hash =
            bcrypt::hash("credgate-dummy-password", cost).map_err(|_| Error::Internal)?;
        let first_job = started.elapsed();
        // The first hash seeds the average: failures are padded from the first request on.
        let floor = Arc::new(Floor {
            unit_ns: AtomicU64::new(unit_ns(started.elapsed(), cost)),
            max_cost: AtomicU32::new(cost),
        });
        Ok(Self {
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
            completed: Arc::new(AtomicUsize::new(0)),
            threads,
            cost,
            record_metrics: true,
            dummy_hash,
            floor,
            admission: Arc::new(Admission::new(
                Duration::ZERO,
                Arc::new(MonotonicTicker::default()),
                first_job,
            )),
            skipped: Arc::new(AtomicUsize::new(0)),
            on_shed_burst: None,
        })
    }

    /// Sheds a request's first job when it could not start within `max_wait` (zero: never),
    /// timing jobs with `ticker`; the measured time of one job starts at the pool's first hash.
    pub fn with_max_wait(mut self, max_wait: Duration, ticker: Arc<dyn Ticker>) -> Self {
        let first_job = self.admission.job_time();
        self.admission = Arc::new(Admission::new(max_wait, ticker, first_job));
        self
    }

    /// Sets what runs once per burst of refused jobs (the service appends an audit record).
    pub fn on_shed_burst(mut self, f: Arc<dyn Fn(u64) + Send + Sync>) -> Self {
        self.on_shed_burst = Some(f);
        self
    }

    /// The admission state: measured job time, refusals.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Queued jobs skipped because their request was cancelled before a thread took them.
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Turns metric reporting off (a scratch gateway must not count in the operator's graphs).
    pub fn with_metrics(mut self, on: bool) -> Self {
        self.record_metrics = on;
        self
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// bcrypt runs finished since start.
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::Relaxed)
    }

    /// Jobs submitted and not yet finished (running or waiting).
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        self.submit(f)?.await.map_err(|_| Error::Internal)
    }

    /// As [`Self::run`], for the first job of a request: refused at once with
    /// `Error::Overloaded` when it could not start within the configured wait.
    async fn run_admitted<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        self.admit()?;
        self.run(f).await
    }

    fn admit(&self) -> Result<(), Error> {
        let ahead = self.queued.load(Ordering::Relaxed);
        self.admission
            .admit(ahead, self.threads)
            .map_err(|retry_after| {
                if self.admission.take_burst() {
                    tracing::warn!(
                        queued = ahead,
                        retry_after,
                        "hash pool overloaded: shedding"
                    );
                    if let Some(f) = &self.on_shed_burst {
                        f(retry_after);
                    }
                }
                Error::Overloaded { retry_after }
            })
    }

    /// Queues a job now; its result arrives on the receiver. Lets a caller keep every thread busy.
    /// A job whose receiver is gone (the request was cancelled) is skipped when its turn comes.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, Error> {
        let (tx, rx) = oneshot::channel();
        let (queued, completed) = (Arc::clone(&self.queued), Arc::clone(&self.completed));
        let (admission, skipped) = (Arc::clone(&self.admission), Arc::clone(&self.skipped));
        let (record, submitted) = (self.record_metrics, Instant::now());
        queued.fetch_add(1, Ordering::Relaxed);
        if record {
            metrics::gauge!("credgate_hash_queue_depth").increment(1.0);
        }
        let job: Job = Box::new(move || {
            let done = |queued: &AtomicUsize| {
                queued.fetch_sub(1, Ordering::Relaxed);
                if record {
                    metrics::gauge!("credgate_hash_queue_depth").decrement(1.0);
                }
            };
            if tx.is_closed() {
                done(&queued);
                skipped.fetch_add(1, Ordering::Relaxed);
                if record {
                    metrics::counter!("credgate_hash_skipped_total").increment(1);
                }
                return;
            }
            if record {
                metrics::histogram!("credgate_hash_wait_seconds")
                    .record(submitted.elapsed().as_secs_f64());
            }
            let started = admission.ticker.now();
            let out = f();
            admission.observe(admission.ticker.now().saturating_sub(started));
            done(&queued);
            completed.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(out);
        });
        if self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            if record {
                metrics::gauge!("credgate_hash_queue_depth").decrement(1.0);
            }
            return Err(Error::Internal);
        }
        Ok(rx)
    }

    /// A new bcrypt hash of the normalized password at the configured cost.
    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let (pw, cost) = (password.clone(), self.cost);
        self.run(move || bcrypt::non_truncating_hash(pw.normalized().as_bytes(), cost))
            .await?
            .map_err(|_| Error::Internal)
    }

    /// Hashes several passwords at once, spread over every hashing thread; results in order.
    pub async fn hash_many(&self, passwords: Vec<Password>) -> Result<Vec<String>, Error> {
        let cost = self.cost;
        let pending = passwords
            .into_iter()
            .map(|pw| {
                self.submit(move || bcrypt::non_truncating_hash(pw.normalized().as_bytes(), cost))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut hashes = Vec::with_capacity(pending.len());
        for rx in pending {
            hashes.push(
                rx.await
                    .map_err(|_| Error::Internal)?
                    .map_err(|_| Error::Internal)?,
            );
        }
        Ok(hashes)
    }

    /// Wraps weak legacy hashes in bcrypt at the configured cost (see [`crate::legacy::wrap`]),
    /// spread over every hashing thread; results in order, `None` where nothing is to wrap.
    pub async fn wrap_many(&self, stored: Vec<String>) -> Result<Vec<Option<String>>, Error> {
        let cost = self.cost;
        let pending = stored
            .into_iter()
            .map(|s| self.submit(move || crate::legacy::wrap(&s, cost)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut wrapped = Vec::with_capacity(pending.len());
        for rx in pending {
            wrapped.push(rx.await.map_err(|_| Error::Internal)?);
        }
        Ok(wrapped)
    }

    /// Checks several (password, hash) pairs at once, like [`Self::verify`]; results in order.
    pub async fn verify_many(&self, pairs: Vec<(Password, String)>) -> Result<Vec<bool>, Error> {
        let pending = pairs
            .into_iter()
            .map(|(pw, hash)| self.submit(move || verify_sync(&pw, &hash)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut results = Vec::with_capacity(pending.len());
        for rx in pending {
            results.push(rx.await.map_err(|_| Error::Internal)?);
        }
        Ok(results)
    }

    /// Checks a password against a `$2a$`/`$2b$`/`$2y$` hash. A malformed stored hash or an
    /// over-long password is a mismatch, never a panic or a truncated match.
    pub async fn verify(&self, password: &Password, hash: &str) -> Result<bool, Error> {
        let (pw, hash, floor) = (password.clone(), hash.to_owned(), Arc::clone(&self.floor));
        self.run_admitted(move || {
            let started = Instant::now();
            let ok = verify_sync(&pw, &hash);
            if let Some(cost) = hash_cost(&hash) {
                floor.observe(cost, started.elapsed());
            }
            ok
        })
        .await
    }

    /// Makes a failed check that started at `started` last at least as long as a verification
    /// against the slowest hash seen, so its time tells nothing of the user's own hash (its cost,
    /// or whether there is one).
    pub async fn pad_failure(&self, started: Instant) {
        let floor = self.floor.get();
        if let Some(left) = floor.checked_sub(started.elapsed()) {
            tokio::time::sleep(left).await;
        }
    }

    /// The failure floor now (for tests and diagnostics).
    pub fn failure_floor(&self) -> Duration {
        self.floor.get()
    }

    /// A stored hash of this cost exists: failures last as long as a verification against it.
    pub fn observe_cost(&self, cost: u32) {
        if (4..=31).contains(&cost) {
            self.floor.max_cost.fetch_max(cost, Ordering::Relaxed);
        }
    }

    /// Spends one verify on a fixed hash: the cost of looking up a user who does not exist.
    pub async fn verify_dummy(&self, password: &Password) -> Result<(), Error> {
        self.verify(password, &self.dummy_hash.clone())
            .await
            .map(|_| ())
    }

    /// Whether a stored hash should be re-made at the configured cost: a lower bcrypt cost,
    /// or any legacy or wrapped format.
    pub fn needs_upgrade(&self, hash: &str) -> bool {
        hash_cost(hash).is_some_and(|c| c < self.cost) || !is_bcrypt_hash(hash)
    }
}

fn verify_sync(pw: &Password, hash: &str) -> bool {
    if !is_bcrypt_hash(hash) {
        // Imported legacy formats and wrapped hashes (crate::legacy).
        return crate::legacy::verify(pw, hash);
    }
    let normalized = pw.normalized();
    let ok = bcrypt::non_truncating_verify(normalized.as_bytes(), hash).unwrap_or(false);
    // Hashes imported from legacy systems were made from the raw bytes.
    ok || (normalized.as_str() != pw.expose()
        && bcrypt::non_truncating_verify(pw.expose().as_bytes(), hash).unwrap_or(false))
}

/// The cost field of a modular-crypt bcrypt hash (`$2b$12$...`).
pub fn hash_cost(hash: &str) -> Option<u32> {
    let mut parts = hash.split('$');
    let (_, version, cost) = (parts.next()?, parts.next()?, parts.next()?);
    if !matches!(version, "2a" | "2b" | "2x" | "2y") {
        return None;
    }
    cost.parse().ok()
}

/// Checks that an imported hash is one this gateway verifies: `$2a$`, `$2b$` or `$2y$`, a
/// two-digit cost from 04 to 31, then 53 characters of bcrypt's base64 (22 salt, 31 hash).
/// The error says what is wrong without quoting the hash.
pub fn importable_hash(hash: &str) -> Result<(), &'static str> {
    let prefix = hash.get(..4).unwrap_or_default();
    if !matches!(prefix, "$2a$" | "$2b$" | "$2y$") {
        return Err("not a bcrypt hash: it must start with $2a$, $2b$ or $2y$");
    }
    if hash.len() != 60 {
        return Err("not a bcrypt hash: it must be 60 characters long");
    }
    let cost = hash.get(4..6).and_then(|c| c.parse::<u32>().ok());
    if hash.as_bytes()[6] != b'$' || !cost.is_some_and(|c| (4..=31).contains(&c)) {
        return Err("not a bcrypt hash: its cost must be two digits from 04 to 31");
    }
    let bcrypt_base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/');
    if !hash.as_bytes()[7..].iter().all(bcrypt_base64) {
        return Err("not a bcrypt hash: salt and digest must be bcrypt base64 (./A-Za-z0-9)");
    }
    Ok(())
}

/// Whether a string is a bcrypt hash this gateway can verify (for imports).
pub fn is_bcrypt_hash(hash: &str) -> bool {
    hash.len() == 60 && hash_cost(hash).is_some_and(|c| (4..=31).contains(&c))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verify_roundtrip_and_prefixes() {
        let pool = HashPool::new(2, 4).unwrap();
        let pw = Password::new("correct horse");
        let h = pool.hash(&pw).await.unwrap();
        assert!(h.starts_with("$2b$04$"));
        assert!(pool.verify(&pw, &h).await.unwrap());
        assert!(!pool
            .verify(&Password::new("wrong horse"), &h)
            .await
            .unwrap());
        for prefix in ["$2a$", "$2y$"] {
            let other = format!("{prefix}{}", &h[4..]);
            assert!(pool.verify(&pw, &other).await.unwrap(), "{prefix} accepted");
        }
        assert!(!pool.verify(&pw, "not-a-hash").await.unwrap());
        assert_eq!(pool.queue_depth(), 0);
    }

    #[tokio::test]
    async fn over_long_passwords_never_match_a_truncated_hash() {
        let pool = HashPool::new(1, 4).unwrap();
        let long = "a".repeat(80);
        let h = bcrypt::hash(&long[..72], 4).unwrap();
        assert!(!pool.verify(&Password::new(long), &h).await.unwrap());
    }

    #[test]
    fn importable_hashes() {
        let h = bcrypt::hash("x", 4).unwrap();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            assert_eq!(importable_hash(&format!("{prefix}{}", &h[4..])), Ok(()));
        }
        assert!(importable_hash(&format!("$2x${}", &h[4..])).is_err());
        assert!(importable_hash(&h[..59]).is_err());
        assert!(importable_hash(&format!("$2b$03{}", &h[6..])).is_err());
        assert!(importable_hash(&format!("$2b$32{}", &h[6..])).is_err());
        assert!(importable_hash(&format!("{}!", &h[..59])).is_err());
        assert!(importable_hash("$2b$").is_err());
        assert!(importable_hash("é$2b$04$").is_err());
    }

    #[tokio::test]
    async fn hash_many_keeps_order() {
        let pool = HashPool::new(2, 4).unwrap();
        let pws = vec![Password::new("one-pass"), Password::new("two-pass")];
        let hashes = pool.hash_many(pws.clone()).await.unwrap();
        assert!(pool.verify(&pws[0], &hashes[0]).await.unwrap());
        assert!(pool.verify(&pws[1], &hashes[1]).await.unwrap());
        assert!(!pool.verify(&pws[0], &hashes[1]).await.unwrap());
    }

    #[tokio::test]
    async fn hashing_threads_run_at_the_lowered_priority() {
        let own = crate::priority::current_thread_nice();
        let pool = HashPool::with_nice(2, 4, 5).unwrap();
        for _ in 0..4 {
            let seen = pool
                .run(crate::priority::current_thread_nice)
                .await
                .unwrap();
            if cfg!(target_os = "linux") {
                assert_eq!(seen, (own + 5).min(19));
            }
        }
        let plain = HashPool::new(1, 4).unwrap();
        assert_eq!(
            plain
                .run(crate::priority::current_thread_nice)
                .await
                .unwrap(),
            own
        );
        // The caller's own thread is untouched.
        assert_eq!(crate::priority::current_thread_nice(), own);
    }

    /// A pool of one thread whose jobs are timed by a manual ticker, trained so one job takes
    /// about a second, and a counter of refused bursts.
    async fn trained_pool(
        max_wait: Duration,
    ) -> (HashPool, crate::overload::ManualTicker, Arc<AtomicUsize>) {
        let ticker = crate::overload::ManualTicker::default();
        let bursts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&bursts);
        let pool = HashPool::new(1, 4)
            .unwrap()
            .with_metrics(false)
            .with_max_wait(max_wait, Arc::new(ticker.clone()))
            .on_shed_burst(Arc::new(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            }));
        for _ in 0..48 {
            let t = ticker.clone();
            pool.run(move || t.advance(Duration::from_secs(1)))
                .await
                .unwrap();
        }
        let job = pool.admission().job_time();
        assert!(job > Duration::from_millis(990) && job <= Duration::from_secs(1));
        (pool, ticker, bursts)
    }

    #[tokio::test]
    async fn a_job_that_could_not_start_in_time_is_refused_and_queued_jobs_keep_their_place() {
        let (pool, _ticker, bursts) = trained_pool(Duration::from_secs(2)).await;
        let hashed = Arc::new(AtomicUsize::new(0));
        let counting = || {
            let hashed = Arc::clone(&hashed);
            move || hashed.fetch_add(1, Ordering::SeqCst)
        };
        // The only thread is busy until the gate opens.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let busy = pool
            .submit(move || {
                let _ = gate.recv();
            })
            .unwrap();
        // Two jobs ahead (about 2 s of waiting): admitted.
        assert!(pool.admit().is_ok());
        let queued = pool.submit(counting()).unwrap();
        assert_eq!(pool.queue_depth(), 2);
        assert!(pool.admit().is_ok());
        let abandoned = pool.submit(counting()).unwrap();
        // Three ahead: about 3 s > 2 s, refused at once, to come back in a second.
        let refused = pool.run_admitted(counting()).await;
        assert_eq!(refused, Err(Error::Overloaded { retry_after: 1 }));
        assert!(matches!(
            pool.run_admitted(counting()).await,
            Err(Error::Overloaded { .. })
        ));
        assert_eq!(pool.admission().shed_count(), 2);
        assert_eq!(bursts.load(Ordering::SeqCst), 1, "audited once per burst");
        assert_eq!(pool.queue_depth(), 3, "refused jobs never queue");

        // The client of the third job goes away: its job is skipped, not run.
        drop(abandoned);
        open.send(()).unwrap();
        busy.await.unwrap();
        assert_eq!(queued.await.unwrap(), 0, "the queued job kept its place");
        assert_eq!(pool.run_admitted(counting()).await.unwrap(), 1);
        assert_eq!(hashed.load(Ordering::SeqCst), 2);
        assert_eq!(pool.skipped(), 1);
        assert_eq!(pool.queue_depth(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_verify_is_never_hashed() {
        let (pool, _ticker, _) = trained_pool(Duration::ZERO).await;
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let busy = pool
            .submit(move || {
                let _ = gate.recv();
            })
            .unwrap();
        // A verify whose request is dropped while it waits (the client hung up).
        let pw = Password::new("correct horse");
        let hash = bcrypt::hash("correct horse", 4).unwrap();
        let completed = pool.completed();
        {
            let verify = pool.verify(&pw, &hash);
            futures_poll_once(verify).await;
        }
        assert_eq!(pool.queue_depth(), 2);
        open.send(()).unwrap();
        busy.await.unwrap();
        // The next job runs after the skipped one.
        assert!(pool.verify(&pw, &hash).await.unwrap());
        assert_eq!(pool.skipped(), 1);
        assert_eq!(
            pool.completed(),
            completed + 2,
            "the busy job and the live verify"
        );
    }

    /// Polls a future once (so it submits its job) and drops it.
    async fn futures_poll_once<F: std::future::Future>(f: F) {
        let mut f = std::pin::pin!(f);
        std::future::poll_fn(|cx| {
            let _ = f.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
    }

    #[test]
    fn cost_parsing() {
        assert_eq!(hash_cost("$2y$10$abcdefghijklmnopqrstuu"), Some(10));
        assert_eq!(hash_cost("$1$10$x"), None);
        let h = bcrypt::hash("x", 5).unwrap();
        assert!(is_bcrypt_hash(&h));
        assert!(HashPool::new(1, 6).unwrap().needs_upgrade(&h));
    }
}
