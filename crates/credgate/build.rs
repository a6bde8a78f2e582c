//! Stamps the binary with the git revision it was built from (`credgate --version`):
//! `CREDGATE_GIT_REVISION` from the environment when set (a build from a source archive or a
//! container without `.git`), else `git rev-parse`, else `unknown`. A checkout without git
//! or without `.git` still builds.

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
