//! The base64 dialects of the formats: standard (padding optional), passlib's adapted base64
//! (`.` for `+`, no padding), and crypt(3)'s `./0-9A-Za-z` encoding.

use base64::alphabet;
use base64::engine::general_purpose::GeneralPurposeConfig;
use base64::engine::{DecodePaddingMode, GeneralPurpose};
use base64::Engine;

use crate::ParseError;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64, with or without padding.
pub fn std(s: &str, what: &str) -> Result<Vec<u8>, ParseError> {
    LENIENT
        .decode(s)
        .map_err(|_| ParseError::new(format!("{what} is not valid base64")))
}

/// passlib's adapted base64 (`.` instead of `+`, no padding).
pub fn ab64(s: &str, what: &str) -> Result<Vec<u8>, ParseError> {
    if s.contains('+') {
        return Err(ParseError::new(format!(
            "{what} is not passlib's adapted base64"
        )));
    }
    std(&s.replace('.', "+"), what)
}

pub const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn is_crypt64(s: &str) -> bool {
    s.bytes().all(|b| CRYPT64.contains(&b))
}

/// crypt(3)'s little-endian 24-bit groups: `n` characters of `v`.
pub fn crypt64_push(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(CRYPT64[(v & 0x3f) as usize]));
        v >>= 6;
    }
}
