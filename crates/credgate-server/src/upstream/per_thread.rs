//! One HTTP client per thread that calls an upstream.
//!
//! A pooled connection's task runs on the runtime that opened it, and each actix worker runs
//! its own: with one client shared by the workers, a request from one worker over a connection
//! another worker opened is handed to that worker's thread, and its answer handed back (two
//! wake-ups of a sleeping thread per call). A client per thread keeps each call on its thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells the upstream clients apart in the per-thread table (a reload builds new ones).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CLIENTS: RefCell<HashMap<u64, reqwest::Client>> = RefCell::new(HashMap::new());
}

/// Builds a client for each thread from one configuration, checked once up front.
pub struct PerThread {
    id: u64,
    build: Box<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
    /// Built at start: proves the configuration builds, and serves if a later build fails.
    first: reqwest::Client,
}

impl PerThread {
    pub fn new(
        build: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<Self, reqwest::Error> {
        let first = build().build()?;
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            build: Box::new(build),
            first,
        })
    }

    /// This thread's client (a cheap handle).
    pub fn get(&self) -> reqwest::Client {
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            if let Some(client) = clients.get(&self.id) {
                return client.clone();
            }
            let client = (self.build)()
                .build()
                .unwrap_or_else(|_| self.first.clone());
            clients.insert(self.id, client.clone());
            client
        })
    }
}

impl Drop for PerThread {
    /// The calling thread's entry goes with the upstream client (other threads' stay until
    /// they end: an idle client holds no connection past its idle timeout).
    fn drop(&mut self) {
        let _ = CLIENTS.try_with(|clients| clients.borrow_mut().remove(&self.id));
    }
}
