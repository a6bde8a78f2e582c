//! Wrapped hashes (OWASP, "upgrading legacy hashes"): bcrypt over the legacy digest, so a weak
//! digest is stored nowhere, while the password still verifies by computing the legacy digest
//! first.
//!
//! Stored form: `$credgate-wrap$1$FORMAT$PARAMS$BCRYPT` where FORMAT names the inner format,
//! PARAMS is the unpadded base64url of a JSON object holding its salt and parameters (salts in
//! hex; never the digest), and BCRYPT is bcrypt over the unpadded standard base64 of
//! SHA-384(legacy digest) (64 characters, within bcrypt's 72 bytes, no NUL bytes).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest as _, Sha384};

use crate::{compute, Format, Limits, Params, ParseError};

pub const WRAP_PREFIX: &str = "$credgate-wrap$1$";

#[derive(Clone)]
pub struct Wrapped {
    format: Format,
    params: Params,
    bcrypt: String,
}

impl std::fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wrapped")
            .field("format", &self.format.name())
            .finish_non_exhaustive()
    }
}

fn bcrypt_input(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha384::digest(digest))
}

impl Wrapped {
    pub(crate) fn new(
        format: Format,
        params: Params,
        digest: &[u8],
        cost: u32,
    ) -> Result<Self, ParseError> {
        let bcrypt = bcrypt::hash(bcrypt_input(digest), cost)
            .map_err(|_| ParseError::new("bcrypt failed"))?;
        Ok(Self {
            format,
            params,
            bcrypt,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The bcrypt cost of the wrapper.
    pub fn cost(&self) -> Option<u32> {
        self.bcrypt.get(4..6)?.parse().ok()
    }

    pub fn parse(s: &str, limits: &Limits) -> Result<Self, ParseError> {
        let bad = || ParseError::new("malformed $credgate-wrap$ hash");
        let rest = s.strip_prefix(WRAP_PREFIX).ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '$');
        let (format, params, bcrypt) = (
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
        );
        let format: Format =
            serde_json::from_value(serde_json::Value::String(format.into())).map_err(|_| bad())?;
        let json = URL_SAFE_NO_PAD.decode(params).map_err(|_| bad())?;
        let params: Params = serde_json::from_slice(&json).map_err(|_| bad())?;
        let bcrypt = format!("${bcrypt}");
        let cost = bcrypt.get(4..6).and_then(|c| c.parse::<u32>().ok());
        if matches!(params, Params::Bcrypt { .. })
            || bcrypt.len() != 60
            || !cost.is_some_and(|c| (4..=31).contains(&c))
        {
            return Err(bad());
        }
        limits.check(&params)?;
        Ok(Self {
            format,
            params,
            bcrypt,
        })
    }

    /// The stored string.
    pub fn to_stored(&self) -> String {
        let json = serde_json::to_vec(&self.params).unwrap_or_default();
        format!(
            "{WRAP_PREFIX}{}${}{}",
            self.format.name(),
            URL_SAFE_NO_PAD.encode(json),
            self.bcrypt
        )
    }

    /// Computes the legacy digest of `password`, then checks bcrypt over it.
    pub fn verify(&self, password: &str) -> bool {
        compute::digest(&self.params, password.as_bytes())
            .is_some_and(|d| bcrypt::verify(bcrypt_input(&d), &self.bcrypt).unwrap_or(false))
    }
}
