//! What the core reports through the `metrics` facade (names agreed in the metrics contract):
//! logins and password changes by canonical outcome, and guessing-limit refusals by scope.
//! Nothing is recorded when no recorder is installed, nor when the core's config turns it off.

use crate::command::{Command, Grant, TokenRequest};
use crate::error::Error;

/// The label of a finished command: `ok`, or the canonical error kind (`invalid_credentials`,
/// `rate_limited`, ...), so a dashboard tells a wrong password from a refusal.
pub fn outcome_label<T>(result: &Result<T, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    }
}

/// The counter a command is tallied in, if any: password logins and password changes.
pub(crate) fn command_counter(command: &Command) -> Option<&'static str> {
    match command {
        Command::IssueToken(TokenRequest {
            grant: Grant::Password { .. },
            ..
        }) => Some("credgate_logins_total"),
        Command::ChangePassword(_) => Some("credgate_password_changes_total"),
        _ => None,
    }
}

pub(crate) fn count_command(counter: &'static str, dialect: &str, outcome: &'static str) {
    metrics::counter!(counter, "dialect" => dialect.to_owned(), "outcome" => outcome).increment(1);
}

/// A guessing limit refused an attempt (or throttled a reset request); `scope` names the budget:
/// `user`, `address`, `client`, `answer`, `code`, `reset_token_user`, `reset_token_address`,
/// `reset_user`, `reset_address`.
pub(crate) fn count_refusal(dialect: &str, scope: &'static str) {
    metrics::counter!("credgate_rate_limited_total", "dialect" => dialect.to_owned(), "scope" => scope)
        .increment(1);
}
