//! RFC 6238 time-based one-time passwords (HMAC-SHA-1, 30-second steps, 6 digits: what
//! authenticator apps use) and the RFC 4648 base32 their secrets are shown in.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per time step (RFC 6238's default; authenticator apps assume it).
pub const STEP_SECS: i64 = 30;
/// Digits in a code (authenticator apps show 6).
pub const DIGITS: u32 = 6;
/// Steps before and after the current one still accepted, for clock drift (RFC 6238 section 5.2
/// recommends at most one).
pub const DRIFT_STEPS: i64 = 1;
/// Bytes in a generated secret (RFC 4226 recommends 160 bits).
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4226 HOTP of `counter`, truncated to `digits`.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The time step `at` (Unix seconds) falls in.
pub fn step_at(at: i64) -> i64 {
    at.div_euclid(STEP_SECS)
}

/// The `DIGITS`-digit code of `step`, zero-padded.
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    let code = hotp(secret, u64::try_from(step).unwrap_or(0), DIGITS);
    format!("{code:0width$}", width = DIGITS as usize)
}

/// The step within the drift window around `now` whose code is `presented`, compared in
/// constant time; the newest matching step wins.
pub fn matching_step(secret: &[u8], presented: &str, now: i64) -> Option<i64> {
    let current = step_at(now);
    let mut found = None;
    for step in (current - DRIFT_STEPS)..=(current + DRIFT_STEPS) {
        let expected = code_at_step(secret, step);
        if crate::token::constant_time_eq(expected.as_bytes(), presented.trim().as_bytes()) {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32, unpadded (as in `otpauth://` URIs).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32 (any case, padding and spaces ignored); `None` if not base32.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let upper = c.to_ascii_uppercase() as u32;
        let value = BASE32.iter().position(|&b| u32::from(b) == upper)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits, the 20-byte ASCII secret).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(secret, time / 30, 8), expected, "T = {time}");
        }
    }

    /// RFC 4226 appendix D: HOTP values of counters 0..9 (6 digits).
    #[test]
    fn rfc_4226_vectors() {
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *want);
        }
    }

    #[test]
    fn drift_window_and_padding() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_109;
        let previous = code_at_step(secret, step_at(now) - 1);
        assert_eq!(
            matching_step(secret, &previous, now),
            Some(step_at(now) - 1)
        );
        let stale = code_at_step(secret, step_at(now) - 2);
        assert_eq!(matching_step(secret, &stale, now), None);
        assert_eq!(code_at_step(secret, 1).len(), 6);
        assert_eq!(code_at_step(secret, 1), "287082");
    }

    #[test]
    fn base32_round_trip_and_rfc_4648_vectors() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw 6ytb oi").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZ1"), None);
        let secret: Vec<u8> = (0..20).collect();
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
    }
}
