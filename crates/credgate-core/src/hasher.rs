//! bcrypt on a bounded pool of dedicated threads, so hashing never runs on an HTTP worker and
//! a burst of password changes queues here instead of starving cheap requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use tokio::sync::oneshot;

use crate::error::Error;
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
    /// Verified against when a user does not exist, so that path costs one verify too.
    dummy_hash: String,
}

impl HashPool {
    /// Starts `threads` hashing threads (at least one) for bcrypt at `cost`.
    pub fn new(threads: usize, cost: u32) -> Result<Self, Error> {
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
                    // Ends when the pool (the only sender) is dropped.
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                })
                .map_err(|_| Error::Internal)?;
        }
        let dummy_hash =
            bcrypt::hash("credgate-dummy-password", cost).map_err(|_| Error::Internal)?;
        Ok(Self {
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
            completed: Arc::new(AtomicUsize::new(0)),
            threads,
            cost,
            dummy_hash,
        })
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
        let (tx, rx) = oneshot::channel();
        let (queued, completed) = (Arc::clone(&self.queued), Arc::clone(&self.completed));
        queued.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move || {
            let out = f();
            queued.fetch_sub(1, Ordering::Relaxed);
            completed.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(out);
        });
        self.jobs.send(job).map_err(|_| Error::Internal)?;
        rx.await.map_err(|_| Error::Internal)
    }

    /// A new bcrypt hash of the normalized password at the configured cost.
    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let (pw, cost) = (password.clone(), self.cost);
        self.run(move || bcrypt::non_truncating_hash(pw.normalized().as_bytes(), cost))
            .await?
            .map_err(|_| Error::Internal)
    }

    /// Checks a password against a `$2a$`/`$2b$`/`$2y$` hash. A malformed stored hash or an
    /// over-long password is a mismatch, never a panic or a truncated match.
    pub async fn verify(&self, password: &Password, hash: &str) -> Result<bool, Error> {
        let (pw, hash) = (password.clone(), hash.to_owned());
        self.run(move || {
            let normalized = pw.normalized();
            let ok = bcrypt::non_truncating_verify(normalized.as_bytes(), &hash).unwrap_or(false);
            // Hashes imported from legacy systems were made from the raw bytes.
            ok || (normalized.as_str() != pw.expose()
                && bcrypt::non_truncating_verify(pw.expose().as_bytes(), &hash).unwrap_or(false))
        })
        .await
    }

    /// Spends one verify on a fixed hash: the cost of looking up a user who does not exist.
    pub async fn verify_dummy(&self, password: &Password) -> Result<(), Error> {
        self.verify(password, &self.dummy_hash.clone())
            .await
            .map(|_| ())
    }

    /// Whether a stored hash should be re-made at the configured cost.
    pub fn needs_upgrade(&self, hash: &str) -> bool {
        hash_cost(hash).is_some_and(|c| c < self.cost)
    }
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
    fn cost_parsing() {
        assert_eq!(hash_cost("$2y$10$abcdefghijklmnopqrstuu"), Some(10));
        assert_eq!(hash_cost("$1$10$x"), None);
        let h = bcrypt::hash("x", 5).unwrap();
        assert!(is_bcrypt_hash(&h));
        assert!(HashPool::new(1, 6).unwrap().needs_upgrade(&h));
    }
}
