//! Changes between instances on PostgreSQL: `NOTIFY credgate_changes, '<payload>'` after a write
//! commits, and one `LISTEN` connection per instance applying what the others published to its
//! caches. Notifications are not stored: while the listening connection is down they are lost,
//! so every (re)connection empties the caches, and until then cached entries still expire
//! after `token_cache_secs`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use credgate_core::{Change, ChangeFeed, ChangeSink, StoreError};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use crate::error;

/// The notification channel every instance listens on.
pub const CHANNEL: &str = "credgate_changes";
/// Wait between attempts to (re)open the listening connection.
const RETRY: Duration = Duration::from_secs(1);

/// Publishes and listens on [`CHANNEL`], on its own two connections (one held by `LISTEN`).
#[derive(Debug, Clone)]
pub struct PgFeed {
    pool: PgPool,
}

impl PgFeed {
    /// Connects lazily; a database that is down now is retried by the listener.
    pub fn open(database_url: &str, connect_timeout: Duration) -> Result<Self, StoreError> {
        // The message never repeats the URL: it may carry a password.
        let options: PgConnectOptions = database_url
            .trim()
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL cannot be parsed".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(connect_timeout)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// Opens the listening connection (waiting at most the connect timeout, so a replica
    /// starts serving once it hears the others), then listens until the process ends in a
    /// task, applying every change to `sink`. After a loss it reconnects every second and
    /// empties the caches when it is back (notifications sent meanwhile are gone); until then
    /// cached entries expire after `token_cache_secs`.
    pub async fn start_listener(&self, sink: Arc<dyn ChangeSink>) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        let first = connect(&pool).await;
        tokio::spawn(async move {
            let mut listener = first;
            loop {
                if let Some(open) = listener.take() {
                    tracing::info!(channel = CHANNEL, "listening for other instances' changes");
                    listen(open, sink.as_ref()).await;
                    sink.apply(&Change::All).await;
                }
                tokio::time::sleep(RETRY).await;
                listener = connect(&pool).await;
                if listener.is_some() {
                    // Anything cached while the connection was down may have missed a change.
                    sink.apply(&Change::All).await;
                }
            }
        })
    }
}

/// A connection listening on [`CHANNEL`], or `None` (logged) when the database cannot be reached.
async fn connect(pool: &PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for other instances' changes; they are seen within token_cache_secs");
            return None;
        }
    };
    match listener.listen(CHANNEL).await {
        Ok(()) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "LISTEN failed; other instances' changes are seen within token_cache_secs");
            None
        }
    }
}

/// Applies notifications until the connection fails.
async fn listen(mut listener: PgListener, sink: &dyn ChangeSink) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => sink.apply(&Change::decode(notification.payload())).await,
            Ok(None) => {
                tracing::warn!("the change notification connection was lost; reconnecting");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the change notification connection failed; reconnecting");
                return;
            }
        }
    }
}

#[async_trait]
impl ChangeFeed for PgFeed {
    async fn publish(&self, changes: &[Change]) -> Result<(), StoreError> {
        let payloads: Vec<String> = changes.iter().map(Change::encode).collect();
        sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }
}
