//! Two things the binary carries from its build:
//! - the git revision it was built from (`credgate --version`): `CREDGATE_GIT_REVISION` from
//!   the environment when set (a build from a source archive or a container without `.git`), else `git rev-parse`, else `unknown`. A checkout without git
//!   or without `.git` still builds;
//! - the shipped vendor examples (`dialects/*/examples/*.toml`), so `credgate replay` works
//!   from an installed binary with no source tree around.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    stamp_revision();
    embed_examples();
}

fn stamp_revision() {
    println!("cargo:rerun-if-env-changed=CREDGATE_GIT_REVISION");
    let revision = std::env::var("CREDGATE_GIT_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| {
            // Rebuild when a commit or checkout moves HEAD (only for files that exist: a
            // missing one would rerun this script on every build).
            for path in ["HEAD", "logs/HEAD"] {
                if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                    if std::path::Path::new(&p).exists() {
                        println!("cargo:rerun-if-changed={p}");
                    }
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CREDGATE_GIT_REVISION={revision}");
}

fn embed_examples() {
    let dialects = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialects");
    println!("cargo:rerun-if-changed={}", dialects.display());
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dialects) {
        for entry in entries.flatten() {
            let examples = entry.path().join("examples");
            let Ok(files) = std::fs::read_dir(&examples) else {
                continue;
            };
            let dialect = entry.file_name().to_string_lossy().into_owned();
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|x| x == "toml") {
                    let name = file.file_name().to_string_lossy().into_owned();
                    found.push((dialect.clone(), name, path));
                }
            }
        }
    }
    found.sort();
    let mut code = String::from("pub const EXAMPLES: &[(&str, &str, &str)] = &[\n");
    for (dialect, name, path) in &found {
        let _ = writeln!(
            code,
            "    ({dialect:?}, {name:?}, include_str!({:?})),",
            path.canonicalize()
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string()
        );
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("examples.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
