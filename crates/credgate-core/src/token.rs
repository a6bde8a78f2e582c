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
    lower_hex(&Sha256::digest(secret.as_bytes()))
}

/// `hex::encode`'s text (lower case), by table instead of its per-character iterator: the
/// digest is taken on every authenticated request.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

/// The server secret reset tokens and one-time codes are stored under (HMAC-SHA256): kept
/// outside the database, so a copy of the database alone recovers no code, even an 8-digit one.
/// Every instance sharing a database must use the same key.
#[derive(Clone)]
pub struct DigestKey(std::sync::Arc<zeroize::Zeroizing<Vec<u8>>>);

/// Bytes of a generated key (and the fewest a configured one may have).
pub const DIGEST_KEY_BYTES: usize = 32;

impl DigestKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; DIGEST_KEY_BYTES]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self(std::sync::Arc::new(bytes))
    }

    /// A key written as hex (surrounding whitespace ignored), at least 32 bytes.
    pub fn from_hex(text: &str) -> Result<Self, &'static str> {
        let bytes = zeroize::Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| "the digest key is not hex")?,
        );
        if bytes.len() < DIGEST_KEY_BYTES {
            return Err("the digest key must be at least 32 bytes (64 hex digits)");
        }
        Ok(Self(std::sync::Arc::new(bytes)))
    }

    /// The key as hex, to be written to its file.
    pub fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.0.as_slice()))
    }

    /// Hex HMAC-SHA256 of a secret under this key: the stored form of reset tokens and codes.
    pub fn digest(&self, secret: &str) -> String {
        use hmac::{Hmac, Mac};
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        match <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice()) {
            Ok(mut mac) => {
                mac.update(secret.as_bytes());
                lower_hex(&mac.finalize().into_bytes())
            }
            Err(_) => digest(secret),
        }
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(<redacted>)")
    }
}

/// Compares two secrets in time that depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn lower_hex_is_hex_encode() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(super::lower_hex(&all), hex::encode(&all));
        assert_eq!(super::lower_hex(&[]), "");
        assert_eq!(
            super::digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let (a, b) = (super::generate(), super::generate());
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
        assert_eq!(super::digest(a.expose()).len(), 64);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn keyed_digests_depend_on_the_key_and_never_show_it() {
        let (k1, k2) = (super::DigestKey::generate(), super::DigestKey::generate());
        assert_ne!(k1.digest("12345678"), k2.digest("12345678"));
        assert_ne!(k1.digest("12345678"), super::digest("12345678"));
        assert_eq!(
            k1.digest("x"),
            super::DigestKey::from_hex(&k1.to_hex())
                .unwrap()
                .digest("x")
        );
        assert!(super::DigestKey::from_hex("abcd").is_err());
        assert!(!format!("{k1:?}").contains(k1.to_hex().as_str()));
    }
}
