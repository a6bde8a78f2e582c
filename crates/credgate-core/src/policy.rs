//! Password policy after NIST SP 800-63B: length bounds, no username, no common password, no
//! recent reuse. Composition rules are deliberately absent; a strength score is opt-in.

use serde::Deserialize;
use zxcvbn::matching::patterns::MatchPattern;

use crate::error::PolicyRule;
use crate::hasher::BCRYPT_MAX_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Minimum length in characters (after NFKC normalization).
    pub min_length: usize,
    /// Maximum length in bytes; never above bcrypt's 72.
    pub max_bytes: usize,
    /// Refuse passwords equal to or containing the username (case-insensitive).
    pub forbid_username: bool,
    /// Refuse a password that is, as a whole, one of the N most common passwords (0: off).
    pub common_rank: usize,
    /// Minimum zxcvbn score 0-4; 0 turns the strength rule off (NIST advises against it).
    pub min_strength: u8,
    /// How many previous passwords may not be reused (0: off).
    pub history: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_bytes: BCRYPT_MAX_BYTES,
            forbid_username: true,
            common_rank: 10_000,
            min_strength: 0,
            history: 5,
        }
    }
}

impl PolicyConfig {
    /// Names the first key that is out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_bytes == 0 || self.max_bytes > BCRYPT_MAX_BYTES {
            return Err(format!(
                "policy.max_bytes must be between 1 and {BCRYPT_MAX_BYTES}"
            ));
        }
        if self.min_length == 0 || self.min_length > self.max_bytes {
            return Err("policy.min_length must be between 1 and policy.max_bytes".into());
        }
        if self.min_strength > 4 {
            return Err("policy.min_strength must be between 0 and 4".into());
        }
        Ok(())
    }

    /// The rules `password` (already NFKC-normalized) breaks, without the history rule, which
    /// needs the stored hashes and is checked by the service.
    pub fn check(&self, password: &str, username: &str) -> Vec<PolicyRule> {
        let mut broken = Vec::new();
        if password.chars().count() < self.min_length {
            broken.push(PolicyRule::MinLength {
                min: self.min_length,
            });
        }
        if password.len() > self.max_bytes {
            broken.push(PolicyRule::MaxLength {
                max_bytes: self.max_bytes,
            });
            // zxcvbn on an over-long input tells nothing more and costs time.
            return broken;
        }
        let lower = password.to_lowercase();
        let user = username.trim().to_lowercase();
        if self.forbid_username && !user.is_empty() && lower.contains(&user) {
            broken.push(PolicyRule::Username);
        }
        if self.common_rank > 0 || self.min_strength > 0 {
            let entropy = zxcvbn::zxcvbn(password, &[]);
            if self.common_rank > 0 && is_common(entropy.sequence(), password, self.common_rank) {
                broken.push(PolicyRule::Common);
            }
            if self.min_strength > 0 && u8::from(entropy.score()) < self.min_strength {
                broken.push(PolicyRule::Strength {
                    min_score: self.min_strength,
                });
            }
        }
        broken
    }
}

/// True when the whole password is one entry (any case, l33t or reversed) of zxcvbn's
/// common-password list within the top `rank`.
fn is_common(sequence: &[zxcvbn::Match], password: &str, rank: usize) -> bool {
    match sequence {
        [only] => {
            only.i == 0
                && only.j + 1 == password.chars().count()
                && matches!(&only.pattern, MatchPattern::Dictionary(d)
                    if is_password_list(d) && d.rank <= rank)
        }
        _ => false,
    }
}

/// zxcvbn does not export its dictionary enum; its default variant is the password list.
fn is_password_list(d: &zxcvbn::matching::patterns::DictionaryPattern) -> bool {
    d.dictionary_name == Default::default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rules(p: &PolicyConfig, pw: &str, user: &str) -> Vec<&'static str> {
        p.check(pw, user).iter().map(PolicyRule::name).collect()
    }

    #[test]
    fn each_rule_by_name() {
        let p = PolicyConfig::default();
        assert_eq!(rules(&p, "short1", "jane"), ["min_length"]);
        assert_eq!(rules(&p, &"x".repeat(73), "jane"), ["max_length"]);
        assert_eq!(rules(&p, "xxJane.Doe-2024", "jane.doe"), ["username"]);
        assert_eq!(rules(&p, "password", "jane"), ["common"]);
        assert_eq!(rules(&p, "P@ssw0rd", "jane"), ["common"]);
        assert_eq!(rules(&p, "qwertyuiop", "jane"), ["common"]);
        assert!(rules(&p, "SuperSecretPassword321#", "jane.doe").is_empty());
        assert!(rules(&p, "Margaret11", "margaret").contains(&"username"));
        assert!(rules(&p, "Margaret11", "mjones").is_empty());
        // 72 bytes is the bound, counted in bytes not characters.
        assert!(rules(&p, &"é".repeat(36), "jane").is_empty());
        assert_eq!(rules(&p, &"é".repeat(37), "jane"), ["max_length"]);
    }

    #[test]
    fn strength_is_opt_in() {
        let p = PolicyConfig {
            min_strength: 3,
            ..PolicyConfig::default()
        };
        assert_eq!(rules(&p, "Margaret11", "mjones"), ["strength"]);
    }

    #[test]
    fn validation_names_the_key() {
        let p = PolicyConfig {
            max_bytes: 100,
            ..PolicyConfig::default()
        };
        assert!(p.validate().unwrap_err().contains("policy.max_bytes"));
    }
}
