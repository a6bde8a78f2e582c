//! What a request leaves for after its answer has gone out.
//!
//! A login an upstream answers stores its session *while* the upstream checks the password
//! (see [`CredentialService::upstream_login_held`]): the session and its `token_issued` record
//! are durable before the answer, and the token is shown only if the upstream accepts (it is
//! revoked otherwise). Once the upstream has spoken, the client's answer waits for no commit of
//! its own. What can only follow the answer, and errs on the strict side only when late, is
//! done here afterwards: the login's guessing slots are forgiven and its `login_succeeded`
//! record is written.

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
        if let Some(held) = deferred.held {
            if let Err(e) = self.forgive(held).await {
                tracing::warn!(
                    kind = e.kind(),
                    "guessing slots not forgiven after the answer"
                );
            }
        }
        if !deferred.audit.is_empty() {
            let written = self.store.append_audit(&deferred.audit).await;
            if let Err(e) = written.map_err(crate::Error::from) {
                tracing::warn!(
                    kind = e.kind(),
                    "audit records not written after the answer"
                );
            }
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
