//! Recomputes a format's digest from a password and its parameters, with the RustCrypto
//! primitives.

use hmac::Hmac;
use md4::Md4;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::{Digest, Params};

fn hash(d: Digest, parts: &[&[u8]]) -> Vec<u8> {
    fn run<H: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut h = H::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().to_vec()
    }
    match d {
        Digest::Md4 => run::<Md4>(parts),
        Digest::Md5 => run::<Md5>(parts),
        Digest::Sha1 => run::<Sha1>(parts),
        Digest::Sha256 => run::<Sha256>(parts),
        Digest::Sha384 => run::<Sha384>(parts),
        Digest::Sha512 => run::<Sha512>(parts),
    }
}

pub fn pbkdf2(prf: Digest, pw: &[u8], salt: &[u8], iterations: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    match prf {
        Digest::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(pw, salt, iterations, &mut out),
        Digest::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt, iterations, &mut out),
        Digest::Sha384 => pbkdf2::pbkdf2_hmac::<Sha384>(pw, salt, iterations, &mut out),
        Digest::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(pw, salt, iterations, &mut out),
        Digest::Md5 => {
            let _ = pbkdf2::pbkdf2::<Hmac<Md5>>(pw, salt, iterations, &mut out);
        }
        Digest::Md4 => {
            let _ = pbkdf2::pbkdf2::<Hmac<Md4>>(pw, salt, iterations, &mut out);
        }
    }
    out
}

/// The digest of `pw` under `params`. `None` when the parameters cannot run (refused at parse
/// time already) or the format is a bcrypt inside another (verified by bcrypt itself).
pub fn digest(params: &Params, pw: &[u8]) -> Option<Vec<u8>> {
    match params {
        Params::Pbkdf2 {
            prf,
            iterations,
            salt,
            len,
        } => Some(pbkdf2(*prf, pw, salt, *iterations, *len)),
        Params::Argon2 { .. } => argon2(params, pw),
        Params::Scrypt {
            log_n,
            r,
            p,
            salt,
            len,
        } => {
            let params = scrypt::Params::new(*log_n, *r, *p, *len).ok()?;
            let mut out = vec![0u8; *len];
            scrypt::scrypt(pw, salt, &params, &mut out).ok()?;
            Some(out)
        }
        Params::Md5Crypt { salt } => Some(crate::crypt::md5_crypt(pw, salt.as_bytes()).into()),
        Params::ShaCrypt { bits, rounds, salt } => {
            let rounds = *rounds as usize;
            let out = if *bits == 256 {
                let p = sha_crypt::Sha256Params::new(rounds).ok()?;
                sha_crypt::sha256_crypt_b64(pw, salt.as_bytes(), &p).ok()?
            } else {
                let p = sha_crypt::Sha512Params::new(rounds).ok()?;
                sha_crypt::sha512_crypt_b64(pw, salt.as_bytes(), &p).ok()?
            };
            Some(out.into_bytes())
        }
        Params::Phpass { count_log2, salt } => {
            Some(crate::crypt::phpass(pw, salt.as_bytes(), *count_log2).into_bytes())
        }
        Params::Salted {
            digest,
            salt,
            salt_first,
        } => Some(if *salt_first {
            hash(*digest, &[salt, pw])
        } else {
            hash(*digest, &[pw, salt])
        }),
        Params::Crafter { iterations, salt } => {
            let mut h = Sha256::new().chain_update(salt).chain_update(pw).finalize();
            for _ in 0..*iterations {
                h = Sha256::digest(h);
            }
            Some(h.to_vec())
        }
        Params::Auth0(a) => Some(a.digest(std::str::from_utf8(pw).ok()?)),
        Params::Bcrypt { .. } => None,
    }
}

fn argon2(params: &Params, pw: &[u8]) -> Option<Vec<u8>> {
    let Params::Argon2 {
        variant,
        version,
        m,
        t,
        p,
        salt,
        len,
    } = params
    else {
        return None;
    };
    let alg = match variant {
        crate::Argon2Variant::Argon2id => argon2::Algorithm::Argon2id,
        crate::Argon2Variant::Argon2i => argon2::Algorithm::Argon2i,
        crate::Argon2Variant::Argon2d => argon2::Algorithm::Argon2d,
    };
    let version = argon2::Version::try_from(*version).ok()?;
    let params = argon2::Params::new(*m, *t, *p, Some(*len)).ok()?;
    let mut out = vec![0u8; *len];
    argon2::Argon2::new(alg, version, params)
        .hash_password_into(pw, salt, &mut out)
        .ok()?;
    Some(out)
}

/// A bcrypt inside another format; Django's `bcrypt_sha256` feeds it the hex SHA-256.
pub fn bcrypt_inner(password: &str, sha256_hex: bool, inner: &str) -> bool {
    let input = if sha256_hex {
        hex::encode(Sha256::digest(password.as_bytes()))
    } else {
        password.to_owned()
    };
    bcrypt::verify(input.as_bytes(), inner).unwrap_or(false)
}
