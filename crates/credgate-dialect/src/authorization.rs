//! `Authorization` header values, parsed once for the dialects and the native API.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use credgate_core::SecretToken;
use percent_encoding::percent_decode_str;

/// The token of `Bearer <token>` (scheme case-insensitive).
pub fn bearer_token(value: &str) -> Option<SecretToken> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretToken::new(token.trim()))
}

/// The (id, secret) of `Basic <base64(id:secret)>`. RFC 6749 2.3.1: client id and secret are
/// form-encoded before Basic encoding, so they are form-decoded here.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    let unform = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .ok()
    };
    Some((unform(user)?, unform(pass)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic() {
        assert_eq!(bearer_token("bearer abc ").unwrap().expose(), "abc");
        assert!(bearer_token("Basic abc").is_none());
        // "a%2Bb:s+c" -> ("a+b", "s c")
        let encoded = STANDARD.encode("a%2Bb:s+c");
        assert_eq!(
            basic_credentials(&format!("Basic {encoded}")).unwrap(),
            ("a+b".into(), "s c".into())
        );
        assert!(basic_credentials("Basic !!!").is_none());
    }
}
