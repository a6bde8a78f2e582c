#![allow(clippy::unwrap_used)]

use crate::compute;
use crate::*;

const FIXTURES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/hashes/fixtures.jsonl"
));

struct Fixture {
    format: String,
    hint: Option<Hint>,
    password: String,
    hash: String,
}

fn fixtures() -> Vec<Fixture> {
    FIXTURES
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Fixture {
                format: v["format"].as_str().unwrap().into(),
                hint: v["hint"].as_str().map(|h| Hint::parse(h).unwrap()),
                password: v["password"].as_str().unwrap().into(),
                hash: v["hash"].as_str().unwrap().into(),
            }
        })
        .collect()
}

#[test]
fn every_fixture_verifies_its_password_and_no_other() {
    let limits = Limits::default();
    let mut seen = 0;
    for f in fixtures().iter().filter(|f| f.format != "bcrypt") {
        let h = LegacyHash::parse(&f.hash, f.hint, &limits)
            .unwrap_or_else(|e| panic!("{}: {e}", f.format));
        let expected = f.format.replace("ldap-crypt", "");
        assert!(
            expected.is_empty() || h.format().name() == expected,
            "{} parsed as {}",
            f.format,
            h.format().name()
        );
        assert!(h.verify(&f.password), "{} rejects its password", f.format);
        assert!(!h.verify(&format!("{}x", f.password)), "{}", f.format);
        assert!(!h.verify(""), "{}", f.format);
        // The stored form parses back without a hint, to the same format.
        let again = Stored::parse(h.stored(), &limits).unwrap();
        assert_eq!(again.format_name(), h.format().name());
        assert!(again.verify(&f.password));
        seen += 1;
    }
    assert!(seen >= 60, "{seen} fixtures");
}

#[test]
fn weak_fixtures_wrap_and_still_verify() {
    let limits = Limits::default();
    for f in fixtures().iter().filter(|f| f.format != "bcrypt") {
        let h = LegacyHash::parse(&f.hash, f.hint, &limits).unwrap();
        let weak = h.strength() == Strength::Weak;
        let expect_weak = !(f.format.starts_with("argon2")
            || f.format == "scrypt"
            || f.format == "spring-scrypt"
            || f.format == "auth0-scrypt"
            || f.format.contains("pbkdf2")
            || f.format.contains("sha256-crypt")
            || f.format.contains("sha512-crypt")
            || f.format.contains("bcrypt")
            || f.format == "django-argon2"
            || f.format == "aspnet-identity-v3"
            || f.hash.starts_with("{CRYPT}$6$"));
        assert_eq!(weak, expect_weak, "{}", f.format);
        let Some(w) = h.wrap(4) else { continue };
        let stored = w.to_stored();
        assert!(stored.starts_with("$credgate-wrap$1$"));
        let Stored::Wrapped(back) = Stored::parse(&stored, &limits).unwrap() else {
            panic!("not wrapped")
        };
        assert!(back.verify(&f.password), "{}", f.format);
        assert!(!back.verify(&format!("{}x", f.password)), "{}", f.format);
        assert_eq!(back.format(), h.format());
    }
}

#[test]
fn wrapped_strings_hold_no_legacy_digest() {
    let limits = Limits::default();
    for f in fixtures().iter().filter(|f| f.format != "bcrypt") {
        let h = LegacyHash::parse(&f.hash, f.hint, &limits).unwrap();
        let Some(w) = h.wrap(4) else { continue };
        let stored = w.to_stored();
        let json = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            stored.split('$').nth(4).unwrap(),
        )
        .unwrap();
        let text = String::from_utf8(json).unwrap();
        let hex_digest = hex::encode(&h.digest);
        assert!(!text.contains(&hex_digest), "{}", f.format);
        assert!(!stored.contains(&hex_digest), "{}", f.format);
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &h.digest);
        assert!(!stored.contains(b64.trim_end_matches('=')), "{}", f.format);
    }
}

#[test]
fn rfc_6070_pbkdf2_hmac_sha1() {
    let v = |pw: &[u8], salt: &[u8], c, len| {
        hex::encode(compute::pbkdf2(Digest::Sha1, pw, salt, c, len))
    };
    assert_eq!(
        v(b"password", b"salt", 1, 20),
        "0c60c80f961f0e71f3a9b524af6012062fe037a6"
    );
    assert_eq!(
        v(b"password", b"salt", 2, 20),
        "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
    );
    assert_eq!(
        v(b"password", b"salt", 4096, 20),
        "4b007901b765489abead49d926f721d065a429c1"
    );
    assert_eq!(
        v(
            b"passwordPASSWORDpassword",
            b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
            4096,
            25
        ),
        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"
    );
    assert_eq!(
        v(b"pass\0word", b"sa\0lt", 4096, 16),
        "56fa6aa75548099dcc37d7f03425e0c3"
    );
}

#[test]
fn rfc_7914_scrypt() {
    let run = |pw: &[u8], salt: &[u8], log_n, r, p| {
        let params = Params::Scrypt {
            log_n,
            r,
            p,
            salt: salt.to_vec(),
            len: 64,
        };
        hex::encode(compute::digest(&params, pw).unwrap())
    };
    assert_eq!(run(b"", b"", 4, 1, 1), "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
    assert_eq!(run(b"password", b"NaCl", 10, 8, 16), "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

/// The reference implementation's vectors (phc-winner-argon2, src/test.c, version 0x13).
#[test]
fn argon2_reference_vectors() {
    let limits = Limits::default();
    let i = "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA";
    let id =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    for (s, raw) in [
        (
            i,
            "c1628832147d9720c5bd1cfd61367078729f6dfb6f8fea9ff98158e0d7816ed0",
        ),
        (
            id,
            "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7",
        ),
    ] {
        let h = LegacyHash::parse(s, None, &limits).unwrap();
        assert_eq!(hex::encode(&h.digest), raw);
        assert!(h.verify("password"));
        assert!(!h.verify("passwore"));
    }
}

#[test]
fn hostile_parameters_are_refused_without_quoting_the_hash() {
    let limits = Limits::default();
    let hostile = [
        "$pbkdf2-sha256$2000000000$w1hLSWlt7b33XmvtPWfsfQ$GHs6eSyJBeIS4efIhwogxrV8yv0nLEE.yvX2eHcwK50",
        "$argon2id$v=19$m=4194304,t=2,p=1$BUDo/X8PwXgvRcg5J+ScUw$LIVbPuy38eM2KiEzF/Ieo4oCuhMwunjipr5OtuKkpLs",
        "$argon2id$v=19$m=1024,t=2000,p=1$BUDo/X8PwXgvRcg5J+ScUw$LIVbPuy38eM2KiEzF/Ieo4oCuhMwunjipr5OtuKkpLs",
        "$scrypt$ln=24,r=8,p=1$f88Zw7g3JuS8FyIk5JwzZg$rxSw7RsQOsq072aYw6/LHKD2RUfmhNzN1Xncj4nQ+hY",
        "$scrypt$ln=10,r=8,p=99999$f88Zw7g3JuS8FyIk5JwzZg$rxSw7RsQOsq072aYw6/LHKD2RUfmhNzN1Xncj4nQ+hY",
        "$6$rounds=999999999$yBWvbmXZt0DMnG9i$cLCNa07aG0jeLNORiOb9S/eAJ8lN9I/xRHjga6SiM952.oGie/sgyl7SKgqxBhVNAO3wMQ1.ssNEpoPbechK00",
        "$P$zzzzzzzzz2Lou9YgqmUCuk4CznDmAZqqs0",
        "bcrypt$$2b$31$glfHMT5uw9WP5elgdHhayO5yyFCfFUGc3v.ZZy.i5ge00PQ6RItpy",
        "$pbkdf2-sha256$10000$w1hLSWlt7b33XmvtPWfsfQ$!!!",
        "{SSHA}!!!",
        "{SHA}q/eq1kOINtvlJqojGr3i0O73TU==",
        "$1$toolongsalt$8FuHP7XzHKbU4Urr3yA6f1",
        "$9$x$y",
        "whatever",
        "",
    ];
    for s in hostile {
        let err = LegacyHash::parse(s, None, &limits).unwrap_err().to_string();
        for part in s
            .split('$')
            .filter(|p| p.len() >= 12 && !p.bytes().all(|b| b.is_ascii_digit()))
        {
            assert!(!err.contains(part), "{err} quotes the hash");
        }
    }
    let big_v3 = {
        let mut raw = vec![1u8, 0, 0, 0, 1];
        raw.extend(u32::MAX.to_be_bytes());
        raw.extend(16u32.to_be_bytes());
        raw.extend([7u8; 48]);
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)
    };
    assert!(LegacyHash::parse(&big_v3, Some(Hint::AspnetIdentity), &limits).is_err());
    assert!(LegacyHash::parse("AAAA", Some(Hint::AspnetIdentity), &limits).is_err());
    assert!(LegacyHash::parse("abc", Some(Hint::Crafter), &limits).is_err());
    // Auth0 takes ripemd160 and whirlpool as hmac digests only, not as algorithms.
    for alg in ["ripemd160", "whirlpool", "sha384"] {
        let obj = format!(r#"{{"algorithm":"{alg}","hash":{{"value":"00"}}}}"#);
        let err = LegacyHash::parse(&obj, Some(Hint::Auth0), &limits).unwrap_err();
        assert!(err.to_string().contains("unknown"), "{alg}: {err}");
    }
    let tight = Limits {
        max_iterations: 1000,
        ..Limits::default()
    };
    let ok =
        "$pbkdf2-sha256$10000$w1hLSWlt7b33XmvtPWfsfQ$GHs6eSyJBeIS4efIhwogxrV8yv0nLEE.yvX2eHcwK50";
    assert!(LegacyHash::parse(ok, None, &limits).is_ok());
    assert!(LegacyHash::parse(ok, None, &tight).is_err());
}

#[test]
fn debug_never_shows_the_digest() {
    let f = &fixtures()[1];
    let h = LegacyHash::parse(&f.hash, f.hint, &Limits::default()).unwrap();
    let shown = format!("{h:?}");
    assert!(!shown.contains(&f.hash[f.hash.len() - 10..]), "{shown}");
}
