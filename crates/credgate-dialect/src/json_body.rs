//! JSON bodies of a fixed shape rendered without minijinja: a template that is literal text
//! and `{{ … }}` placeholders, each only paths into the user, the vars, the path parameters,
//! `base` and `dialect`, string literals, `~` and `or` (Akana's `login/status`, Crafter's
//! `get.json`), is compiled once into chunks and rendered by concatenating the literal text
//! and each value as minijinja's JSON auto-escaping writes it (`serde_json`). Anything else —
//! tags, comments, filters, other names, an undefined value where it would be printed — is
//! left to minijinja, which stays the definition: a test renders every shipped template both
//! ways.

use std::borrow::Cow;
use std::collections::BTreeMap;

use credgate_core::User;

/// A compiled body template.
#[derive(Debug, Clone)]
pub(crate) struct JsonBody {
    chunks: Vec<Chunk>,
}

#[derive(Debug, Clone)]
enum Chunk {
    Text(String),
    Value(Expr),
}

/// `a or b or …`, each a `~` concatenation of atoms.
#[derive(Debug, Clone)]
struct Expr(Vec<Vec<Atom>>);

#[derive(Debug, Clone)]
enum Atom {
    Literal(String),
    Path(Path),
}

#[derive(Debug, Clone)]
enum Path {
    Base,
    Dialect,
    Var(String),
    Param(String),
    User(UserField),
}

#[derive(Debug, Clone)]
enum UserField {
    Id,
    Ref,
    Username,
    Admin,
    ExternallyManaged,
    Profile(String),
    Alias(String),
}

/// What a placeholder's value is while rendering.
enum Val<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Undefined,
}

impl Val<'_> {
    fn truthy(&self) -> bool {
        match self {
            Val::Str(s) => !s.is_empty(),
            Val::Bool(b) => *b,
            Val::Undefined => false,
        }
    }
}

/// What the fast path reads from one response's context.
pub(crate) struct Scope<'a> {
    pub base: &'a str,
    pub dialect: &'a str,
    pub vars: &'a BTreeMap<String, String>,
    pub params: &'a BTreeMap<String, String>,
    pub user: Option<&'a User>,
}

impl JsonBody {
    /// The template compiled, when it has the fixed shape this module renders.
    pub(crate) fn compile(source: &str) -> Option<Self> {
        if source.contains("{%") || source.contains("{#") {
            return None;
        }
        // minijinja drops one trailing newline of a template.
        let source = source.strip_suffix('\n').unwrap_or(source);
        let mut rest = source.strip_suffix('\r').unwrap_or(source);
        let mut chunks = Vec::new();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                chunks.push(Chunk::Text(rest[..open].to_owned()));
            }
            let (expr, after) = parse_placeholder(&rest[open + 2..])?;
            chunks.push(Chunk::Value(expr));
            rest = after;
        }
        if !rest.is_empty() {
            chunks.push(Chunk::Text(rest.to_owned()));
        }
        Some(Self { chunks })
    }

    /// The body, or `None` where minijinja must decide (an undefined value would be printed,
    /// or the template reads a user the outcome has none of).
    pub(crate) fn render(&self, scope: &Scope<'_>) -> Option<String> {
        let mut out = String::with_capacity(256);
        for chunk in &self.chunks {
            match chunk {
                Chunk::Text(t) => out.push_str(t),
                Chunk::Value(expr) => match expr.eval(scope)? {
                    Val::Str(s) => write_json_string(&mut out, &s),
                    Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                    Val::Undefined => return None,
                },
            }
        }
        Some(out)
    }
}

impl Expr {
    fn eval<'a>(&self, scope: &Scope<'a>) -> Option<Val<'a>> {
        let mut value = Val::Undefined;
        for (i, concat) in self.0.iter().enumerate() {
            value = eval_concat(concat, scope)?;
            // `a or b`: a when truthy, else b (the last operand whatever it is).
            if value.truthy() || i + 1 == self.0.len() {
                break;
            }
        }
        Some(value)
    }
}

fn eval_concat<'a>(atoms: &[Atom], scope: &Scope<'a>) -> Option<Val<'a>> {
    if let [single] = atoms {
        return single.eval(scope);
    }
    let mut joined = String::new();
    for atom in atoms {
        match atom.eval(scope)? {
            Val::Str(s) => joined.push_str(&s),
            // minijinja's own rules for other values in `~` are left to it.
            Val::Bool(_) | Val::Undefined => return None,
        }
    }
    Some(Val::Str(Cow::Owned(joined)))
}

impl Atom {
    fn eval<'a>(&self, scope: &Scope<'a>) -> Option<Val<'a>> {
        let text = |s: Option<&'a String>| s.map_or(Val::Undefined, |s| Val::Str(Cow::Borrowed(s)));
        Some(match self {
            Atom::Literal(s) => Val::Str(Cow::Owned(s.clone())),
            Atom::Path(Path::Base) => Val::Str(Cow::Borrowed(scope.base)),
            Atom::Path(Path::Dialect) => Val::Str(Cow::Borrowed(scope.dialect)),
            Atom::Path(Path::Var(k)) => text(scope.vars.get(k)),
            Atom::Path(Path::Param(k)) => text(scope.params.get(k)),
            Atom::Path(Path::User(field)) => {
                let user = scope.user?;
                match field {
                    UserField::Id => Val::Str(Cow::Borrowed(&user.id)),
                    UserField::Ref => Val::Str(Cow::Borrowed(user.id_for(scope.dialect))),
                    UserField::Username => Val::Str(Cow::Borrowed(&user.username)),
                    UserField::Admin => Val::Bool(user.admin),
                    UserField::ExternallyManaged => Val::Bool(user.externally_managed),
                    UserField::Profile(k) => text(user.profile.get(k)),
                    UserField::Alias(k) => text(user.aliases.get(k)),
                }
            }
        })
    }
}

/// `s` as serde_json writes a string: `"` and `\\` escaped, control characters as `\\b \\t
/// \\n \\f \\r` or `\\u00xx`, everything else as is.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// One placeholder after its `{{`: the expression and the text after its `}}`.
fn parse_placeholder(text: &str) -> Option<(Expr, &str)> {
    // `{{-` and `{{+` change the surrounding whitespace: minijinja's business.
    if text.starts_with(['-', '+']) {
        return None;
    }
    let mut tokens = Tokens { rest: text };
    let mut alternatives = vec![parse_concat(&mut tokens)?];
    loop {
        tokens.skip_space();
        if let Some(after) = tokens.rest.strip_prefix("}}") {
            return Some((Expr(alternatives), after));
        }
        tokens.keyword("or")?;
        alternatives.push(parse_concat(&mut tokens)?);
    }
}

fn parse_concat(tokens: &mut Tokens<'_>) -> Option<Vec<Atom>> {
    let mut atoms = vec![parse_atom(tokens)?];
    loop {
        tokens.skip_space();
        match tokens.rest.strip_prefix('~') {
            Some(rest) => {
                tokens.rest = rest;
                atoms.push(parse_atom(tokens)?);
            }
            None => return Some(atoms),
        }
    }
}

fn parse_atom(tokens: &mut Tokens<'_>) -> Option<Atom> {
    tokens.skip_space();
    if let Some(quote) = tokens
        .rest
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')
    {
        let body = &tokens.rest[1..];
        let end = body.find(quote)?;
        let literal = &body[..end];
        // Escapes inside string literals are minijinja's to interpret.
        if literal.contains('\\') {
            return None;
        }
        tokens.rest = &body[end + 1..];
        return Some(Atom::Literal(literal.to_owned()));
    }
    let mut names = vec![tokens.ident()?];
    while let Some(rest) = tokens.rest.strip_prefix('.') {
        tokens.rest = rest;
        names.push(tokens.ident()?);
    }
    let path = match names.as_slice() {
        ["base"] => Path::Base,
        ["dialect"] => Path::Dialect,
        ["vars", k] => Path::Var((*k).to_owned()),
        ["path", k] => Path::Param((*k).to_owned()),
        ["user", "id"] => Path::User(UserField::Id),
        ["user", "ref"] => Path::User(UserField::Ref),
        ["user", "username"] => Path::User(UserField::Username),
        ["user", "admin"] => Path::User(UserField::Admin),
        ["user", "externally_managed"] => Path::User(UserField::ExternallyManaged),
        ["user", "profile", k] => Path::User(UserField::Profile((*k).to_owned())),
        ["user", "aliases", k] => Path::User(UserField::Alias((*k).to_owned())),
        _ => return None,
    };
    Some(Atom::Path(path))
}

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\n', '\r']);
    }

    /// A plain identifier (not one of the words minijinja reserves in expressions).
    fn ident(&mut self) -> Option<&'a str> {
        let end = (self.rest)
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        let word = &self.rest[..end];
        let reserved = [
            "or", "and", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False",
            "None",
        ];
        if word.is_empty()
            || word.starts_with(|c: char| c.is_ascii_digit())
            || reserved.contains(&word)
        {
            return None;
        }
        self.rest = &self.rest[end..];
        Some(word)
    }

    /// `word` followed by a non-identifier character.
    fn keyword(&mut self, word: &str) -> Option<()> {
        let rest = self.rest.strip_prefix(word)?;
        if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        self.rest = rest;
        Some(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use credgate_core::{Outcome, User};

    use super::*;
    use crate::{DialectSet, DialectSource, LoadOptions, RequestView};

    fn user(name: &str, profile: &[(&str, &str)], alias: Option<&str>, flag: bool) -> User {
        User {
            id: "5d0c-0001".into(),
            username: name.into(),
            admin: flag,
            externally_managed: !flag,
            aliases: alias
                .map(|a| ("akana".to_owned(), a.to_owned()))
                .into_iter()
                .collect(),
            profile: (profile.iter())
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            created_at: 0,
        }
    }

    /// Every shipped success body, for users whose fields need escaping, are empty or absent:
    /// the fast path gives minijinja's bytes, or leaves the body to it.
    #[test]
    fn every_shipped_body_renders_as_minijinja_renders_it() {
        let set = DialectSet::load(&DialectSource::embedded(), &LoadOptions::default()).unwrap();
        let users = [
            user("margaret@example.com", &[], None, false),
            user(
                "o\"brien\\</script>\u{1}\u{2028}é@example.com",
                &[
                    ("first_name", "Zoë \"Z\""),
                    ("last_name", ""),
                    ("email", "a\nb"),
                    ("avatar_url", "http://x/a?b=1&c=<2>"),
                ],
                Some("5d0c-0001.acmepaymentscorp"),
                true,
            ),
            user("x", &[("first_name", ""), ("avatar_url", "")], None, true),
        ];
        let mut fast = 0;
        for dialect in set.dialects() {
            for route in &dialect.routes {
                let Some(body) = &route.ok.fast_json else {
                    continue;
                };
                for u in &users {
                    let view = RequestView {
                        path: BTreeMap::from([("UserID".to_owned(), "id\"1".to_owned())]),
                        ..RequestView::default()
                    };
                    let outcome = Outcome::User { user: u.clone() };
                    let slow = dialect.render_ok_templated(route, &view, &outcome, Some(u), None);
                    let rendered = dialect.render_ok(route, &view, &outcome);
                    assert_eq!(
                        String::from_utf8_lossy(&rendered.body),
                        String::from_utf8_lossy(&slow.body),
                        "{} {}",
                        dialect.name,
                        route.spec.name
                    );
                    assert_eq!(rendered, slow, "{} {}", dialect.name, route.spec.name);
                    let scope = Scope {
                        base: &dialect.spec.base,
                        dialect: &dialect.name,
                        vars: &dialect.vars,
                        params: &view.path,
                        user: Some(u),
                    };
                    fast += usize::from(body.render(&scope).is_some());
                }
            }
        }
        // Akana's login/status and Crafter's get.json at least take the fast path.
        assert!(fast >= 6, "{fast}");
        for (dialect, route) in [("akana", "login_status"), ("crafter", "get_user")] {
            let d = set.get(dialect).unwrap();
            let r = d.routes.iter().find(|r| r.spec.name == route).unwrap();
            assert!(r.ok.fast_json.is_some(), "{dialect} {route}");
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all: String = (0u32..0x80).filter_map(char::from_u32).collect();
        all.push_str("é\u{2028}\u{10348}\"\\</");
        for s in [all.as_str(), "", "plain", "\u{7f}\u{1f}x"] {
            let mut out = String::new();
            write_json_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn only_the_fixed_shape_compiles() {
        for template in [
            r#"{"a": {{ user.username }}}"#,
            r#"{"a": {{ user.profile.x or "" }}, "b": {{ vars.a ~ "." ~ vars.b }}}}"#,
            "{{user.admin}}\n",
            r#"{{ 'x' }}"#,
        ] {
            assert!(JsonBody::compile(template).is_some(), "{template}");
        }
        for template in [
            r#"{"a": {{ user.username | upper }}}"#,
            r#"{% if user %}{{ user.username }}{% endif %}"#,
            r#"{{- user.username }}"#,
            r#"{{ user.username -}}"#,
            r#"{{ token.access }}"#,
            r#"{{ user.profile }}"#,
            r#"{{ user.username.x }}"#,
            r#"{{ "a\"b" }}"#,
            r#"{{ user.username }"#,
            r#"{{ user["username"] }}"#,
            r#"{{ 1 }}"#,
            r#"{# c #}{{ base }}"#,
        ] {
            assert!(JsonBody::compile(template).is_none(), "{template}");
        }
    }

    #[test]
    fn undefined_values_and_missing_users_go_to_minijinja() {
        let vars = BTreeMap::from([("a".to_owned(), "x".to_owned())]);
        let params = BTreeMap::new();
        let u = user("u", &[], None, false);
        let scope = |user| Scope {
            base: "/api",
            dialect: "akana",
            vars: &vars,
            params: &params,
            user,
        };
        let render = |t: &str, user| JsonBody::compile(t).unwrap().render(&scope(user));
        assert_eq!(render("{{ vars.missing }}", Some(&u)), None);
        assert_eq!(render("{{ vars.missing ~ 'a' }}", Some(&u)), None);
        assert_eq!(render("{{ user.username }}", None), None);
        assert_eq!(
            render("{{ vars.missing or vars.a }}", None),
            Some("\"x\"".into())
        );
        assert_eq!(
            render("{{ user.profile.k or '' }}", Some(&u)),
            Some("\"\"".into())
        );
        assert_eq!(
            render("{{ user.admin or 'no' }}", Some(&u)),
            Some("\"no\"".into())
        );
        assert_eq!(
            render("{{ base ~ '/' ~ dialect }}", None),
            Some("\"/api/akana\"".into())
        );
    }
}
