//! Request ids without a system call per request: a version-4-shaped UUID made of a random
//! per-process half and a counter scrambled by a bijection, so ids never repeat within a process
//! (for 2^62 requests) and two processes differ by their random halves. Ids name requests in
//! logs; they are not secrets, so a predictable sequence is fine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

const LOW62: u64 = (1 << 62) - 1;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The process's random half (with the version nibble set) and counter offset.
fn key() -> (u64, u64) {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    *KEY.get_or_init(|| {
        let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
        ((hi & !0xF000) | 0x4000, lo)
    })
}

/// A bijection on 62-bit values (xor-shifts and an odd multiplier, all modulo 2^62), so
/// consecutive counters give unrelated-looking ids.
fn scramble(n: u64) -> u64 {
    let mut z = n & LOW62;
    z ^= z >> 31;
    z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9) & LOW62;
    z ^= z >> 29;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb) & LOW62;
    z ^ (z >> 32)
}

/// A fresh id, formatted as a UUID (version 4, RFC 4122 variant).
pub fn generate() -> String {
    let (hi, offset) = key();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_add(offset);
    let lo = scramble(n) | (0b10 << 62);
    uuid::Uuid::from_u64_pair(hi, lo).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v4_uuids_and_never_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = generate();
            let parsed = uuid::Uuid::parse_str(&id).map_err(|e| e.to_string());
            assert_eq!(parsed.map(|u| u.get_version_num()), Ok(4), "{id}");
            assert!(seen.insert(id));
        }
        // The scramble is a bijection on 62 bits: distinct inputs, distinct outputs.
        let outputs: std::collections::HashSet<u64> = (0..100_000).map(scramble).collect();
        assert_eq!(outputs.len(), 100_000);
    }
}
