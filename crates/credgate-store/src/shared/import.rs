//! Bulk import and export of users with their hashes.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`), `Db`, `DbRow`, `DbConn` and `lock_user`.
//!
//! A batch is decided in memory against what is stored (one lookup of
//! the batch's usernames, ids and aliases), then written with multi-row inserts, all in one
//! transaction: a conflicting row writes nothing, and every other row lands whole.

use std::collections::{HashMap, HashSet};

use credgate_core::import::{ImportOptions, ImportOutcome, ImportUser};
use credgate_core::model::{NewUser, User};
use credgate_core::StoreError;
use sqlx::{QueryBuilder, Row};

use super::lock_user;
use super::users::users_from_rows;
use super::{Backend, Db, DbConn, DbRow};
use crate::error;

/// Rows per multi-row statement: 8 binds a row stays far below SQLite's 32766 and PostgreSQL's
/// 65535 bind limits.
const ROWS_PER_STATEMENT: usize = 500;

/// `export_users` limit: 0 means this many, and never more.
const MAX_EXPORT_PAGE: u32 = 10_000;

const SELECT_WITH_HASH: &str =
    "SELECT u.id, u.username, u.admin, u.externally_managed, u.profile, u.created_at, \
     u.password_hash, a.dialect, a.external_id FROM ";

/// A stored user and its hash.
struct Stored {
    user: User,
    hash: String,
}

/// Joined user rows (adjacent per user) with their hashes.
fn stored_from_rows(rows: Vec<DbRow>) -> Result<Vec<Stored>, StoreError> {
    let mut hashes: Vec<String> = Vec::new();
    let mut last_id: Option<String> = None;
    for row in &rows {
        let id: String = row.try_get("id").map_err(error::map)?;
        if last_id.as_deref() != Some(id.as_str()) {
            hashes.push(row.try_get("password_hash").map_err(error::map)?);
            last_id = Some(id);
        }
    }
    let users = users_from_rows(rows)?;
    Ok(users
        .into_iter()
        .zip(hashes)
        .map(|(user, hash)| Stored { user, hash })
        .collect())
}

/// What is stored under the batch's usernames and given ids, and who owns its aliases.
struct Existing {
    by_username: HashMap<String, Stored>,
    id_owner: HashMap<String, String>,
    alias_owner: HashMap<(String, String), String>,
}

async fn load_existing(conn: &mut DbConn, users: &[ImportUser]) -> Result<Existing, StoreError> {
    let mut existing = Existing {
        by_username: HashMap::new(),
        id_owner: HashMap::new(),
        alias_owner: HashMap::new(),
    };
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Db>::new(SELECT_WITH_HASH);
        qb.push("users u LEFT JOIN user_aliases a ON a.user_id = u.id WHERE u.username IN (");
        let mut names = qb.separated(", ");
        for u in chunk {
            names.push_bind(u.user.username.as_str());
        }
        qb.push(")");
        if chunk.iter().any(|u| u.id_given) {
            qb.push(" OR u.id IN (");
            let mut ids = qb.separated(", ");
            for u in chunk.iter().filter(|u| u.id_given) {
                ids.push_bind(u.user.id.as_str());
            }
            qb.push(")");
        }
        qb.push(" ORDER BY u.id, a.dialect");
        let rows = qb.build().fetch_all(&mut *conn).await.map_err(error::map)?;
        for stored in stored_from_rows(rows)? {
            existing
                .id_owner
                .insert(stored.user.id.clone(), stored.user.username.clone());
            existing
                .by_username
                .insert(stored.user.username.clone(), stored);
        }
    }
    let aliases: Vec<(&String, &String)> = users.iter().flat_map(|u| &u.user.aliases).collect();
    for chunk in aliases.chunks(ROWS_PER_STATEMENT) {
        // A join, not `(dialect, external_id) IN (VALUES ...)`: SQLite scans the table for that.
        let mut qb = QueryBuilder::<Db>::new("WITH v (d, x) AS (");
        qb.push_values(chunk, |mut b, (dialect, external_id)| {
            b.push_bind(dialect.as_str())
                .push_bind(external_id.as_str());
        });
        qb.push(
            ") SELECT a.dialect, a.external_id, a.user_id FROM v \
             JOIN user_aliases a ON a.dialect = v.d AND a.external_id = v.x",
        );
        for row in qb.build().fetch_all(&mut *conn).await.map_err(error::map)? {
            existing.alias_owner.insert(
                (
                    row.try_get("dialect").map_err(error::map)?,
                    row.try_get("external_id").map_err(error::map)?,
                ),
                row.try_get("user_id").map_err(error::map)?,
            );
        }
    }
    Ok(existing)
}

/// The names of the fields in which `new` differs from `stored`.
fn differences(new: &ImportUser, stored: &Stored) -> Vec<&'static str> {
    let (a, b) = (&new.user, &stored.user);
    [
        (a.admin != b.admin, "admin flag"),
        (
            a.externally_managed != b.externally_managed,
            "externally-managed flag",
        ),
        (a.aliases != b.aliases, "aliases"),
        (a.profile != b.profile, "profile"),
        (new.credential_hash != stored.hash, "password hash"),
    ]
    .into_iter()
    .filter_map(|(differs, name)| differs.then_some(name))
    .collect()
}

/// Decides every row against `existing` and the rows before it. Returns the outcomes and the
/// indexes of the rows to create and to update.
fn decide(
    users: &[ImportUser],
    existing: &Existing,
    options: ImportOptions,
) -> (Vec<ImportOutcome>, Vec<usize>, Vec<usize>) {
    let (mut outcomes, mut creates, mut updates) = (Vec::new(), Vec::new(), Vec::new());
    let mut usernames: HashSet<&str> = HashSet::new();
    let mut ids: HashSet<&str> = HashSet::new();
    let mut aliases: HashMap<(&str, &str), &str> = HashMap::new();
    for (index, new) in users.iter().enumerate() {
        let user = &new.user;
        let stored = existing.by_username.get(&user.username);
        // The id this row's user has (or will have) if it is applied.
        let owner_id = stored.map_or(user.id.as_str(), |s| s.user.id.as_str());
        let alias_clash = user.aliases.iter().find(|(d, x)| {
            let stored_owner = || {
                let key = ((*d).clone(), (*x).clone());
                existing
                    .alias_owner
                    .get(&key)
                    .is_some_and(|o| o != owner_id)
            };
            (!existing.alias_owner.is_empty() && stored_owner())
                || aliases
                    .get(&(d.as_str(), x.as_str()))
                    .is_some_and(|o| *o != owner_id)
        });
        let outcome = if !usernames.insert(&user.username) {
            ImportOutcome::Conflict("the username is on an earlier row too".into())
        } else if let Some(stored) = stored {
            let diffs = differences(new, stored);
            if new.id_given && user.id != stored.user.id {
                ImportOutcome::Conflict("the user exists with another id".into())
            } else if diffs.is_empty() {
                ImportOutcome::Unchanged
            } else if let Some((d, x)) = alias_clash {
                ImportOutcome::Conflict(format!("alias {d}={x} belongs to another user"))
            } else if options.update {
                updates.push(index);
                ImportOutcome::Updated
            } else {
                ImportOutcome::Conflict(format!(
                    "the user exists with a different {}",
                    diffs.join(", ")
                ))
            }
        } else if existing.id_owner.contains_key(&user.id) || ids.contains(user.id.as_str()) {
            ImportOutcome::Conflict(format!("id {} belongs to another user", user.id))
        } else if let Some((d, x)) = alias_clash {
            ImportOutcome::Conflict(format!("alias {d}={x} belongs to another user"))
        } else {
            creates.push(index);
            ImportOutcome::Created
        };
        if matches!(outcome, ImportOutcome::Created | ImportOutcome::Updated) {
            ids.insert(owner_id);
            for (d, x) in &user.aliases {
                aliases.insert((d, x), owner_id);
            }
        }
        outcomes.push(outcome);
    }
    (outcomes, creates, updates)
}

async fn insert_users(conn: &mut DbConn, users: &[&ImportUser]) -> Result<(), StoreError> {
    let profiles = users
        .iter()
        .map(|u| serde_json::to_string(&u.user.profile))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| error::corrupt("user profile"))?;
    for (chunk, profiles) in users
        .chunks(ROWS_PER_STATEMENT)
        .zip(profiles.chunks(ROWS_PER_STATEMENT))
    {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO users (id, username, admin, externally_managed, profile, created_at, \
             password_hash, credential_version) ",
        );
        qb.push_values(chunk.iter().zip(profiles), |mut b, (u, profile)| {
            // `&str` binds are borrowed, `&String` ones copied.
            b.push_bind(u.user.id.as_str())
                .push_bind(u.user.username.as_str())
                .push_bind(u.user.admin)
                .push_bind(u.user.externally_managed)
                .push_bind(profile.as_str())
                .push_bind(u.user.created_at)
                .push_bind(u.credential_hash.as_str())
                .push_bind(1_i64);
        });
        qb.build()
            .execute(&mut *conn)
            .await
            .map_err(|e| error::duplicate_or_map(e, |c| c.to_owned()))?;
    }
    insert_aliases(conn, users).await
}

async fn insert_aliases(conn: &mut DbConn, users: &[&ImportUser]) -> Result<(), StoreError> {
    let aliases: Vec<(&String, &String, &String)> = users
        .iter()
        .flat_map(|u| u.user.aliases.iter().map(|(d, x)| (d, x, &u.user.id)))
        .collect();
    for chunk in aliases.chunks(ROWS_PER_STATEMENT) {
        let mut qb =
            QueryBuilder::<Db>::new("INSERT INTO user_aliases (dialect, external_id, user_id) ");
        qb.push_values(chunk, |mut b, (dialect, external_id, user_id)| {
            b.push_bind(dialect.as_str())
                .push_bind(external_id.as_str())
                .push_bind(user_id.as_str());
        });
        qb.build()
            .execute(&mut *conn)
            .await
            .map_err(|e| error::duplicate_or_map(e, |c| c.to_owned()))?;
    }
    Ok(())
}

/// Overwrites an existing user's flags, profile, aliases and (when it differs) hash. A new hash
/// moves the credential version and ends the user's sessions and resets, like a reset would.
async fn update_user(
    conn: &mut DbConn,
    new: &ImportUser,
    stored: &Stored,
) -> Result<(), StoreError> {
    let id = &stored.user.id;
    lock_user(&mut *conn, id).await?;
    let profile =
        serde_json::to_string(&new.user.profile).map_err(|_| error::corrupt("user profile"))?;
    sqlx::query("UPDATE users SET admin = $1, externally_managed = $2, profile = $3 WHERE id = $4")
        .bind(new.user.admin)
        .bind(new.user.externally_managed)
        .bind(&profile)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    if new.credential_hash != stored.hash {
        sqlx::query(
            "UPDATE users SET password_hash = $1, credential_version = credential_version + 1 \
             WHERE id = $2",
        )
        .bind(&new.credential_hash)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
        for revoke in [
            "DELETE FROM tokens WHERE user_id = $1",
            "DELETE FROM reset_tokens WHERE user_id = $1",
        ] {
            sqlx::query(revoke)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(error::map)?;
        }
    }
    if new.user.aliases != stored.user.aliases {
        sqlx::query("DELETE FROM user_aliases WHERE user_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(error::map)?;
        let mut with_stored_id = new.clone();
        with_stored_id.user.id = id.clone();
        insert_aliases(conn, &[&with_stored_id]).await?;
    }
    Ok(())
}

async fn import_in(
    conn: &mut DbConn,
    users: &[ImportUser],
    options: ImportOptions,
) -> Result<Vec<ImportOutcome>, StoreError> {
    let existing = load_existing(conn, users).await?;
    let (outcomes, creates, updates) = decide(users, &existing, options);
    for index in updates {
        let new = &users[index];
        if let Some(stored) = existing.by_username.get(&new.user.username) {
            update_user(conn, new, stored).await?;
        }
    }
    let creates: Vec<&ImportUser> = creates.into_iter().map(|i| &users[i]).collect();
    insert_users(conn, &creates).await?;
    Ok(outcomes)
}

pub(super) async fn import_users(
    store: &Backend,
    users: &[ImportUser],
    options: ImportOptions,
) -> Result<Vec<ImportOutcome>, StoreError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.begin_write().await?;
    match import_in(&mut tx, users, options).await {
        Ok(outcomes) if options.dry_run => {
            tx.rollback().await.map_err(error::map)?;
            Ok(outcomes)
        }
        Ok(outcomes) => {
            tx.commit().await.map_err(error::map)?;
            Ok(outcomes)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

pub(super) async fn export_users(
    store: &Backend,
    after_username: Option<&str>,
    limit: u32,
) -> Result<Vec<NewUser>, StoreError> {
    let limit = match limit {
        0 => MAX_EXPORT_PAGE,
        n => n.min(MAX_EXPORT_PAGE),
    };
    let sql = format!(
        "{SELECT_WITH_HASH}(SELECT id, username, admin, externally_managed, profile, created_at, \
         password_hash FROM users WHERE username > $1 ORDER BY username LIMIT $2) u \
         LEFT JOIN user_aliases a ON a.user_id = u.id ORDER BY u.username, a.dialect"
    );
    let rows = sqlx::query(&sql)
        .bind(after_username.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&store.pool)
        .await
        .map_err(error::map)?;
    Ok(stored_from_rows(rows)?
        .into_iter()
        .map(|s| NewUser {
            user: s.user,
            credential_hash: s.hash,
        })
        .collect())
}
