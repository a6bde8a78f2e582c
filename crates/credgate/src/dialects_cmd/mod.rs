//! `credgate dialects list | show | check | openapi | reload`: what the gateway serves, a lint
//! for dialect files before they are deployed, their OpenAPI documents, and a reload of a
//! running gateway through its admin API.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use credgate_core::Error as CoreError;
use credgate_dialect::openapi::command_name;
use credgate_dialect::spec::{AuthScheme, ClientAuth, CsrfStyle, TokenRequirement};
use credgate_dialect::{Dialect, DialectSet, DialectSource, LoadError};
use credgate_server::Settings;

mod reload;

#[derive(Subcommand)]
pub enum DialectsCmd {
    /// The loaded dialects (shipped and configured, minus disabled) with their routes.
    List,
    /// One dialect in detail: routes, fields and their sources, auth, error table.
    Show { name: String },
    /// Lint dialect files before deploying them; without PATH, the configured set. A PATH is
    /// a folder of `<name>/dialect.toml`, one dialect folder, or one dialect.toml.
    Check { paths: Vec<PathBuf> },
    /// Print a dialect's OpenAPI 3.1 document; `native` for the native and admin APIs.
    Openapi { name: String },
    /// Ask a running gateway to re-read its dialect folders (swapped in only if every changed
    /// dialect's examples pass).
    Reload {
        /// The gateway's base URL (default: http:// + the configured `listen`).
        #[arg(long)]
        target: Option<String>,
        /// The admin token (default: the configured `admin_token` / CREDGATE_ADMIN_TOKEN).
        #[arg(long, env = "CREDGATE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

pub async fn run(cmd: DialectsCmd, settings: &Settings) -> Result<(), String> {
    match cmd {
        DialectsCmd::List => {
            let set = loaded(settings)?;
            print!("{}", list(&set));
            Ok(())
        }
        DialectsCmd::Show { name } => {
            let set = loaded(settings)?;
            let d = set.get(&name).ok_or_else(|| no_such(&set, &name))?;
            print!("{}", show(d));
            Ok(())
        }
        DialectsCmd::Check { paths } => check(settings, &paths),
        DialectsCmd::Openapi { name } => {
            let doc = if name == "native" {
                credgate_server::openapi::native()
            } else {
                let set = loaded(settings)?;
                let d = set.get(&name).ok_or_else(|| no_such(&set, &name))?;
                credgate_dialect::openapi::document(d)
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        DialectsCmd::Reload {
            target,
            admin_token,
        } => {
            let target = target.unwrap_or_else(|| format!("http://{}", settings.listen));
            let token = admin_token
                .or_else(|| settings.admin_token.as_ref().map(|t| t.expose().to_owned()))
                .ok_or("an admin token is needed: --admin-token or CREDGATE_ADMIN_TOKEN")?;
            reload::reload(&target, &token).await
        }
    }
}

fn no_such(set: &DialectSet, name: &str) -> String {
    let names: Vec<&str> = set.dialects().iter().map(|d| d.name.as_str()).collect();
    format!(
        "no dialect named `{name}` is loaded (loaded: {})",
        names.join(", ")
    )
}

/// The shipped dialects, then those of the configured folders.
fn configured_sources(settings: &Settings) -> Result<Vec<DialectSource>, LoadError> {
    let mut sources = DialectSource::embedded();
    for dir in &settings.dialects.dirs {
        sources.extend(DialectSource::from_dir(dir)?);
    }
    Ok(sources)
}

fn loaded(settings: &Settings) -> Result<DialectSet, String> {
    credgate_server::app::load_dialects(settings).map_err(|e| e.to_string())
}

fn auth_summary(d: &Dialect) -> String {
    let auth = &d.spec.auth;
    let mut s = match auth.scheme {
        AuthScheme::Bearer => "bearer".to_owned(),
        AuthScheme::Cookie => format!("cookie {}", d.session_cookie().unwrap_or("?")),
    };
    if let Some(c) = auth.csrf.as_ref() {
        let style = match c.style {
            CsrfStyle::Session => "session",
            CsrfStyle::DoubleSubmit => "double submit",
        };
        let state = if c.enabled { "" } else { ", not checked" };
        let header = d.csrf_header().unwrap_or("?");
        let _ = write!(s, " + CSRF {style} (header {header}{state})");
    }
    if let Some(k) = &auth.app_key {
        let _ = write!(s, " + app key header {}", k.header);
    }
    s
}

fn list(set: &DialectSet) -> String {
    let mut out = String::new();
    for d in set.dialects() {
        let _ = writeln!(out, "{}  ({})", d.name, d.origin);
        let _ = writeln!(out, "  auth: {}", auth_summary(d));
        for r in &d.routes {
            let _ = writeln!(
                out,
                "  {:<6} {:<60} {}",
                r.spec.method,
                r.path.template,
                command_name(r.spec.command)
            );
        }
    }
    out
}

fn show(d: &Dialect) -> String {
    let spec = &d.spec;
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", d.name, spec.description);
    let _ = writeln!(out, "source:        {}", d.origin);
    let _ = writeln!(out, "base path:     {}", spec.base);
    let _ = writeln!(out, "content type:  {}", spec.content_type);
    let _ = writeln!(
        out,
        "field names:   {}",
        if spec.case_insensitive_fields {
            "case-insensitive"
        } else {
            "exact"
        }
    );
    let _ = writeln!(out, "auth:          {}", auth_summary(d));
    for (k, v) in &d.vars {
        let _ = writeln!(out, "var:           {k} = {v}");
    }
    for r in &d.routes {
        let s = &r.spec;
        let _ = writeln!(out, "\nroute {}: {} {}", s.name, s.method, r.path.template);
        let token = match s.token {
            TokenRequirement::User => "user session",
            TokenRequirement::Client => "client token",
            TokenRequirement::None => "none",
        };
        let _ = writeln!(
            out,
            "  command {}; token: {token}; body: {:?}",
            command_name(s.command),
            s.body
        );
        if s.client_auth != ClientAuth::None {
            let _ = writeln!(out, "  client credentials: {:?}", s.client_auth);
        }
        if let Some(subject) = &s.subject {
            let src = subject.id.as_ref().or(subject.username.as_ref());
            if let Some(src) = src {
                let _ = writeln!(out, "  subject <- {}", src.list().join(" | "));
            }
        }
        for (field, src) in &s.fields {
            let req = if s.required.contains(field) {
                " (required)"
            } else {
                ""
            };
            let _ = writeln!(out, "  {field} <- {}{req}", src.list().join(" | "));
        }
        let _ = writeln!(out, "  ok: {}", s.ok.status);
        for (kind, r) in &s.errors {
            let _ = writeln!(out, "  {kind}: {} (route override)", r.status);
        }
    }
    let _ = writeln!(out, "\nerror table:");
    for kind in CoreError::KINDS {
        match spec.errors.get(*kind) {
            Some(r) => {
                let ct = r.content_type.as_deref().unwrap_or(&spec.content_type);
                let body = if r.body.is_empty() { "no body" } else { ct };
                let _ = writeln!(out, "  {kind:<24} {} {body}", r.status);
            }
            None => {
                let _ = writeln!(out, "  {kind:<24} UNMAPPED");
            }
        }
    }
    out
}

/// The dialect files a PATH names.
fn sources_at(path: &Path) -> Result<Vec<DialectSource>, LoadError> {
    let read = |file: &Path| {
        std::fs::read_to_string(file)
            .map(|text| DialectSource {
                origin: file.display().to_string(),
                text,
            })
            .map_err(|e| LoadError {
                origin: file.display().to_string(),
                line: None,
                message: e.to_string(),
            })
    };
    if path.is_file() {
        return Ok(vec![read(path)?]);
    }
    let own = path.join("dialect.toml");
    if own.is_file() {
        return Ok(vec![read(&own)?]);
    }
    let found = DialectSource::from_dir(path)?;
    if found.is_empty() {
        return Err(LoadError {
            origin: path.display().to_string(),
            line: None,
            message: "no dialect.toml here, nor in any folder directly below".into(),
        });
    }
    Ok(found)
}

/// Lints the configured set plus the given paths (which replace same-named dialects, as a
/// deployment would): every problem is printed as `file:line: message`.
fn check(settings: &Settings, paths: &[PathBuf]) -> Result<(), String> {
    let mut problems: Vec<LoadError> = Vec::new();
    let mut sources = match configured_sources(settings) {
        Ok(s) => s,
        Err(e) => {
            problems.push(e);
            DialectSource::embedded()
        }
    };
    let mut checked = Vec::new();
    for path in paths {
        match sources_at(path) {
            Ok(found) => checked.extend(found),
            Err(e) => problems.push(e),
        }
    }
    let files = if paths.is_empty() {
        sources.len()
    } else {
        checked.len()
    };
    sources.extend(checked);
    let routes = match DialectSet::load_all(&sources, &credgate_server::app::load_options(settings))
    {
        Ok(set) => set.dialects().iter().map(|d| d.routes.len()).sum(),
        Err(found) => {
            problems.extend(found);
            0
        }
    };
    if problems.is_empty() {
        println!("OK: {files} dialect file(s) checked, {routes} routes served without clashes");
        return Ok(());
    }
    for p in &problems {
        println!("{p}");
    }
    Err(format!("{} problem(s) found", problems.len()))
}
