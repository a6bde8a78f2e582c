//! Legacy password hashes (see the `credgate-legacy-hash` crate) as the core stores them: an
//! imported legacy string (self-describing; hinted formats carry a `$credgate-legacy$` prefix),
//! or a wrapped one (`$credgate-wrap$`). Verified on the hash pool like bcrypt; the first
//! successful login re-hashes to bcrypt.

use std::sync::OnceLock;

pub use credgate_legacy_hash::{Hint, LegacyHash, Limits, Stored, Strength, Wrapped};

use crate::secret::Password;

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Sets the parameter ceilings once, at start (the `[legacy_hashes]` settings); later calls
/// are ignored. Until then the defaults apply.
pub fn set_limits(limits: Limits) {
    let _ = LIMITS.set(limits);
}

pub fn limits() -> &'static Limits {
    LIMITS.get_or_init(Limits::default)
}

/// Classifies a stored credential string (`Err` for one no format recognises).
pub fn classify(stored: &str) -> Result<Stored, credgate_legacy_hash::ParseError> {
    Stored::parse(stored, limits())
}

/// Whether `password` matches a legacy or wrapped stored string: as typed first (legacy
/// systems hashed the raw bytes), then NFKC-normalized. bcrypt is the hash pool's own job.
pub fn verify(password: &Password, stored: &str) -> bool {
    let Ok(parsed) = classify(stored) else {
        return false;
    };
    if parsed.verify(password.expose()) {
        return true;
    }
    let normalized = password.normalized();
    normalized.as_str() != password.expose() && parsed.verify(&normalized)
}

/// The format name of a stored string, for audits (`unknown` when none matches).
pub fn format_name(stored: &str) -> &'static str {
    classify(stored).map_or("unknown", |s| s.format_name())
}

/// Checks an imported `password_hash` (bcrypt, a wrapped hash, or a legacy format) and returns
/// the string to store. The error says why, never quoting the hash.
pub fn importable(hash: &str) -> Result<String, String> {
    if hash.starts_with("$2") {
        crate::hasher::importable_hash(hash).map_err(str::to_owned)?;
        return Ok(hash.to_owned());
    }
    match classify(hash).map_err(|e| e.to_string())? {
        Stored::Bcrypt | Stored::Wrapped(_) => Ok(hash.to_owned()),
        Stored::Legacy(h) => Ok(h.stored().to_owned()),
    }
}

/// The stored form of a hash in a format named by `password_hash_format`.
pub fn with_hint(hash: &str, hint: &str) -> Result<String, String> {
    let hint = Hint::parse(hint).map_err(|e| e.to_string())?;
    LegacyHash::parse(hash, Some(hint), limits())
        .map(|h| h.stored().to_owned())
        .map_err(|e| e.to_string())
}

/// The wrapped form of a weak legacy stored string at bcrypt `cost`; `None` for anything else.
pub fn wrap(stored: &str, cost: u32) -> Option<String> {
    match classify(stored).ok()? {
        Stored::Legacy(h) => h.wrap(cost).map(|w| w.to_stored()),
        _ => None,
    }
}
