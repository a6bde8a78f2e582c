//! sqlx errors to `StoreError`, without ever quoting a bound value.

use credgate_core::StoreError;
use sqlx::error::{DatabaseError, ErrorKind};

/// Maps an error no caller expects: unreachable database -> `Unavailable`, the rest -> `Backend`.
pub(crate) fn map(err: sqlx::Error) -> StoreError {
    let unavailable = match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => is_transient(db.as_ref()),
        _ => false,
    };
    // sqlx messages name columns, constraints and SQLite codes, never bound values.
    if unavailable {
        tracing::debug!(error = %err, "database unavailable");
        StoreError::Unavailable(err.to_string())
    } else {
        tracing::debug!(error = %err, "database failure");
        StoreError::Backend(err.to_string())
    }
}

/// Lock contention beyond the busy timeout, a full disk, memory exhausted, an unopenable or
/// failing file, a lost or refused PostgreSQL connection, a server shutting down, a statement
/// cancelled by `statement_timeout`: all pass once the resource comes back.
fn is_transient(db: &dyn DatabaseError) -> bool {
    if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // Extended result code; the primary code is its low byte.
        let code = sqlite
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .unwrap_or(0)
            & 0xff;
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_IOERR (every extended IOERR_*),
        // SQLITE_FULL, SQLITE_CANTOPEN
        return matches!(code, 5 | 6 | 7 | 10 | 13 | 14);
    }
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // Class 08 connection exception, 53 insufficient resources (53100 disk_full, 53200
        // out_of_memory, 53300 too_many_connections), 57P0x operator intervention (shutdown,
        // crash), 57014 query_canceled (`statement_timeout`), 55P03 lock_not_available
        // (`lock_timeout`, the busy timeout's twin), 25P03 idle_in_transaction_session_timeout.
        let code = pg.code();
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P0")
            || matches!(code, "57014" | "55P03" | "25P03");
    }
    false
}

/// For a unique-constraint violation, the text that names the constraint: PostgreSQL's constraint
/// name (`users_username_key`) or SQLite's message (`UNIQUE constraint failed: users.username`).
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(
            db.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned()),
        ),
        _ => None,
    }
}

/// Maps a unique violation to `Duplicate(what)` where `what` names the clash, anything else via [`map`].
pub(crate) fn duplicate_or_map(err: sqlx::Error, what: impl FnOnce(&str) -> String) -> StoreError {
    match unique_violation(&err) {
        Some(constraint) => StoreError::Duplicate(what(&constraint)),
        None => map(err),
    }
}

/// A write that referenced a row that does not exist (a token for an unknown user) is `NotFound`;
/// any other error goes to `otherwise`.
pub(crate) fn not_found_or(
    err: sqlx::Error,
    otherwise: impl FnOnce(sqlx::Error) -> StoreError,
) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound
        }
        _ => otherwise(err),
    }
}

/// A stored value this crate cannot read back (a corrupt JSON column, an unknown token kind).
pub(crate) fn corrupt(what: &str) -> StoreError {
    tracing::error!(what, "unreadable stored value");
    StoreError::Backend(format!("unreadable stored value: {what}"))
}
