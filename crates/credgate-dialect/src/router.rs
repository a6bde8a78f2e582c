//! Path templates (`/api/users/{UserID}/password`, `/v{version}/users`) compiled to regexes.

use percent_encoding::percent_decode_str;
use regex::Regex;

#[derive(Debug, Clone)]
pub struct PathTemplate {
    /// The full template as written (base + path), e.g. for an OpenAPI document.
    pub template: String,
    regex: Regex,
    names: Vec<String>,
    /// The template with every parameter blanked: two routes with the same shape clash.
    pub shape: String,
    /// Literal characters: more literal templates are tried first.
    pub specificity: usize,
    /// The literal text before the first parameter (the whole template without one): a path
    /// that does not start with it, compared without ASCII case, cannot match, so most routes
    /// are passed over without running their regex.
    prefix: String,
    /// For a template without parameters: its text (without a trailing `/`), matched by
    /// comparison instead of the regex, and whether a trailing `/` may follow.
    literal: Option<(String, bool)>,
    ignore_case: bool,
}

impl PathTemplate {
    pub fn compile(template: &str, trailing_slash: bool) -> Result<Self, String> {
        Self::compile_with(template, trailing_slash, false)
    }

    /// Like [`PathTemplate::compile`]; with `ignore_case`, the literal parts match in any ASCII
    /// case (ASP.NET routing), and the shape is lower case so that routes differing only in
    /// case clash.
    pub fn compile_with(
        template: &str,
        trailing_slash: bool,
        ignore_case: bool,
    ) -> Result<Self, String> {
        let literal = |text: &str| literal_pattern(text, ignore_case);
        if !template.starts_with('/') {
            return Err(format!("path `{template}` must start with /"));
        }
        let (mut pattern, mut shape, mut names, mut specificity) =
            (String::from("^"), String::new(), Vec::new(), 0);
        let prefix = match template.find('{') {
            Some(open) => template[..open].to_owned(),
            None => template.trim_end_matches('/').to_owned(),
        };
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|i| open + i)
                .ok_or(format!("unclosed {{ in `{template}`"))?;
            let name = &rest[open + 1..close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad parameter name `{name}` in `{template}`"));
            }
            pattern.push_str(&literal(&rest[..open]));
            pattern.push_str("([^/]+)");
            shape.push_str(&rest[..open]);
            shape.push_str("{}");
            specificity += open;
            names.push(name.to_owned());
            rest = &rest[close + 1..];
        }
        pattern.push_str(&literal(rest.trim_end_matches('/')));
        shape.push_str(rest.trim_end_matches('/'));
        specificity += rest.len();
        pattern.push_str(if trailing_slash || rest.ends_with('/') {
            "/?$"
        } else {
            "$"
        });
        let regex = Regex::new(&pattern).map_err(|e| e.to_string())?;
        let literal = names.is_empty().then(|| {
            let slash = trailing_slash || rest.ends_with('/');
            (rest.trim_end_matches('/').to_owned(), slash)
        });
        if ignore_case {
            shape.make_ascii_lowercase();
        }
        Ok(Self {
            template: template.to_owned(),
            regex,
            names,
            shape,
            specificity,
            prefix,
            literal,
            ignore_case,
        })
    }

    /// The parameter names, in order.
    pub fn params(&self) -> &[String] {
        &self.names
    }

    /// A cheap necessary condition for a match, whether the regex is case-sensitive or not:
    /// the literal prefix, ignoring ASCII case. A path with non-ASCII bytes always goes to the
    /// regex (Unicode case folding could match it otherwise).
    fn may_match(&self, path: &str) -> bool {
        if !path.is_ascii() {
            return true;
        }
        path.as_bytes()
            .get(..self.prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(self.prefix.as_bytes()))
    }

    /// What the regex of a template without parameters says (`^TEXT/?$` or `^TEXT$`, each ASCII
    /// letter in either case with `ignore_case`), by comparing bytes.
    fn literal_match(&self, text: &str, slash: bool, path: &str) -> bool {
        let (path, text) = (path.as_bytes(), text.as_bytes());
        let Some((head, tail)) = path.split_at_checked(text.len()) else {
            return false;
        };
        let same = if self.ignore_case {
            head.eq_ignore_ascii_case(text)
        } else {
            head == text
        };
        same && (tail.is_empty() || (slash && tail == b"/"))
    }

    /// The decoded parameters when `path` matches; `None` also for undecodable segments.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        if let Some((text, slash)) = &self.literal {
            return self.literal_match(text, *slash, path).then(Vec::new);
        }
        if !self.may_match(path) {
            return None;
        }
        let caps = self.regex.captures(path)?;
        self.names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let raw = caps.get(i + 1)?.as_str();
                let value = percent_decode_str(raw).decode_utf8().ok()?;
                Some((name.clone(), value.into_owned()))
            })
            .collect()
    }
}

/// `text` as a regex matching it literally; with `ignore_case`, each ASCII letter in either
/// case (and nothing else: no Unicode folding of `k` to the Kelvin sign).
fn literal_pattern(text: &str, ignore_case: bool) -> String {
    if !ignore_case {
        return regex::escape(text);
    }
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            out.push('[');
            out.push(c.to_ascii_lowercase());
            out.push(c.to_ascii_uppercase());
            out.push(']');
        } else {
            out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn params_literals_and_slashes() {
        let t =
            PathTemplate::compile("/api/v{version}/users/{userID}/password/change", false).unwrap();
        assert_eq!(
            t.matches("/api/v1.0/users/%40me/password/change").unwrap(),
            vec![
                ("version".into(), "1.0".into()),
                ("userID".into(), "@me".into())
            ]
        );
        assert!(t.matches("/api/v1.0/users/a/b/password/change").is_none());
        assert!(t.matches("/api/v1.0/users/x/password/change/").is_none());
        assert_eq!(t.shape, "/api/v{}/users/{}/password/change");
        let s = PathTemplate::compile("/api/v1/users/{id}/changepassword", true).unwrap();
        assert!(s.matches("/api/v1/users/x/changepassword/").is_some());
        assert!(s.matches("/api/v1/users/x/changepassword").is_some());
        assert!(PathTemplate::compile("/a/{b", false).is_err());
    }

    #[test]
    fn ignoring_case_covers_literal_segments_only_in_ascii() {
        let t =
            PathTemplate::compile_with("/api/v1/users/{id}/changepassword", true, true).unwrap();
        assert_eq!(
            t.matches("/API/V1/Users/AbC/ChangePassword/").unwrap(),
            vec![("id".into(), "AbC".into())]
        );
        assert!(t.matches("/api/v1/users/x/changepassword").is_some());
        assert!(t.matches("/api/v1/users/x/changepasswordx").is_none());
        // U+212A KELVIN SIGN folds to `k` in Unicode, not in ASP.NET's ordinal comparison.
        let k = PathTemplate::compile_with("/token", false, true).unwrap();
        assert!(k.matches("/to\u{212a}en").is_none());
        assert!(k.matches("/TOKEN").is_some());
        assert_eq!(t.shape, "/api/v1/users/{}/changepassword");
        let exact = PathTemplate::compile("/api/v1/users/{id}/changepassword", true).unwrap();
        assert!(exact.matches("/api/v1/Users/x/changepassword").is_none());
    }

    #[test]
    fn literal_templates_match_as_their_regex_does() {
        let templates = [
            "/",
            "/api/login/status",
            "/a/b/",
            "/Api/Login",
            "/x.json",
            "/é/k",
        ];
        let paths = [
            "/",
            "",
            "//",
            "/api/login/status",
            "/api/login/status/",
            "/API/LOGIN/STATUS",
            "/api/login/statu",
            "/api/login/status//",
            "/api/login/statusx",
            "/a/b",
            "/a/b/",
            "/A/B/",
            "/a/b//",
            "/api/login",
            "/Api/Login",
            "/aPI/lOGIN/",
            "/x.json",
            "/xXjson",
            "/X.JSON",
            "/é/k",
            "/É/K",
            "/é/K",
            "/\u{212a}",
            "/api/login/status?x",
        ];
        for template in templates {
            for (slash, ignore_case) in [(false, false), (true, false), (false, true), (true, true)]
            {
                let t = PathTemplate::compile_with(template, slash, ignore_case).unwrap();
                assert!(t.literal.is_some(), "{template}");
                for path in paths {
                    assert_eq!(
                        t.matches(path).is_some(),
                        t.regex.is_match(path),
                        "{template} {slash} {ignore_case} {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_prefix_filter_never_hides_a_match() {
        let t = PathTemplate::compile("/api/v1/users/{id}/password", false).unwrap();
        assert!(t.matches("/api/v1/users/7/password").is_some());
        assert!(t.matches("/api/v2/users/7/password").is_none());
        assert!(t.matches("/api").is_none());
        let exact = PathTemplate::compile("/studio/api/1/status.json/", false).unwrap();
        assert!(exact.matches("/studio/api/1/status.json").is_some());
        assert!(exact.matches("/studio/api/1/status.json/").is_some());
        assert!(exact.matches("/studio/api/1/status.jso").is_none());
        // A case-insensitive template still sees paths that differ only in case.
        let insensitive = PathTemplate::compile_with("/Api/Login", false, true).unwrap();
        assert!(insensitive.matches("/API/LOGIN").is_some());
    }
}
