//! Legacy password hash formats: each stored string is parsed once into a typed [`LegacyHash`]
//! (its format, parameters, salt and digest), verified in constant time, judged strong or weak,
//! and, when weak, wrapped: bcrypt over the legacy digest, stored as a [`Wrapped`] string that
//! names the inner format and carries its salt and parameters but never the legacy digest.
//!
//! Formats that describe themselves are told apart by prefix or shape; ASP.NET Identity and
//! CrafterCMS strings need a [`Hint`]. Every message names the problem, never the hash.
#![deny(clippy::unwrap_used)]

mod auth0;
mod b64;
mod compute;
mod crypt;
mod limits;
mod parse;
mod spring;
mod wrap;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

pub use limits::Limits;
pub use wrap::{Wrapped, WRAP_PREFIX};

/// Why a string is not a hash this crate can verify. Never quotes the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

/// The `password_hash_format` of an import row, for formats that do not describe themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// ASP.NET (Core) Identity `PasswordHasher` output (base64; v2 or v3 by its first byte).
    AspnetIdentity,
    /// CrafterCMS `SimpleDigest`: `base64(hash)|base64(salt)`.
    Crafter,
    /// Auth0's `custom_password_hash` object, as JSON.
    Auth0,
}

impl Hint {
    pub fn parse(name: &str) -> Result<Self, ParseError> {
        match name {
            "aspnet-identity" => Ok(Self::AspnetIdentity),
            "crafter" => Ok(Self::Crafter),
            "auth0" => Ok(Self::Auth0),
            _ => Err(ParseError::new(
                "unknown password_hash_format (known: aspnet-identity, crafter, auth0)",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::AspnetIdentity => "aspnet-identity",
            Self::Crafter => "crafter",
            Self::Auth0 => "auth0",
        }
    }
}

/// A legacy format, by the name audits, `rehash --status` and wrapped strings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Argon2id,
    Argon2i,
    Argon2d,
    Scrypt,
    Pbkdf2Sha1,
    Pbkdf2Sha256,
    Pbkdf2Sha512,
    Md5Crypt,
    Sha256Crypt,
    Sha512Crypt,
    Phpass,
    DjangoPbkdf2Sha256,
    DjangoPbkdf2Sha1,
    DjangoArgon2,
    DjangoBcryptSha256,
    DjangoBcrypt,
    DjangoSha1,
    DjangoMd5,
    LdapSsha,
    LdapSsha256,
    LdapSsha384,
    LdapSsha512,
    LdapSha,
    LdapSha256,
    LdapSha512,
    LdapSmd5,
    LdapMd5,
    AspnetIdentityV2,
    AspnetIdentityV3,
    Crafter,
    SpringBcrypt,
    SpringPbkdf2,
    SpringScrypt,
    SpringSha256,
    SpringSha256Digest,
    SpringSha1,
    SpringMd5,
    SpringMd4,
    CryptBcrypt,
    Auth0Digest,
    Auth0Hmac,
    Auth0Pbkdf2,
    Auth0Scrypt,
}

impl Format {
    pub fn name(self) -> &'static str {
        use Format::*;
        match self {
            Argon2id => "argon2id",
            Argon2i => "argon2i",
            Argon2d => "argon2d",
            Scrypt => "scrypt",
            Pbkdf2Sha1 => "pbkdf2-sha1",
            Pbkdf2Sha256 => "pbkdf2-sha256",
            Pbkdf2Sha512 => "pbkdf2-sha512",
            Md5Crypt => "md5-crypt",
            Sha256Crypt => "sha256-crypt",
            Sha512Crypt => "sha512-crypt",
            Phpass => "phpass",
            DjangoPbkdf2Sha256 => "django-pbkdf2-sha256",
            DjangoPbkdf2Sha1 => "django-pbkdf2-sha1",
            DjangoArgon2 => "django-argon2",
            DjangoBcryptSha256 => "django-bcrypt-sha256",
            DjangoBcrypt => "django-bcrypt",
            DjangoSha1 => "django-sha1",
            DjangoMd5 => "django-md5",
            LdapSsha => "ldap-ssha",
            LdapSsha256 => "ldap-ssha256",
            LdapSsha384 => "ldap-ssha384",
            LdapSsha512 => "ldap-ssha512",
            LdapSha => "ldap-sha",
            LdapSha256 => "ldap-sha256",
            LdapSha512 => "ldap-sha512",
            LdapSmd5 => "ldap-smd5",
            LdapMd5 => "ldap-md5",
            AspnetIdentityV2 => "aspnet-identity-v2",
            AspnetIdentityV3 => "aspnet-identity-v3",
            Crafter => "crafter",
            SpringBcrypt => "spring-bcrypt",
            SpringPbkdf2 => "spring-pbkdf2",
            SpringScrypt => "spring-scrypt",
            SpringSha256 => "spring-sha256",
            SpringSha256Digest => "spring-sha256-digest",
            SpringSha1 => "spring-sha1",
            SpringMd5 => "spring-md5",
            SpringMd4 => "spring-md4",
            CryptBcrypt => "crypt-bcrypt",
            Auth0Digest => "auth0-digest",
            Auth0Hmac => "auth0-hmac",
            Auth0Pbkdf2 => "auth0-pbkdf2",
            Auth0Scrypt => "auth0-scrypt",
        }
    }
}

/// Whether a format stays as imported until the next login (strong) or is wrapped (weak).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Strong,
    Weak,
}

/// PBKDF2 with fewer iterations than this is weak (wrapped).
pub const STRONG_PBKDF2_ITERATIONS: u32 = 10_000;

/// The digest algorithm of a salted or plain digest format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Digest {
    Md4,
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    /// The digest's length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Digest::Md4 | Digest::Md5 => 16,
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 => 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Argon2Variant {
    Argon2id,
    Argon2i,
    Argon2d,
}

/// Everything needed to recompute a format's digest from a password: the salt and parameters,
/// never the digest itself. Salts are hex in the wrapped string's JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "alg", rename_all = "kebab-case")]
pub(crate) enum Params {
    Pbkdf2 {
        prf: Digest,
        iterations: u32,
        #[serde(with = "hex")]
        salt: Vec<u8>,
        len: usize,
    },
    Argon2 {
        variant: Argon2Variant,
        version: u32,
        m: u32,
        t: u32,
        p: u32,
        #[serde(with = "hex")]
        salt: Vec<u8>,
        len: usize,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        #[serde(with = "hex")]
        salt: Vec<u8>,
        len: usize,
    },
    Md5Crypt {
        salt: String,
    },
    ShaCrypt {
        bits: u16,
        rounds: u32,
        salt: String,
    },
    Phpass {
        count_log2: u8,
        salt: String,
    },
    /// `H(password ‖ salt)` (LDAP) or `H(salt ‖ password)` (Django), hex of the salt bytes.
    Salted {
        digest: Digest,
        #[serde(with = "hex")]
        salt: Vec<u8>,
        salt_first: bool,
    },
    /// CrafterCMS SimpleDigest: SHA-256(salt ‖ password), then `iterations` more SHA-256.
    Crafter {
        iterations: u32,
        #[serde(with = "hex")]
        salt: Vec<u8>,
    },
    /// Auth0's salted digest or HMAC of the password in its encoding.
    Auth0(crate::auth0::Auth0Params),
    /// A bcrypt string inside another format (Django); verified by bcrypt itself.
    Bcrypt {
        sha256_hex: bool,
        cost: u32,
    },
}

/// A parsed legacy hash. Its `Debug` never shows the digest or the original string.
#[derive(Clone)]
pub struct LegacyHash {
    format: Format,
    params: Params,
    /// What a right password recomputes (for crypt formats, their encoded hash part).
    digest: Vec<u8>,
    /// The string as imported (with the `$credgate-legacy$` prefix for hinted formats).
    stored: String,
}

impl std::fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyHash")
            .field("format", &self.format.name())
            .finish_non_exhaustive()
    }
}

/// Prefix of the stored form of formats that need a hint: `$credgate-legacy$HINT$ORIGINAL`.
pub const LEGACY_PREFIX: &str = "$credgate-legacy$";

impl LegacyHash {
    /// Parses an imported `password_hash`, with the row's `password_hash_format` if any.
    pub fn parse(s: &str, hint: Option<Hint>, limits: &Limits) -> Result<Self, ParseError> {
        parse::parse(s, hint, limits)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn strength(&self) -> Strength {
        match &self.params {
            Params::Pbkdf2 { iterations, .. } if *iterations >= STRONG_PBKDF2_ITERATIONS => {
                Strength::Strong
            }
            Params::Argon2 { .. }
            | Params::Scrypt { .. }
            | Params::ShaCrypt { .. }
            | Params::Bcrypt { .. } => Strength::Strong,
            _ => Strength::Weak,
        }
    }

    /// The string to store: self-describing, so it parses back without a hint.
    pub fn stored(&self) -> &str {
        &self.stored
    }

    /// Whether `password` (as typed: its UTF-8 bytes) matches, compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        if let Params::Bcrypt { sha256_hex, .. } = self.params {
            let inner = self.stored.find("$2").map_or("", |i| &self.stored[i..]);
            return compute::bcrypt_inner(password, sha256_hex, inner);
        }
        compute::digest(&self.params, password.as_bytes())
            .is_some_and(|d| bool::from(d.ct_eq(&self.digest)))
    }

    /// Wraps a weak hash: bcrypt at `cost` over the legacy digest. `None` for a strong format.
    pub fn wrap(&self, cost: u32) -> Option<Wrapped> {
        (self.strength() == Strength::Weak)
            .then(|| Wrapped::new(self.format, self.params.clone(), &self.digest, cost))?
            .ok()
    }
}

/// What a stored credential string is.
#[derive(Debug)]
pub enum Stored {
    /// `$2a$`/`$2b$`/`$2y$`: the core's own bcrypt.
    Bcrypt,
    Legacy(LegacyHash),
    Wrapped(Wrapped),
}

impl Stored {
    /// Classifies a stored string: bcrypt, a wrapped hash, or a self-describing legacy hash.
    pub fn parse(s: &str, limits: &Limits) -> Result<Self, ParseError> {
        if s.len() == 60 && matches!(s.get(..4), Some("$2a$" | "$2b$" | "$2y$")) {
            return Ok(Self::Bcrypt);
        }
        if s.starts_with(WRAP_PREFIX) {
            return Wrapped::parse(s, limits).map(Self::Wrapped);
        }
        LegacyHash::parse(s, None, limits).map(Self::Legacy)
    }

    /// The state name `rehash --status` counts: bcrypt, strong, wrapped or weak.
    pub fn state(&self) -> &'static str {
        match self {
            Self::Bcrypt => "bcrypt",
            Self::Wrapped(_) => "wrapped",
            Self::Legacy(h) if h.strength() == Strength::Strong => "strong",
            Self::Legacy(_) => "weak",
        }
    }

    /// The format's name (`bcrypt` for bcrypt; a wrapped hash names its inner format).
    pub fn format_name(&self) -> &'static str {
        match self {
            Self::Bcrypt => "bcrypt",
            Self::Legacy(h) => h.format().name(),
            Self::Wrapped(w) => w.format().name(),
        }
    }

    /// Whether `password` matches a legacy or wrapped hash (bcrypt is the core's own job).
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Self::Bcrypt => false,
            Self::Legacy(h) => h.verify(password),
            Self::Wrapped(w) => w.verify(password),
        }
    }
}
