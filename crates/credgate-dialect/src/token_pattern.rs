//! A dialect's token pattern (`auth.token_pattern`, `auth.csrf.pattern`): the regex, and, when
//! it has the one shape the shipped dialects use — a field of a delimited list,
//! `(?:^|S)NAME([^S]+)` (Akana's `(?:^|,)TokenID=([^,]+)`) — the same search done with plain
//! string scanning, which is what runs. The regex stays the definition; a test checks that
//! both agree.

use std::borrow::Cow;

use regex::Regex;

#[derive(Debug, Clone)]
pub(crate) struct TokenPattern {
    regex: Regex,
    field: Option<DelimitedField>,
}

/// `(?:^|sep)name([^sep]+)`: the first value of `name` in a `sep`-separated list, at least one
/// character long, up to the next `sep`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DelimitedField {
    sep: char,
    name: String,
}

impl TokenPattern {
    pub(crate) fn new(regex: Regex) -> Self {
        let field = DelimitedField::recognize(regex.as_str());
        Self { regex, field }
    }

    /// The first capture group's text in the first match, as the regex gives it.
    pub(crate) fn capture<'a>(&self, text: &'a str) -> Option<&'a str> {
        match &self.field {
            Some(field) => field.find(text),
            None => Some(self.regex.captures(text)?.get(1)?.as_str()),
        }
    }
}

impl DelimitedField {
    /// The field the pattern describes, when it has exactly that shape and its name has no
    /// character a regex treats specially.
    fn recognize(pattern: &str) -> Option<Self> {
        let rest = pattern.strip_prefix("(?:^|")?;
        let mut chars = rest.chars();
        let sep = chars.next()?;
        let rest = chars.as_str().strip_prefix(')')?;
        let class = format!("([^{sep}]+)");
        let name = rest.strip_suffix(class.as_str())?;
        let plain = |c: char| c.is_ascii_alphanumeric() || "_=:-/@%!,;~<>'\"#&` ".contains(c);
        if !plain(sep) || sep == '-' || name.is_empty() || !name.chars().all(plain) {
            return None;
        }
        Some(Self {
            sep,
            name: name.to_owned(),
        })
    }

    /// Candidates in the order the regex tries them: the start, then after each separator.
    fn find<'a>(&self, text: &'a str) -> Option<&'a str> {
        let mut start = 0;
        loop {
            if let Some(after) = text[start..].strip_prefix(self.name.as_str()) {
                let end = after.find(self.sep).unwrap_or(after.len());
                if end > 0 {
                    return Some(&after[..end]);
                }
            }
            let next = text[start..].find(self.sep)?;
            start += next + self.sep.len_utf8();
        }
    }
}

/// `percent_encoding::percent_decode_str(raw).decode_utf8().ok()`, copying runs instead of
/// bytes: `%XX` with two hex digits is decoded, any other `%` kept; `None` when the result is
/// not UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        return Some(Cow::Borrowed(raw));
    };
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let decoded = match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(b'%');
                i += 1;
            }
        }
        let run = bytes[i..]
            .iter()
            .position(|&b| b == b'%')
            .unwrap_or(bytes.len() - i);
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A small deterministic generator (no extra dependency).
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn text(&mut self, alphabet: &[&str]) -> String {
            let len = (self.next() % 24) as usize;
            (0..len)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn the_fast_search_agrees_with_the_regex() {
        let patterns = [
            "(?:^|,)TokenID=([^,]+)",
            "(?:^|;)sid:([^;]+)",
            "(?:^| )t([^ ]+)",
        ];
        let alphabet = [
            "TokenID=", "Token", "ID=", "=", ",", ";", "sid:", " ", "t", "a", "é", "%2C", "\n",
        ];
        let mut gen = Gen(0x9e37_79b9_7f4a_7c15);
        for p in patterns {
            let pattern = TokenPattern::new(Regex::new(p).unwrap());
            assert!(pattern.field.is_some(), "{p} takes the fast path");
            for _ in 0..20_000 {
                let text = gen.text(&alphabet);
                let by_regex = pattern.regex.captures(&text).and_then(|c| c.get(1));
                assert_eq!(
                    pattern.capture(&text),
                    by_regex.map(|m| m.as_str()),
                    "{p} on {text:?}"
                );
            }
        }
    }

    #[test]
    fn other_shapes_keep_the_regex() {
        for p in [
            "(?:^|,)Token.D=([^,]+)",
            "(?:^|,)TokenID=([^;]+)",
            "(?i)(?:^|,)TokenID=([^,]+)",
            "(?:^|,)TokenID=([^,]+)$",
            "TokenID=([^,]+)",
            "(?:^|,)(?:TokenID)=([^,]+)",
            "(?:^|-)a([^-]+)",
        ] {
            let pattern = TokenPattern::new(Regex::new(p).unwrap());
            assert!(pattern.field.is_none(), "{p}");
        }
        let pattern = TokenPattern::new(Regex::new("(?i)tokenid=([^,]+)").unwrap());
        assert_eq!(pattern.capture("x,TOKENID=abc,y"), Some("abc"));
    }

    #[test]
    fn percent_decoding_agrees_with_percent_encoding() {
        let alphabet = [
            "%", "2C", "3d", "zz", "a", "é", "%C3", "%A9", "%FF", "%2", "%%",
        ];
        let mut gen = Gen(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let text = gen.text(&alphabet);
            let expected = percent_encoding::percent_decode_str(&text)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned());
            assert_eq!(
                percent_decode(&text).map(|c| c.into_owned()),
                expected,
                "{text:?}"
            );
        }
    }
}
