//! Opaque tokens: 256 random bits, URL-safe; only their SHA-256 digest is ever stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::secret::SecretToken;

pub fn generate() -> SecretToken {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    SecretToken::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// Hex SHA-256 of a secret: the form in which tokens, reset tokens and app keys are stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets in time that depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let (a, b) = (super::generate(), super::generate());
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
        assert_eq!(super::digest(a.expose()).len(), 64);
    }
}
