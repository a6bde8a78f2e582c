//! Secrets that zeroize on drop and never print.

use std::fmt;

use serde::{Deserialize, Deserializer};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(Zeroizing::new(value.into()))
            }
            /// The secret itself; call sites that read it are the ones to audit.
            pub fn expose(&self) -> &str {
                &self.0
            }
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::new)
            }
        }
    };
}

secret_string!(
    /// A clear-text password as typed by a user.
    Password
);
secret_string!(
    /// A bearer secret: session token, client secret, application key or reset token.
    SecretToken
);

impl Password {
    /// NFKC form (NIST SP 800-63B 5.1.1.2), so the same password typed on two keyboards
    /// hashes the same. This is what bcrypt sees.
    pub fn normalized(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.nfkc().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let p = Password::new("hunter2-Secret");
        let t = SecretToken::new("tok-123456");
        assert_eq!(
            format!("{p:?} {p} {t:?} {t}"),
            "[redacted] [redacted] [redacted] [redacted]"
        );
        assert_eq!(format!("{:?}", Some(&p)), "Some([redacted])");
    }

    #[test]
    fn normalization_is_nfkc() {
        // U+FB01 LATIN SMALL LIGATURE FI normalizes to "fi".
        assert_eq!(&*Password::new("\u{FB01}nance").normalized(), "finance");
    }
}
