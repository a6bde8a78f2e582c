//! The shipped vendor examples, compiled into the binary by `build.rs`: `credgate replay`
//! needs no source tree (a container, a package, an empty folder).

use std::path::PathBuf;

use credgate_dialect::example::Example;

use crate::replay::Found;

// (dialect, file name, text) of every `dialects/*/examples/*.toml`, sorted.
include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// Every embedded example, parsed; each named `dialects/<dialect>/examples/<file> (embedded)`.
pub fn examples() -> Result<Vec<Found>, String> {
    EXAMPLES
        .iter()
        .map(|(dialect, file, text)| {
            let origin = PathBuf::from(format!("dialects/{dialect}/examples/{file} (embedded)"));
            let example = Example::parse(text).map_err(|e| format!("{}: {e}", origin.display()))?;
            Ok(((*dialect).to_owned(), origin, example))
        })
        .collect()
}

/// The embedded examples with `given` (from `--examples` folders) laid over them: a dialect
/// found in `given` replaces the embedded examples of that dialect; new dialects are added.
pub fn overlay(embedded: Vec<Found>, given: Vec<Found>) -> Vec<Found> {
    let mut out: Vec<Found> = embedded
        .into_iter()
        .filter(|(d, _, _)| !given.iter().any(|(g, _, _)| g == d))
        .collect();
    out.extend(given);
    // Grouped by dialect (stable: each dialect's files keep their order).
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_dialect_has_embedded_examples_that_parse() {
        let all = examples().unwrap_or_default();
        for dialect in ["akana", "crafter", "crayon", "etapp", "oauth-style"] {
            assert!(all.iter().any(|(d, _, _)| d == dialect), "{dialect}");
        }
        assert_eq!(all.len(), EXAMPLES.len());
    }

    #[test]
    fn a_given_folder_replaces_its_dialect_and_adds_new_ones() {
        let all = examples().unwrap_or_default();
        let one = |d: &str| {
            let (_, _, e) = all[0].clone();
            (d.to_owned(), PathBuf::from(format!("{d}/x.toml")), e)
        };
        let merged = overlay(all.clone(), vec![one("crafter"), one("zeta")]);
        assert_eq!(merged.iter().filter(|(d, _, _)| d == "crafter").count(), 1);
        assert_eq!(merged.iter().filter(|(d, _, _)| d == "zeta").count(), 1);
        let akana = |v: &[Found]| v.iter().filter(|(d, _, _)| d == "akana").count();
        assert_eq!(akana(&merged), akana(&all));
    }
}
