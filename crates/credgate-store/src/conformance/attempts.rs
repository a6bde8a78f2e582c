//! Conformance: an attempt's guessing budgets taken and settled together, in one transaction
//! (one durable commit on the response path), with the guarantees of one budget at a time.

use std::sync::Arc;

use credgate_core::model::{AuditKind, AuditQuery};
use credgate_core::store::SlotSettlement;
use credgate_core::Store;

use super::{ask, event, take_slot, T0};

/// The count of `key` now: one more slot is taken to read it, so callers read it last.
async fn count_of(store: &dyn Store, key: &str) -> u32 {
    take_slot(store, key, T0, 1000).await.count - 1
}

/// All or none: a refusal by one budget keeps none of the others' slots; answers come in the
/// order asked whatever the key order; settlements give back or forget in one call.
pub async fn attempts_taken_together(store: &dyn Store) {
    assert!(store.reserve_attempts(&[], T0).await.unwrap().is_empty());
    store.settle_attempts(&[]).await.unwrap();
    // Keys asked out of their sorted order: the answers follow the asking order.
    let asks = [ask("user:z", 2), ask("addr:a", 1)];
    let taken = store.reserve_attempts(&asks, T0).await.unwrap();
    let seen: Vec<_> = taken.iter().map(|r| (r.allowed, r.count)).collect();
    assert_eq!(seen, [(true, 1), (true, 1)]);
    assert!(taken.iter().all(|r| r.window_start == T0));
    // The address budget (limit 1) refuses: the user's slot is not kept either.
    let taken = store.reserve_attempts(&asks, T0 + 1).await.unwrap();
    assert_eq!(
        taken.iter().map(|r| r.allowed).collect::<Vec<_>>(),
        [true, false]
    );
    // One user slot is left of 2: a lone reservation takes it, the next is refused.
    assert!(take_slot(store, "user:z", T0 + 2, 2).await.allowed);
    assert!(!take_slot(store, "user:z", T0 + 3, 2).await.allowed);
    // Settled together: the user's count forgotten, the address's slot given back.
    let settle = [
        SlotSettlement::Clear { key: "user:z" },
        SlotSettlement::Release {
            key: "addr:a",
            window_start: T0,
            limit: 1,
        },
    ];
    store.settle_attempts(&settle).await.unwrap();
    let taken = store.reserve_attempts(&asks, T0 + 4).await.unwrap();
    let seen: Vec<_> = taken.iter().map(|r| (r.allowed, r.count)).collect();
    assert_eq!(seen, [(true, 1), (true, 1)]);
    // A single budget, and a single settlement, take the same path as one.
    let taken = store
        .reserve_attempts(&[ask("code:q", 1)], T0)
        .await
        .unwrap();
    assert!(taken.len() == 1 && taken[0].allowed);
    let release = SlotSettlement::Release {
        key: "code:q",
        window_start: T0,
        limit: 1,
    };
    store.settle_attempts(&[release]).await.unwrap();
    assert_eq!(count_of(store, "code:q").await, 0);
    // One key asked twice counts twice, all or none too.
    let twice = store
        .reserve_attempts(&[ask("dup", 1), ask("dup", 1)], T0)
        .await
        .unwrap();
    assert_eq!(
        twice.iter().map(|r| r.allowed).collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(count_of(store, "dup").await, 0);
}

/// Many concurrent attempts drawing on two budgets, asked in both orders, through one or two
/// stores on the same database: exactly `limit` are allowed, and none fails (no deadlock).
pub async fn concurrent_batched_reservations_hold_the_limit(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let (user, addr) = (ask("user:burst", 5), ask("addr:burst", 100));
            let asks = if i % 4 < 2 {
                [user, addr]
            } else {
                [addr, user]
            };
            let taken = store.reserve_attempts(&asks, T0).await.unwrap();
            taken.iter().all(|r| r.allowed)
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 5);
    // The refused attempts kept no address slot.
    assert_eq!(count_of(&*a, "addr:burst").await, 5);
}

/// What completes a login after its answer: the slots settled and the record appended, in one
/// transaction.
pub async fn settled_after_the_answer_with_the_record(store: &dyn Store) {
    let asks = [ask("addr:after", 50), ask("user:after", 5)];
    let taken = store.reserve_attempts(&asks, T0).await.unwrap();
    let settle = [
        SlotSettlement::Release {
            key: "addr:after",
            window_start: taken[0].window_start,
            limit: 50,
        },
        SlotSettlement::Clear { key: "user:after" },
    ];
    let audit = [event(AuditKind::LoginSucceeded, Some("u-after"))];
    store.settle_after_answer(&settle, &audit).await.unwrap();
    assert_eq!(count_of(store, "addr:after").await, 0);
    assert_eq!(count_of(store, "user:after").await, 0);
    let query = AuditQuery {
        user_id: Some("u-after".into()),
        limit: 10,
    };
    let logged = store.audit_log(&query).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].kind, AuditKind::LoginSucceeded.as_str());
    // Nothing to do is no error.
    store.settle_after_answer(&[], &[]).await.unwrap();
}

/// Attempts taking and settling the same two budgets at once (settlements named user first,
/// reservations address first): none fails, no deadlock on PostgreSQL.
pub async fn concurrent_reservations_and_settlements_never_deadlock(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let asks = [ask("addr:dl", 1000), ask("user:dl", 1000)];
            let taken = store.reserve_attempts(&asks, T0).await?;
            let settle = [
                SlotSettlement::Clear { key: "user:dl" },
                SlotSettlement::Release {
                    key: "addr:dl",
                    window_start: taken[0].window_start,
                    limit: 1000,
                },
            ];
            store.settle_attempts(&settle).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count_of(&*a, "addr:dl").await, 0);
}
