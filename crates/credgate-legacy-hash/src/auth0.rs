//! Auth0's `custom_password_hash` object (bulk user import schema), for the algorithms that
//! are not a self-describing string: md4, md5, sha1, sha256, sha512 and hmac (a digest of the
//! salted password, its digest one of those or sha224, sha384, ripemd160, whirlpool), pbkdf2 (Auth0's PHC-like `$pbkdf2-sha512$i=..,l=..$salt$hash`) and scrypt.
//! bcrypt, argon2 and ldap hold a string the other parsers read (the import maps them). The
//! stored form is `$credgate-legacy$auth0$` and the object's compact JSON.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::parse::build;
use crate::{b64, Digest, Format, LegacyHash, Limits, Params, ParseError};

fn bad(why: impl Into<String>) -> ParseError {
    ParseError::new(why)
}

/// The digests Auth0 names for its plain and hmac algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Auth0Digest {
    Md4,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Ripemd160,
    Whirlpool,
}

/// How the password's characters become bytes (Node.js `Buffer` encodings, as Auth0 uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PwEncoding {
    Utf8,
    Utf16le,
    /// `latin1`, `binary` and `ascii`: the low byte of each UTF-16 code unit.
    Latin1,
}

/// `H(salt ‖ password)` or `H(password ‖ salt)`, or the same under HMAC with `key`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Auth0Params {
    digest: Auth0Digest,
    #[serde(with = "hex")]
    salt: Vec<u8>,
    salt_prefix: bool,
    password: PwEncoding,
    #[serde(default, with = "hex", skip_serializing_if = "Vec::is_empty")]
    hmac_key: Vec<u8>,
    hmac: bool,
}

impl Auth0Digest {
    /// The digests Auth0 takes as an `algorithm` of their own; hmac takes them all.
    const PLAIN: [Self; 5] = [Self::Md4, Self::Md5, Self::Sha1, Self::Sha256, Self::Sha512];
}

impl PwEncoding {
    fn parse(name: &str) -> Result<Self, ParseError> {
        match name {
            "utf8" | "utf-8" => Ok(Self::Utf8),
            "utf16le" | "ucs2" | "ucs-2" | "utf-16le" => Ok(Self::Utf16le),
            "latin1" | "binary" | "ascii" => Ok(Self::Latin1),
            _ => Err(bad("unknown custom_password_hash password.encoding")),
        }
    }

    pub(crate) fn bytes(self, pw: &str) -> Vec<u8> {
        match self {
            Self::Utf8 => pw.as_bytes().to_vec(),
            Self::Utf16le => pw.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Self::Latin1 => pw.encode_utf16().map(|u| (u & 0xff) as u8).collect(),
        }
    }
}

fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = D::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

fn mac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut m) = <M as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

impl Auth0Params {
    pub(crate) fn digest(&self, pw: &str) -> Vec<u8> {
        let pw = self.password.bytes(pw);
        let parts: [&[u8]; 2] = if self.salt_prefix {
            [&self.salt, &pw]
        } else {
            [&pw, &self.salt]
        };
        use Auth0Digest::*;
        if self.hmac {
            let k = &self.hmac_key;
            return match self.digest {
                Md4 => mac::<Hmac<md4::Md4>>(k, &parts),
                Md5 => mac::<Hmac<md5::Md5>>(k, &parts),
                Sha1 => mac::<Hmac<sha1::Sha1>>(k, &parts),
                Sha224 => mac::<Hmac<sha2::Sha224>>(k, &parts),
                Sha256 => mac::<Hmac<sha2::Sha256>>(k, &parts),
                Sha384 => mac::<Hmac<sha2::Sha384>>(k, &parts),
                Sha512 => mac::<Hmac<sha2::Sha512>>(k, &parts),
                Ripemd160 => mac::<Hmac<ripemd::Ripemd160>>(k, &parts),
                Whirlpool => mac::<Hmac<whirlpool::Whirlpool>>(k, &parts),
            };
        }
        match self.digest {
            Md4 => run::<md4::Md4>(&parts),
            Md5 => run::<md5::Md5>(&parts),
            Sha1 => run::<sha1::Sha1>(&parts),
            Sha224 => run::<sha2::Sha224>(&parts),
            Sha256 => run::<sha2::Sha256>(&parts),
            Sha384 => run::<sha2::Sha384>(&parts),
            Sha512 => run::<sha2::Sha512>(&parts),
            Ripemd160 => run::<ripemd::Ripemd160>(&parts),
            Whirlpool => run::<whirlpool::Whirlpool>(&parts),
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Decodes a `{value, encoding}` pair (`utf8` when no encoding is named, else `default`).
fn decode(v: &Value, what: &str, default: &str) -> Result<Vec<u8>, ParseError> {
    let Some(value) = str_at(v, &["value"]) else {
        return Err(bad(format!("custom_password_hash {what}.value is missing")));
    };
    let enc = str_at(v, &["encoding"]).unwrap_or(default);
    match enc {
        "utf8" => Ok(value.as_bytes().to_vec()),
        "hex" => hex::decode(value).map_err(|_| bad(format!("{what}.value is not valid hex"))),
        "base64" => b64::std(value, &format!("{what}.value")),
        _ => Err(bad(format!(
            "unknown custom_password_hash {what}.encoding (known: utf8, hex, base64)"
        ))),
    }
}

pub fn parse(json: &str, stored: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let v: Value =
        serde_json::from_str(json).map_err(|_| bad("custom_password_hash is not a JSON object"))?;
    let alg = str_at(&v, &["algorithm"])
        .ok_or_else(|| bad("custom_password_hash.algorithm is missing"))?;
    let hash = v
        .get("hash")
        .ok_or_else(|| bad("custom_password_hash.hash is missing"))?;
    match alg {
        "pbkdf2" => return pbkdf2(hash, stored, limits),
        "scrypt" => return scrypt(&v, hash, stored, limits),
        "bcrypt" | "argon2" | "ldap" => {
            return Err(bad(format!(
                "an Auth0 {alg} hash is imported as its hash.value string"
            )))
        }
        _ => {}
    }
    let (digest, hmac) = match alg {
        "hmac" => (
            str_at(hash, &["digest"])
                .ok_or_else(|| bad("custom_password_hash hash.digest is missing"))?,
            true,
        ),
        other => (other, false),
    };
    let digest: Auth0Digest = serde_json::from_value(Value::String(digest.into()))
        .ok()
        .filter(|d| hmac || Auth0Digest::PLAIN.contains(d))
        .ok_or_else(|| bad("unknown custom_password_hash algorithm or digest"))?;
    let raw = decode(hash, "hash", "hex")?;
    let (salt, salt_prefix) = match v.get("salt") {
        Some(s) => (
            decode(s, "salt", "utf8")?,
            str_at(s, &["position"]).unwrap_or("prefix") == "prefix",
        ),
        None => (Vec::new(), true),
    };
    let hmac_key = match (hmac, hash.get("key")) {
        (true, Some(k)) => decode(k, "hash.key", "utf8")?,
        (true, None) => return Err(bad("custom_password_hash hash.key is missing")),
        (false, _) => Vec::new(),
    };
    let password = PwEncoding::parse(str_at(&v, &["password", "encoding"]).unwrap_or("utf8"))?;
    if salt.len() > 1024 || hmac_key.len() > 1024 {
        return Err(bad("custom_password_hash salt or key is longer than 1 KiB"));
    }
    let params = Auth0Params {
        digest,
        salt,
        salt_prefix,
        password,
        hmac_key,
        hmac,
    };
    if params.digest("").len() != raw.len() {
        return Err(bad("custom_password_hash hash.value has the wrong length"));
    }
    let format = if hmac {
        Format::Auth0Hmac
    } else {
        Format::Auth0Digest
    };
    build(format, Params::Auth0(params), raw, stored, limits)
}

/// `$pbkdf2-<digest>$i=<iterations>,l=<length>$<B64 salt>$<B64 hash>` (B64: base64, unpadded).
fn pbkdf2(hash: &Value, stored: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let value = str_at(hash, &["value"])
        .ok_or_else(|| bad("custom_password_hash hash.value is missing"))?;
    let parts: Vec<&str> = value.split('$').collect();
    let ["", tag, params, salt, digest] = parts[..] else {
        return Err(bad(
            "an Auth0 pbkdf2 hash.value must be $pbkdf2-DIGEST$i=..,l=..$salt$hash",
        ));
    };
    let prf = match tag {
        "pbkdf2-sha1" | "pbkdf2" => Digest::Sha1,
        "pbkdf2-sha256" => Digest::Sha256,
        "pbkdf2-sha384" => Digest::Sha384,
        "pbkdf2-sha512" => Digest::Sha512,
        "pbkdf2-md5" => Digest::Md5,
        _ => return Err(bad("unknown Auth0 pbkdf2 digest")),
    };
    let mut iterations = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("i", n)) => iterations = n.parse::<u32>().ok(),
            Some(("l", _)) => {}
            _ => return Err(bad("Auth0 pbkdf2 parameters must be i=..,l=..")),
        }
    }
    let iterations = iterations.ok_or_else(|| bad("Auth0 pbkdf2 i= is missing or not a number"))?;
    let salt = b64::std(salt, "the Auth0 pbkdf2 salt")?;
    let digest = b64::std(digest, "the Auth0 pbkdf2 hash")?;
    let params = Params::Pbkdf2 {
        prf,
        iterations,
        salt,
        len: digest.len(),
    };
    build(Format::Auth0Pbkdf2, params, digest, stored, limits)
}

/// scrypt: `hash`, `salt` (a parameter, no position), `keylen`, `cost`, `blockSize`,
/// `parallelization` (Auth0's defaults: 64, 16384, 8, 1).
fn scrypt(
    v: &Value,
    hash: &Value,
    stored: &str,
    limits: &Limits,
) -> Result<LegacyHash, ParseError> {
    let digest = decode(hash, "hash", "hex")?;
    let salt = v
        .get("salt")
        .map(|s| decode(s, "salt", "utf8"))
        .transpose()?
        .ok_or_else(|| bad("an Auth0 scrypt hash needs a salt"))?;
    let num = |k: &str, default: u64| v.get(k).map_or(Some(default), Value::as_u64);
    let (Some(keylen), Some(cost), Some(r), Some(p)) = (
        num("keylen", 64),
        num("cost", 16384),
        num("blockSize", 8),
        num("parallelization", 1),
    ) else {
        return Err(bad("Auth0 scrypt parameters must be numbers"));
    };
    if !cost.is_power_of_two() || keylen as usize != digest.len() || r > 1024 || p > 1024 {
        return Err(bad(
            "impossible Auth0 scrypt parameters (cost a power of two, keylen the hash length)",
        ));
    }
    let params = Params::Scrypt {
        log_n: cost.trailing_zeros() as u8,
        r: r as u32,
        p: p as u32,
        salt,
        len: digest.len(),
    };
    build(Format::Auth0Scrypt, params, digest, stored, limits)
}
