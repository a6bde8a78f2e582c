//! md5-crypt (`$1$`, Poul-Henning Kamp's FreeBSD algorithm) and phpass (`$P$`/`$H$`), written
//! on RustCrypto's `md-5`: no well-kept crate implements them. Both return the encoded hash
//! part the stored string ends with.

use md5::{Digest as _, Md5};

use crate::b64::{crypt64_push, CRYPT64};

/// The 22-character hash part of `$1$salt$hash`.
pub fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    let alt = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    let f = |i: usize| u32::from(fin[i]);
    let mut out = String::with_capacity(22);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        crypt64_push(&mut out, (f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    crypt64_push(&mut out, f(11), 2);
    out
}

/// The 22-character hash part of a phpass string: MD5(salt ‖ pw), then 2^count_log2 times
/// MD5(previous ‖ pw).
pub fn phpass(password: &[u8], salt: &[u8], count_log2: u8) -> String {
    let mut h = Md5::new()
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    for _ in 0..(1u64 << count_log2) {
        h = Md5::new().chain_update(h).chain_update(password).finalize();
    }
    encode64(&h)
}

/// phpass's `encode64`: little-endian 24-bit groups, the last one short.
fn encode64(input: &[u8]) -> String {
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, b)| v | (u32::from(*b) << (8 * i)));
        crypt64_push(&mut out, v, chunk.len() + 1);
    }
    out
}

/// The value of a crypt64 character (phpass's count character).
pub fn crypt64_value(c: u8) -> Option<u8> {
    CRYPT64.iter().position(|&x| x == c).map(|p| p as u8)
}
