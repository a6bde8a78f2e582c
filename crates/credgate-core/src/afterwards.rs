//! What a request leaves for after its answer has gone out.
//!
//! A login an upstream answers stores its session *while* the upstream checks the password
//! (see [`CredentialService::upstream_login_held`]): the session and its `token_issued` record
//! are durable before the answer, and the token is shown only if the upstream accepts (it is
//! revoked otherwise). Once the upstream has spoken, the client's answer waits for no commit of
//! its own. What can only follow the answer, and errs on the strict side only when late, is
//! done here afterwards, in one transaction through the counters' connections: the login's
//! guessing slots are forgiven and its `login_succeeded` record is written.

use crate::limits::Held;
use crate::model::AuditEvent;
use crate::service::CredentialService;
use crate::shadow::ShadowPending;

/// What a request left for after its answer: records to complete, and a shadow comparison.
#[derive(Debug, Default)]
pub struct Afterwards {
    pub(crate) records: Option<Deferred>,
    pub(crate) shadow: Option<ShadowPending>,
}

impl Afterwards {
    /// The records to complete after the answer, if any (see [`CredentialService::complete`]).
    pub fn records(&mut self) -> Option<Deferred> {
        self.records.take()
    }

    /// The comparison to make after the answer, if the request was shadowed (see
    /// [`CredentialService::shadow_settle`]).
    pub fn shadow(&mut self) -> Option<ShadowPending> {
        self.shadow.take()
    }
}

/// Writes left for after the answer: guessing slots to forgive, audit records to append.
#[derive(Default)]
pub struct Deferred {
    pub(crate) held: Option<Held>,
    pub(crate) audit: Vec<AuditEvent>,
}

impl Deferred {
    pub(crate) fn new(held: Option<Held>, audit: Vec<AuditEvent>) -> Self {
        Self { held, audit }
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("slots", &self.held.is_some())
            .field("audit_records", &self.audit.len())
            .finish()
    }
}

impl CredentialService {
    /// Completes what a request left for after its answer. A failure is logged, never the
    /// caller's: the answer has gone out.
    pub async fn complete(&self, deferred: Deferred) {
        let settle = deferred.held.as_ref().map(|held| held.settlements(true));
        let settle = settle.as_deref().unwrap_or(&[]);
        if settle.is_empty() && deferred.audit.is_empty() {
            return;
        }
        let done = self
            .store
            .settle_after_answer(settle, &deferred.audit)
            .await;
        if let Err(e) = done.map_err(crate::Error::from) {
            tracing::warn!(kind = e.kind(), "records not completed after the answer");
        }
    }

    /// Completes everything a request left, in line: for callers that send no answer of their
    /// own first (the native API, embedders).
    pub async fn finish(&self, mut after: Afterwards) {
        if let Some(records) = after.records() {
            self.complete(records).await;
        }
        if let Some(pending) = after.shadow() {
            self.shadow_settle(pending).await;
        }
    }
}
