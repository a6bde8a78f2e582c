//! Spring Security's `{id}` prefixes (`DelegatingPasswordEncoder`), as `PasswordEncoderFactories`
//! maps them. Encoders configured with a non-empty secret (pepper) cannot be verified: the secret
//! is not in the string. Messages never quote the hash.

use crate::b64;
use crate::parse::{argon2, build};
use crate::{Digest, Format, LegacyHash, Limits, Params, ParseError};

fn bad(why: impl Into<String>) -> ParseError {
    ParseError::new(why)
}

/// The Spring ids this module reads (`{noop}` is handled by the import itself).
pub fn is_spring(s: &str) -> bool {
    let Some(end) = s.find('}') else {
        return false;
    };
    match &s[..=end] {
        "{bcrypt}"
        | "{pbkdf2}"
        | "{pbkdf2@SpringSecurity_v5_8}"
        | "{scrypt}"
        | "{scrypt@SpringSecurity_v5_8}"
        | "{argon2}"
        | "{argon2@SpringSecurity_v5_8}"
        | "{SHA-1}"
        | "{SHA-256}"
        | "{MD4}"
        | "{ldap}" => true,
        // `{sha256}` and `{MD5}` are also LDAP schemes: Spring's values are hex.
        "{sha256}" | "{MD5}" => spring_digest_shape(&s[end + 1..]),
        _ => false,
    }
}

/// `[{salt}]hex` (MessageDigestPasswordEncoder) or plain hex (StandardPasswordEncoder).
fn spring_digest_shape(rest: &str) -> bool {
    let hex = match rest.strip_prefix('{') {
        Some(r) => r.split_once('}').map_or("", |(_, h)| h),
        None => rest,
    };
    matches!(hex.len(), 32 | 80) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn parse(s: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let end = s
        .find('}')
        .ok_or_else(|| bad("unknown Spring Security id"))?;
    let (id, rest) = (&s[..=end], &s[end + 1..]);
    match id {
        "{bcrypt}" => {
            let cost = rest.get(4..6).and_then(|c| c.parse::<u32>().ok());
            let ok = rest.len() == 60 && matches!(rest.get(..4), Some("$2a$" | "$2b$" | "$2y$"));
            let Some(cost) = cost.filter(|_| ok) else {
                return Err(bad(
                    "a Spring {bcrypt} hash must hold a 60-character bcrypt string",
                ));
            };
            let params = Params::Bcrypt {
                sha256_hex: false,
                cost,
            };
            build(Format::SpringBcrypt, params, Vec::new(), s, limits)
        }
        "{pbkdf2}" => pbkdf2(s, rest, (8, 185_000, Digest::Sha1), limits),
        "{pbkdf2@SpringSecurity_v5_8}" => pbkdf2(s, rest, (16, 310_000, Digest::Sha256), limits),
        "{scrypt}" | "{scrypt@SpringSecurity_v5_8}" => scrypt(s, rest, limits),
        "{argon2}" | "{argon2@SpringSecurity_v5_8}" => {
            let mut h = argon2(rest, None, limits)?;
            s.clone_into(&mut h.stored);
            Ok(h)
        }
        "{sha256}" => {
            let raw = hex::decode(rest)
                .ok()
                .filter(|r| r.len() == 40)
                .ok_or_else(|| bad("a Spring {sha256} hash is 80 hex digits (salt and digest)"))?;
            // StandardPasswordEncoder: SHA-256 of salt ‖ password, 1,024 times in all.
            let params = Params::Crafter {
                iterations: 1023,
                salt: raw[..8].to_vec(),
            };
            build(Format::SpringSha256, params, raw[8..].to_vec(), s, limits)
        }
        "{SHA-1}" => digest(s, rest, Digest::Sha1, Format::SpringSha1, limits),
        "{SHA-256}" => digest(s, rest, Digest::Sha256, Format::SpringSha256Digest, limits),
        "{MD5}" => digest(s, rest, Digest::Md5, Format::SpringMd5, limits),
        "{MD4}" => digest(s, rest, Digest::Md4, Format::SpringMd4, limits),
        "{ldap}" => ldap_sha(s, rest, limits),
        _ => Err(bad("unknown Spring Security id")),
    }
}

/// Pbkdf2PasswordEncoder: hex (or base64) of salt ‖ hash; the salt length, iterations and PRF
/// are the encoder's defaults for the id (the hash is 256 bits in both).
fn pbkdf2(
    s: &str,
    rest: &str,
    (salt_len, iterations, prf): (usize, u32, Digest),
    limits: &Limits,
) -> Result<LegacyHash, ParseError> {
    let total = salt_len + 32;
    let raw = if rest.len() == 2 * total {
        hex::decode(rest).ok()
    } else {
        b64::std(rest, "the Spring pbkdf2 value").ok()
    }
    .filter(|r| r.len() == total)
    .ok_or_else(|| {
        bad(format!(
            "a Spring pbkdf2 value is hex or base64 of a {salt_len}-byte salt and a 32-byte hash"
        ))
    })?;
    let params = Params::Pbkdf2 {
        prf,
        iterations,
        salt: raw[..salt_len].to_vec(),
        len: 32,
    };
    build(
        Format::SpringPbkdf2,
        params,
        raw[salt_len..].to_vec(),
        s,
        limits,
    )
}

/// SCryptPasswordEncoder: `$hex(log2 N << 16 | r << 8 | p)$base64 salt$base64 key`.
fn scrypt(s: &str, rest: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let parts: Vec<&str> = rest.split('$').collect();
    let ["", params, salt, key] = parts[..] else {
        return Err(bad("a Spring {scrypt} hash must be $params$salt$key"));
    };
    let packed = u64::from_str_radix(params, 16)
        .ok()
        .filter(|p| *p <= 0xff_ffff)
        .ok_or_else(|| bad("the Spring scrypt parameters are not a hex number in range"))?;
    let salt = b64::std(salt, "the Spring scrypt salt")?;
    let digest = b64::std(key, "the Spring scrypt key")?;
    if salt.is_empty() || !(1..=128).contains(&digest.len()) {
        return Err(bad("impossible Spring scrypt salt or key length"));
    }
    let params = Params::Scrypt {
        log_n: ((packed >> 16) & 0xff) as u8,
        r: ((packed >> 8) & 0xff) as u32,
        p: (packed & 0xff) as u32,
        salt,
        len: digest.len(),
    };
    build(Format::SpringScrypt, params, digest, s, limits)
}

/// LdapShaPasswordEncoder: an LDAP `{SHA}` or `{SSHA}` value (either case), nothing else.
fn ldap_sha(s: &str, rest: &str, limits: &Limits) -> Result<LegacyHash, ParseError> {
    let scheme = (rest.strip_prefix('{').and_then(|r| r.split_once('}')))
        .map(|(scheme, _)| scheme.to_ascii_uppercase());
    if !matches!(scheme.as_deref(), Some("SHA" | "SSHA")) {
        return Err(bad(
            "a Spring {ldap} value must hold an LDAP {SHA} or {SSHA} value",
        ));
    }
    let mut h = crate::parse::ldap(rest, limits)?;
    s.clone_into(&mut h.stored);
    Ok(h)
}

/// MessageDigestPasswordEncoder and Md4PasswordEncoder: `[{salt}]hex(H(password ‖ "{salt}"))`, the braces included.
fn digest(
    s: &str,
    rest: &str,
    digest: Digest,
    format: Format,
    limits: &Limits,
) -> Result<LegacyHash, ParseError> {
    let (salt, hex_digest) = match rest.strip_prefix('{') {
        Some(r) => {
            let (salt, h) = r
                .split_once('}')
                .ok_or_else(|| bad("a Spring digest's {salt} is not closed"))?;
            (format!("{{{salt}}}"), h)
        }
        None => (String::new(), rest),
    };
    // The encoders write hex, or base64 when `setEncodeHashAsBase64(true)`.
    let len = digest.output_len();
    let raw = hex::decode(hex_digest)
        .ok()
        .or_else(|| b64::std(hex_digest, "").ok())
        .filter(|r| r.len() == len)
        .ok_or_else(|| {
            bad(format!(
                "a Spring digest must end in {} hex digits or their base64",
                2 * len
            ))
        })?;
    if salt.len() > 256 {
        return Err(bad("a Spring digest's salt is longer than 256 bytes"));
    }
    let params = Params::Salted {
        digest,
        salt: salt.into_bytes(),
        salt_first: false,
    };
    build(format, params, raw, s, limits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{Format, LegacyHash, Limits};

    fn format(s: &str) -> Result<Format, String> {
        LegacyHash::parse(s, None, &Limits::default())
            .map(|h| h.format())
            .map_err(|e| e.0)
    }

    #[test]
    fn spring_and_ldap_share_ids_told_apart_by_shape() {
        // Spring's `{MD5}` and `{sha256}` are hex; LDAP's `{MD5}` and `{SHA256}` base64.
        let md5_hex = "905e382a25eed53e22224223b3581092";
        assert_eq!(format(&format!("{{MD5}}{md5_hex}")), Ok(Format::SpringMd5));
        assert_eq!(format("{MD5}X03MO1qnZdYdgyfeuILPmQ=="), Ok(Format::LdapMd5));
        assert_eq!(
            format("{SHA256}XohImNooBHFR0OVvjcYpJ3NgPQ1qq73WKhHvch0VQtg="),
            Ok(Format::LdapSha256)
        );
        let unsalted = LegacyHash::parse(
            "{MD5}5f4dcc3b5aa765d61d8327deb882cf99",
            None,
            &Limits::default(),
        )
        .unwrap();
        assert!(unsalted.verify("password"));
        assert!(!unsalted.verify("Password"));
    }

    #[test]
    fn pbkdf2_in_base64_and_the_v5_8_id() {
        let hex =
            "5d923b44a6d129f3ddf3e3c8d29412723dcbde72445e8ef6bf3b508fbf17fa4ed4d6b99ca763d8dc";
        let raw = hex::decode(hex).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let h = LegacyHash::parse(&format!("{{pbkdf2}}{b64}"), None, &Limits::default()).unwrap();
        assert!(h.verify("password"));
        // The v5.8 id wants a 16-byte salt: the 8-byte one does not fit.
        assert!(format(&format!("{{pbkdf2@SpringSecurity_v5_8}}{hex}")).is_err());
    }

    /// Spring's own vectors: Md4PasswordEncoderTests (base64 and hex, salted and not) and
    /// LdapShaPasswordEncoderTests (made by `slappasswd`), under their delegating ids.
    #[test]
    fn md4_and_ldap_sha_encoders_vectors() {
        let cases = [
            ("ww_uni123", "{MD4}8zobtq72iAt0W6KNqavGwg=="),
            ("ww_uni123", "{MD4}{Alan K Stewart}ZplT6P5Kv6Rlu6W4FIoYNA=="),
            ("", "{MD4}MdbP4NFq6TG3PFnX4MCJwA=="),
            ("\u{4F60}\u{597d}", "{MD4}a7f1196539fd1f85f754ffd185b16e6e"),
            ("boabspasswurd", "{ldap}{SHA}ddSFGmjXYPbZC+NXR2kCzBRjqiE="),
            ("boabspasswurd", "{ldap}{sha}ddSFGmjXYPbZC+NXR2kCzBRjqiE="),
            (
                "boabspasswurd",
                "{ldap}{SSHA}25ro4PKC8jhQZ26jVsozhX/xaP0suHgX",
            ),
            (
                "boabspasswurd",
                "{ldap}{ssha}PQy2j+6n5ytA+YlAKkM8Fh4p6u2JxfVd",
            ),
        ];
        for (password, stored) in cases {
            let h = LegacyHash::parse(stored, None, &Limits::default()).unwrap();
            assert!(h.verify(password), "{stored}");
            assert!(!h.verify("wrongpassword"), "{stored}");
            assert_eq!(h.stored(), stored);
        }
        // SEC-1031: the whole digest counts.
        let changed = "{ldap}{SSHA}35ro4PKC8jhQZ26jVsozhX/xaP0suHgX";
        let h = LegacyHash::parse(changed, None, &Limits::default()).unwrap();
        assert!(!h.verify("boabspasswurd"));
        // LdapShaPasswordEncoder reads SHA and SSHA only.
        assert!(format("{ldap}{SMD5}X03MO1qnZdYdgyfeuILPmQ==").is_err());
        assert!(format("{ldap}{SSHA25ro4PKC8jhQZ26jVsozhX/xaP0suHgX").is_err());
    }

    #[test]
    fn bad_spring_values_are_refused_without_quoting_them() {
        for bad in [
            "{scrypt}$ff0801$c2FsdA==$a2V5",
            "{scrypt}$zz$c2FsdA==$a2V5",
            "{bcrypt}$2a$10$short",
            "{SHA-1}{unclosed4f31573948ddbfb8ac9dd80107dfad13fd8f2454",
            "{sha256}97cde38028ad898ebc02e690819fa220e88c62e0699403e94fff291cfffaf8410849f27605abcbzz",
            "{CRYPT}$2b$04$tooshort",
        ] {
            let why = format(bad).unwrap_err();
            assert!(!why.contains(&bad[8..]), "{why}");
        }
    }
}
