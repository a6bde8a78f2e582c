//! Parsing of every format's string into a [`LegacyHash`]. Messages never quote the hash.

use crate::b64;
use crate::crypt::crypt64_value;
use crate::{
    Argon2Variant, Digest, Format, Hint, LegacyHash, Limits, Params, ParseError, LEGACY_PREFIX,
};

fn bad(why: impl Into<String>) -> ParseError {
    ParseError::new(why)
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ParseError> {
    s.parse()
        .map_err(|_| bad(format!("{what} is not a number in range")))
}

pub(crate) fn build(
    format: Format,
    params: Params,
    digest: Vec<u8>,
    stored: &str,
    limits: &Limits,
) -> Result<LegacyHash, ParseError> {
    limits.check(&params)?;
    Ok(LegacyHash {
        format,
        params,
        digest,
        stored: stored.to_owned(),
    })
}

pub fn parse(s: &str, hint: Option<Hint>, limits: &Limits) -> Result<LegacyHash, ParseError> {
    if let Some(rest) = s.strip_prefix(LEGACY_PREFIX) {
        let (name, original) = rest
            .split_once('$')
            .ok_or_else(|| bad("a $credgate-legacy$ hash lacks its format"))?;
        let mut h = hinted(original, Hint::parse(name)?, limits)?;
        s.clone_into(&mut h.stored);
        return Ok(h);
    }
    if let Some(hint) = hint {
        let mut h = hinted(s, hint, limits)?;
        h.stored = format!("{LEGACY_PREFIX}{}${s}", hint.name());
        return Ok(h);
    }
    if s.starts_with("$2") {
        return Err(bad("not a bcrypt hash the gateway verifies: it must start with $2a$, $2b$ or $2y$, 60 characters, cost 04 to 31"));
    }
    if crate::spring::is_spring(s) {
        return crate::spring::parse(s, limits);
    }
    if let Some(inner) = strip_ci(s, "{CRYPT}") {
        let mut h = crypt_or_bcrypt(inner, s, limits)?;
        s.clone_into(&mut h.stored);
        return Ok(h);
    }
    if s.starts_with('{') {
        return ldap(s, limits);
    }
    if s.starts_with("$argon2") {
        return argon2(s, None, limits);
    }
    if s.starts_with("$scrypt$") {
        return scrypt(s, limits);
    }
    if s.starts_with("$pbkdf2") {
        return passlib_pbkdf2(s, limits);
    }
    if s.starts_with('$') {
        return crypt(s, limits);
    }
    django(s, limits)
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

const UNKNOWN: &str = "unknown hash format (not bcrypt, PHC, crypt(3), phpass, Django or LDAP; \
    ASP.NET Identity and Crafter hashes need password_hash_format)";

/// `$argon2id$v=19$m=..,t=..,p=..$salt$hash` (PHC; Django's `argon2$` keeps it after its tag).
pub(crate) fn argon2(
    s: &str,
    django: Option<&str>,
    limits: &Limits,
) -> Result<LegacyHash, ParseError> {
    let parts: Vec<&str> = s.split('$').collect();
    let (variant, format) = match parts.get(1).copied() {
        Some("argon2id") => (Argon2Variant::Argon2id, Format::Argon2id),
        Some("argon2i") => (Argon2Variant::Argon2i, Format::Argon2i),
        Some("argon2d") => (Argon2Variant::Argon2d, Format::Argon2d),
        _ => return Err(bad("unknown argon2 variant")),
    };
    let (version, rest) = match parts.get(2).and_then(|v| v.strip_prefix("v=")) {
        Some(v) => (num::<u32>(v, "argon2 version")?, &parts[3..]),
        None => (0x10, &parts[2..]),
    };
    let [params, salt, hash] = rest else {
        return Err(bad(
            "an argon2 hash must be $variant$v=..$m=..,t=..,p=..$salt$hash",
        ));
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = Some(num::<u32>(v, "argon2 m")?),
            Some(("t", v)) => t = Some(num::<u32>(v, "argon2 t")?),
            Some(("p", v)) => p = Some(num::<u32>(v, "argon2 p")?),
            _ => return Err(bad("argon2 parameters must be m=..,t=..,p=..")),
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(bad("argon2 parameters must be m=..,t=..,p=.."));
    };
    let salt = b64::std(salt, "argon2 salt")?;
    let digest = b64::std(hash, "argon2 hash")?;
    if !(version == 0x10 || version == 0x13) || salt.len() < 8 || !(4..=128).contains(&digest.len())
    {
        return Err(bad(
            "impossible argon2 parameters (version, salt or hash length)",
        ));
    }
    let params = Params::Argon2 {
        variant,
        version,
        m,
        t,
        p,
        salt,
        len: digest.len(),
    };
    let format = if django.is_some() {
        Format::DjangoArgon2
    } else {
        format
    };
    build(format, params, digest, django.unwrap_or(s), limits)
}

/// passlib's `$scrypt$ln=..,r=..,p=..$salt$hash`.
fn scrypt(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let parts: Vec<&str> = s.split('$').collect();
    let [_, _, params, salt, hash] = parts[..] else {
        return Err(bad(
            "an scrypt hash must be $scrypt$ln=..,r=..,p=..$salt$hash",
        ));
    };
    let (mut ln, mut r, mut p) = (None, None, None);
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("ln", v)) => ln = Some(num::<u8>(v, "scrypt ln")?),
            Some(("r", v)) => r = Some(num::<u32>(v, "scrypt r")?),
            Some(("p", v)) => p = Some(num::<u32>(v, "scrypt p")?),
            _ => return Err(bad("scrypt parameters must be ln=..,r=..,p=..")),
        }
    }
    let (Some(log_n), Some(r), Some(p)) = (ln, r, p) else {
        return Err(bad("scrypt parameters must be ln=..,r=..,p=.."));
    };
    let salt = b64::std(salt, "scrypt salt")?;
    let digest = b64::std(hash, "scrypt hash")?;
    if !(1..=128).contains(&digest.len()) {
        return Err(bad("impossible scrypt hash length"));
    }
    let len = digest.len();
    let params = Params::Scrypt {
        log_n,
        r,
        p,
        salt,
        len,
    };
    build(Format::Scrypt, params, digest, s, limits)
}

/// passlib's `$pbkdf2$`, `$pbkdf2-sha256$`, `$pbkdf2-sha512$`: rounds, ab64 salt and hash.
fn passlib_pbkdf2(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let parts: Vec<&str> = s.split('$').collect();
    let [_, tag, rounds, salt, hash] = parts[..] else {
        return Err(bad(
            "a passlib pbkdf2 hash must be $pbkdf2-*$rounds$salt$hash",
        ));
    };
    let (prf, format) = match tag {
        "pbkdf2" => (Digest::Sha1, Format::Pbkdf2Sha1),
        "pbkdf2-sha256" => (Digest::Sha256, Format::Pbkdf2Sha256),
        "pbkdf2-sha512" => (Digest::Sha512, Format::Pbkdf2Sha512),
        _ => return Err(bad("unknown passlib pbkdf2 variant")),
    };
    let digest = b64::ab64(hash, "pbkdf2 hash")?;
    let params = Params::Pbkdf2 {
        prf,
        iterations: num(rounds, "pbkdf2 rounds")?,
        salt: b64::ab64(salt, "pbkdf2 salt")?,
        len: digest.len(),
    };
    build(format, params, digest, s, limits)
}

/// `{CRYPT}` holds a crypt(3) string, bcrypt's `$2a$`/`$2b$`/`$2y$` included.
fn crypt_or_bcrypt(inner: &str, s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    if !inner.starts_with("$2") {
        return crypt(inner, limits);
    }
    let cost = inner.get(4..6).and_then(|c| c.parse::<u32>().ok());
    let ok = inner.len() == 60 && matches!(inner.get(..4), Some("$2a$" | "$2b$" | "$2y$"));
    let Some(cost) = cost.filter(|_| ok) else {
        return Err(bad(
            "a {CRYPT} bcrypt hash must be a 60-character $2a$, $2b$ or $2y$ string",
        ));
    };
    let params = Params::Bcrypt {
        sha256_hex: false,
        cost,
    };
    build(Format::CryptBcrypt, params, Vec::new(), s, limits)
}

/// crypt(3): `$1$` md5-crypt, `$5$`/`$6$` sha-crypt (optional `rounds=`), `$P$`/`$H$` phpass.
fn crypt(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    if s.starts_with("$P$") || s.starts_with("$H$") {
        return phpass(s, limits);
    }
    let parts: Vec<&str> = s.split('$').collect();
    match parts.get(1).copied() {
        Some("1") => {
            let [_, _, salt, hash] = parts[..] else {
                return Err(bad("an md5-crypt hash must be $1$salt$hash"));
            };
            if salt.len() > 8
                || !b64::is_crypt64(salt)
                || hash.len() != 22
                || !b64::is_crypt64(hash)
            {
                return Err(bad(
                    "an md5-crypt hash has a salt of at most 8 and a hash of 22 crypt64 characters",
                ));
            }
            let params = Params::Md5Crypt { salt: salt.into() };
            build(Format::Md5Crypt, params, hash.into(), s, limits)
        }
        Some(id @ ("5" | "6")) => sha_crypt(id, &parts[2..], s, limits),
        _ => Err(bad(UNKNOWN)),
    }
}

fn sha_crypt(id: &str, rest: &[&str], s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let (rounds, rest) = match rest.first().and_then(|r| r.strip_prefix("rounds=")) {
        // glibc clamps the rounds into 1,000..=999,999,999.
        Some(r) => (num::<u32>(r, "sha-crypt rounds")?.max(1000), &rest[1..]),
        None => (5000, rest),
    };
    let [salt, hash] = rest else {
        return Err(bad(
            "a sha-crypt hash must be $5$ or $6$, [rounds=N$], salt$hash",
        ));
    };
    let (bits, len, format) = match id {
        "5" => (256, 43, Format::Sha256Crypt),
        _ => (512, 86, Format::Sha512Crypt),
    };
    if salt.len() > 16 || hash.len() != len || !b64::is_crypt64(hash) {
        return Err(bad(format!(
            "a sha-crypt hash has a salt of at most 16 characters and a hash of {len} crypt64 characters"
        )));
    }
    let params = Params::ShaCrypt {
        bits,
        rounds,
        salt: (*salt).into(),
    };
    build(format, params, hash.as_bytes().to_vec(), s, limits)
}

fn phpass(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let count = s.as_bytes().get(3).copied().and_then(crypt64_value);
    let (Some(count_log2), 34, true) = (count, s.len(), b64::is_crypt64(&s[3..])) else {
        return Err(bad("a phpass hash is 34 characters: $P$ or $H$, a count, 8 salt and 22 hash characters of crypt64"));
    };
    if !(7..=30).contains(&count_log2) {
        return Err(bad("impossible phpass count (it must be 7 to 30)"));
    }
    let params = Params::Phpass {
        count_log2,
        salt: s[4..12].into(),
    };
    build(Format::Phpass, params, s[12..].into(), s, limits)
}

/// Django's `algorithm$...` strings.
fn django(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let (tag, rest) = s.split_once('$').ok_or_else(|| bad(UNKNOWN))?;
    match tag {
        "pbkdf2_sha256" | "pbkdf2_sha1" => {
            let [iterations, salt, hash] = rest.split('$').collect::<Vec<_>>()[..] else {
                return Err(bad(
                    "a Django pbkdf2 hash must be pbkdf2_*$iterations$salt$hash",
                ));
            };
            let (prf, format) = if tag == "pbkdf2_sha256" {
                (Digest::Sha256, Format::DjangoPbkdf2Sha256)
            } else {
                (Digest::Sha1, Format::DjangoPbkdf2Sha1)
            };
            let digest = b64::std(hash, "Django pbkdf2 hash")?;
            let params = Params::Pbkdf2 {
                prf,
                iterations: num(iterations, "Django pbkdf2 iterations")?,
                salt: salt.as_bytes().to_vec(),
                len: digest.len(),
            };
            build(format, params, digest, s, limits)
        }
        "argon2" => argon2(&format!("${rest}"), Some(s), limits),
        "bcrypt_sha256" | "bcrypt" => {
            let cost = rest.get(4..6).and_then(|c| c.parse::<u32>().ok());
            let ok = rest.len() == 60 && matches!(rest.get(..4), Some("$2a$" | "$2b$" | "$2y$"));
            let Some(cost) = cost.filter(|_| ok) else {
                return Err(bad(
                    "a Django bcrypt hash must hold a 60-character bcrypt string",
                ));
            };
            let sha256_hex = tag == "bcrypt_sha256";
            let format = if sha256_hex {
                Format::DjangoBcryptSha256
            } else {
                Format::DjangoBcrypt
            };
            let params = Params::Bcrypt { sha256_hex, cost };
            build(format, params, Vec::new(), s, limits)
        }
        "sha1" | "md5" => {
            let (salt, hash) = rest.split_once('$').ok_or_else(|| bad(UNKNOWN))?;
            let (digest, format, len) = if tag == "sha1" {
                (Digest::Sha1, Format::DjangoSha1, 20)
            } else {
                (Digest::Md5, Format::DjangoMd5, 16)
            };
            let hash = hex::decode(hash)
                .ok()
                .filter(|h| h.len() == len)
                .ok_or_else(|| {
                    bad(format!(
                        "a Django {tag} hash must end in {} hex digits",
                        2 * len
                    ))
                })?;
            let params = Params::Salted {
                digest,
                salt: salt.as_bytes().to_vec(),
                salt_first: true,
            };
            build(format, params, hash, s, limits)
        }
        _ => Err(bad(UNKNOWN)),
    }
}

/// LDAP `{SCHEME}base64`: salted schemes append the salt to the digest.
pub(crate) fn ldap(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let end = s.find('}').ok_or_else(|| bad(UNKNOWN))?;
    let scheme = s[1..end].to_ascii_uppercase();
    let (format, digest, salted) = match scheme.as_str() {
        "SSHA" => (Format::LdapSsha, Digest::Sha1, true),
        "SSHA256" => (Format::LdapSsha256, Digest::Sha256, true),
        "SSHA384" => (Format::LdapSsha384, Digest::Sha384, true),
        "SSHA512" => (Format::LdapSsha512, Digest::Sha512, true),
        "SMD5" => (Format::LdapSmd5, Digest::Md5, true),
        "SHA" => (Format::LdapSha, Digest::Sha1, false),
        "SHA256" => (Format::LdapSha256, Digest::Sha256, false),
        "SHA512" => (Format::LdapSha512, Digest::Sha512, false),
        "MD5" => (Format::LdapMd5, Digest::Md5, false),
        _ => return Err(bad("unknown LDAP scheme")),
    };
    let len = digest.output_len();
    let mut raw = b64::std(&s[end + 1..], "the LDAP value")?;
    let fits = if salted {
        raw.len() > len && raw.len() <= len + 64
    } else {
        raw.len() == len
    };
    if !fits {
        return Err(bad(format!(
            "an LDAP {{{scheme}}} value has the wrong length"
        )));
    }
    let salt = raw.split_off(len);
    let params = Params::Salted {
        digest,
        salt,
        salt_first: false,
    };
    build(format, params, raw, s, limits)
}

/// Formats named by `password_hash_format`.
fn hinted(s: &str, hint: Hint, limits: &Limits) -> Result<LegacyHash, ParseError> {
    match hint {
        Hint::AspnetIdentity => aspnet(s, limits),
        Hint::Auth0 => crate::auth0::parse(s, s, limits),
        Hint::Crafter => {
            let (hash, salt) = s
                .split_once('|')
                .ok_or_else(|| bad("a Crafter hash must be base64(hash)|base64(salt)"))?;
            let digest = b64::std(hash, "the Crafter hash")?;
            let salt = b64::std(salt, "the Crafter salt")?;
            if digest.len() != 32 || salt.is_empty() || salt.len() > 64 {
                return Err(bad(
                    "a Crafter hash is a 32-byte SHA-256 and a salt of 1 to 64 bytes",
                ));
            }
            let params = Params::Crafter {
                iterations: 1000,
                salt,
            };
            build(Format::Crafter, params, digest, s, limits)
        }
    }
}

/// ASP.NET Identity: v2 `0x00 ‖ salt(16) ‖ subkey(32)`, PBKDF2-HMAC-SHA1, 1,000 iterations;
/// v3 `0x01 ‖ prf ‖ iterations ‖ salt length` (big-endian u32s) `‖ salt ‖ subkey`.
fn aspnet(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let raw = b64::std(s, "the ASP.NET Identity hash")?;
    let be = |i: usize| {
        raw.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match raw.first() {
        Some(0) if raw.len() == 49 => {
            let params = Params::Pbkdf2 {
                prf: Digest::Sha1,
                iterations: 1000,
                salt: raw[1..17].to_vec(),
                len: 32,
            };
            build(
                Format::AspnetIdentityV2,
                params,
                raw[17..].to_vec(),
                s,
                limits,
            )
        }
        Some(1) => {
            let (Some(prf), Some(iterations), Some(salt_len)) = (be(1), be(5), be(9)) else {
                return Err(bad("an ASP.NET Identity v3 hash is too short"));
            };
            let prf = match prf {
                0 => Digest::Sha1,
                1 => Digest::Sha256,
                2 => Digest::Sha512,
                _ => return Err(bad("unknown ASP.NET Identity v3 PRF")),
            };
            let salt_end = 13usize.saturating_add(salt_len as usize);
            if salt_len < 16 || raw.len() < salt_end.saturating_add(16) {
                return Err(bad(
                    "an ASP.NET Identity v3 hash needs a salt and a subkey of at least 16 bytes",
                ));
            }
            let params = Params::Pbkdf2 {
                prf,
                iterations,
                salt: raw[13..salt_end].to_vec(),
                len: raw.len() - salt_end,
            };
            build(
                Format::AspnetIdentityV3,
                params,
                raw[salt_end..].to_vec(),
                s,
                limits,
            )
        }
        _ => Err(bad(
            "not an ASP.NET Identity v2 or v3 hash (its first byte tells the version)",
        )),
    }
}
