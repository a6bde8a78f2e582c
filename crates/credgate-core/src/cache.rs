//! Read caches in front of the store, and how other instances hear of a change.
//!
//! [`CachingStore`] wraps the store the service is built with: user reads (by id, username or
//! alias) are served from memory for `token_cache_ttl`, and every write that can change a user
//! or end a token invalidates, before it returns, the user entries and the cached sessions it
//! touches on this instance. The same change is then published on the [`ChangeFeed`] (on
//! PostgreSQL: `NOTIFY`), so other instances drop their entries within the notification's
//! latency; when the feed is down, their entries still expire after `token_cache_ttl`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::service::Principal;
use crate::store::StoreError;
use crate::Store;

/// Entries of the user cache; bounded so the memory stays small with millions of users.
const USER_CACHE_CAPACITY: u64 = 20_000;

/// One change another instance must hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The user's data, credential or sessions changed: its cached reads and sessions go.
    User(String),
    /// One token (by digest) was deleted or spent.
    Token(String),
    /// Every token of the session was deleted.
    Session(String),
    /// Anything may have changed (a bulk import, or notifications were lost).
    All,
}

impl Change {
    /// The notification payload: `u:<id>`, `t:<digest>`, `s:<session>` or `*`. Digests and
    /// ids only: a payload never carries a secret.
    pub fn encode(&self) -> String {
        match self {
            Change::User(id) => format!("u:{id}"),
            Change::Token(digest) => format!("t:{digest}"),
            Change::Session(id) => format!("s:{id}"),
            Change::All => "*".to_owned(),
        }
    }

    /// Reads a payload; anything unknown counts as [`Change::All`] (safe: it only empties
    /// the caches).
    pub fn decode(payload: &str) -> Change {
        match payload.split_once(':') {
            Some(("u", id)) => Change::User(id.to_owned()),
            Some(("t", digest)) => Change::Token(digest.to_owned()),
            Some(("s", id)) => Change::Session(id.to_owned()),
            _ => Change::All,
        }
    }
}

/// Tells other instances of changes (PostgreSQL `NOTIFY`); best effort, after the commit.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    async fn publish(&self, changes: &[Change]) -> Result<(), StoreError>;
}

/// Receives the changes other instances published.
#[async_trait]
pub trait ChangeSink: Send + Sync {
    async fn apply(&self, change: &Change);
}

/// The store with a user-read cache; see the module documentation.
pub struct CachingStore {
    pub(crate) inner: Arc<dyn Store>,
    users: moka::future::Cache<String, crate::model::User>,
    tokens: moka::future::Cache<String, Principal>,
    /// Moves before every invalidation: a read that started before it does not fill a cache.
    generation: AtomicU64,
    feed: OnceLock<Arc<dyn ChangeFeed>>,
    /// Publishing runs after the commit and the local invalidation; never longer than this.
    publish_timeout: Duration,
    /// `token_cache_secs = 0`: user reads go to the store every time.
    enabled: bool,
}

fn user_key(key: &crate::model::UserKey<'_>) -> String {
    use crate::model::UserKey;
    match key {
        UserKey::Id(id) => format!("i\u{0}{id}"),
        UserKey::Username(name) => format!("u\u{0}{name}"),
        UserKey::Alias {
            dialect,
            external_id,
        } => format!("a\u{0}{dialect}\u{0}{external_id}"),
    }
}

impl CachingStore {
    pub(crate) fn new(
        inner: Arc<dyn Store>,
        tokens: moka::future::Cache<String, Principal>,
        ttl: Duration,
    ) -> Self {
        Self {
            inner,
            users: moka::future::Cache::builder()
                .max_capacity(USER_CACHE_CAPACITY)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            tokens,
            generation: AtomicU64::new(0),
            feed: OnceLock::new(),
            publish_timeout: Duration::from_secs(2),
            enabled: !ttl.is_zero(),
        }
    }

    /// Publishes this instance's changes on `feed` from now on (set once).
    pub(crate) fn set_feed(&self, feed: Arc<dyn ChangeFeed>) {
        let _ = self.feed.set(feed);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `principal` under `digest` unless a change happened since `generation` was read
    /// (the principal may then be stale).
    pub(crate) async fn remember_principal(
        &self,
        digest: String,
        principal: Principal,
        generation: u64,
    ) {
        if self.generation() != generation {
            return;
        }
        self.tokens.insert(digest.clone(), principal).await;
        // An invalidation between the check and the insert may have missed the new entry.
        if self.generation() != generation {
            self.tokens.invalidate(&digest).await;
        }
    }

    /// Drops what `change` makes stale, here only.
    pub(crate) async fn forget(&self, change: &Change) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::User(id) => {
                let uid = id.clone();
                let _ = self.users.invalidate_entries_if(move |_, u| u.id == uid);
                let uid = id.clone();
                let _ = self.tokens.invalidate_entries_if(move |_, p| {
                    p.token.user_id.as_deref() == Some(uid.as_str())
                });
            }
            Change::Token(digest) => self.tokens.invalidate(digest).await,
            Change::Session(id) => {
                let sid = id.clone();
                let _ = self
                    .tokens
                    .invalidate_entries_if(move |_, p| p.token.session_id == sid);
            }
            Change::All => {
                self.users.invalidate_all();
                self.tokens.invalidate_all();
            }
        }
    }

    /// A write committed: forget here at once, then tell the other instances.
    pub(crate) async fn changed(&self, changes: &[Change]) {
        for change in changes {
            self.forget(change).await;
        }
        let Some(feed) = self.feed.get() else {
            return;
        };
        match tokio::time::timeout(self.publish_timeout, feed.publish(changes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not notify other instances of a change; they see it within token_cache_secs"),
            Err(_) => tracing::warn!("notifying other instances of a change timed out; they see it within token_cache_secs"),
        }
    }

    pub(crate) async fn cached_user(
        &self,
        key: crate::model::UserKey<'_>,
    ) -> Result<Option<crate::model::User>, StoreError> {
        if !self.enabled {
            return self.inner.find_user(key).await;
        }
        let cache_key = user_key(&key);
        if let Some(user) = self.users.get(&cache_key).await {
            return Ok(Some(user));
        }
        let generation = self.generation();
        let found = self.inner.find_user(key).await?;
        if let Some(user) = &found {
            if self.generation() == generation {
                self.users.insert(cache_key.clone(), user.clone()).await;
                if self.generation() != generation {
                    self.users.invalidate(&cache_key).await;
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl ChangeSink for CachingStore {
    async fn apply(&self, change: &Change) {
        self.forget(change).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn payloads_round_trip_and_unknown_means_all() {
        for change in [
            Change::User("u1".into()),
            Change::Token("abc".into()),
            Change::Session("s:1".into()),
            Change::All,
        ] {
            assert_eq!(Change::decode(&change.encode()), change);
        }
        assert_eq!(Change::decode("x:1"), Change::All);
        assert_eq!(Change::decode(""), Change::All);
    }
}
