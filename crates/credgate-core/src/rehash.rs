//! Wrapping weak legacy hashes (`credgate rehash`, and `serve` in the background): batch by
//! batch over the users in id order, each weak hash replaced by bcrypt over its digest in a
//! compare-and-swap (a user who logged in or changed their password meanwhile is left as is).
//! Every batch commits on its own, so an interrupted run loses nothing: the next run finds the
//! wrapped users already done.

use std::collections::BTreeMap;

use serde_json::json;

use crate::error::Error;
use crate::legacy::{self, Stored};
use crate::model::{AuditKind, RequestMeta};
use crate::service::CredentialService;
use crate::store::HashSwap;

/// How many users each stored form counts: `(format, state)` → users, where state is
/// `bcrypt`, `strong` (legacy, kept until the next login), `wrapped` or `weak` (to wrap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashCensus {
    pub counts: BTreeMap<(String, String), u64>,
}

impl HashCensus {
    fn count(&mut self, stored: &str) {
        let (format, state) = match legacy::classify(stored) {
            Ok(s) => (s.format_name(), s.state()),
            Err(_) => ("unknown", "unknown"),
        };
        *self
            .counts
            .entry((format.to_owned(), state.to_owned()))
            .or_default() += 1;
    }

    /// Users in `state`.
    pub fn in_state(&self, state: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((_, s), _)| s == state)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<_> = self
            .counts
            .iter()
            .map(|((format, state), users)| json!({"format": format, "state": state, "users": users}))
            .collect();
        json!({ "formats": rows })
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RehashBatch {
    /// The last user id read: the next batch starts after it; `None` at the end.
    pub next: Option<String>,
    pub scanned: u64,
    /// Weak hashes found (all wrapped unless a dry run or changed meanwhile).
    pub weak: u64,
    pub wrapped: u64,
    /// Weak hashes by format.
    pub by_format: BTreeMap<String, u64>,
}

impl CredentialService {
    /// Counts every stored hash by format and state, page by page.
    pub async fn hash_census(&self, page: u32) -> Result<HashCensus, Error> {
        let mut census = HashCensus::default();
        let mut after = String::new();
        loop {
            let rows = self.store.hash_page(&after, page.max(1)).await?;
            let Some(last) = rows.last() else { break };
            after.clone_from(&last.user_id);
            for row in &rows {
                census.count(&row.hash);
            }
        }
        Ok(census)
    }

    /// Reads up to `limit` users after `after` and wraps their weak hashes (at most
    /// `max_wrap`; the batch then ends at the last one wrapped) on the hash pool, unless
    /// `dry_run`, audited as one `hashes_wrapped` event with counts by format.
    pub async fn rehash_batch(
        &self,
        after: &str,
        limit: u32,
        max_wrap: usize,
        dry_run: bool,
        meta: &RequestMeta,
    ) -> Result<RehashBatch, Error> {
        let mut rows = self.store.hash_page(after, limit.max(1)).await?;
        let mut weak = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if weak.len() == max_wrap.max(1) {
                rows.truncate(i);
                break;
            }
            if let Ok(s @ Stored::Legacy(_)) = legacy::classify(&row.hash) {
                if s.state() == "weak" {
                    weak.push((s.format_name(), row.clone()));
                }
            }
        }
        let mut batch = RehashBatch {
            next: rows.last().map(|r| r.user_id.clone()),
            scanned: rows.len() as u64,
            ..RehashBatch::default()
        };
        batch.weak = weak.len() as u64;
        for (format, _) in &weak {
            *batch.by_format.entry((*format).to_owned()).or_default() += 1;
        }
        if dry_run || weak.is_empty() {
            return Ok(batch);
        }
        let wrapped = self
            .hasher
            .wrap_many(weak.iter().map(|(_, r)| r.hash.clone()).collect())
            .await?;
        let swaps: Vec<HashSwap> = weak
            .into_iter()
            .zip(wrapped)
            .filter_map(|((_, row), new)| {
                Some(HashSwap {
                    new: new?,
                    user_id: row.user_id,
                    credential_version: row.credential_version,
                    old: row.hash,
                })
            })
            .collect();
        let detail = json!({"formats": batch.by_format, "cost": self.hasher.cost()});
        let audit = self.event(AuditKind::HashesWrapped, None, meta, detail);
        batch.wrapped = self.store.swap_hashes(&swaps, &[audit]).await?;
        Ok(batch)
    }
}
