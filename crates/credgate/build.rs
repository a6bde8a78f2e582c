//! Compiles the shipped vendor examples (`dialects/*/examples/*.toml`) into the binary, so
//! `credgate replay` works from an installed binary with no source tree around.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
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
