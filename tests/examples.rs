//! Every vendor example in `dialects/*/examples/` replayed verbatim against a fresh gateway.

use std::path::Path;

use credgate_dialect::example::load_dir;
use credgate_examples::runner::{replay, Target};

use crate::common::{self, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vendor_example_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialects");
    let examples = load_dir(&dir).unwrap();
    assert!(!examples.is_empty(), "no examples under {}", dir.display());
    let mut failures = Vec::new();
    for (dialect, file, example) in &examples {
        let gw = common::start().await;
        let target = Target::new(gw.url.clone(), Some(ADMIN_TOKEN.to_owned()));
        if let Err(diffs) = replay(&target, example).await {
            failures.push(format!(
                "{dialect}: {} ({})\n    {}",
                file.display(),
                example.description,
                diffs.join("\n    ")
            ));
        }
    }
    let passed = examples.len() - failures.len();
    println!(
        "vendor examples: {passed} passed, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}
