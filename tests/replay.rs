//! `credgate replay`, `completions` and `man`: the real binary against a gateway started here.

use std::path::{Path, PathBuf};
use std::process::Output;

use credgate_dialect::example::load_dir;

use crate::common::{self, ADMIN_TOKEN};

const BIN: &str = env!("CARGO_BIN_EXE_credgate");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary without blocking the runtime the test gateway lives on.
async fn credgate(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("CREDGATE_ADMIN_TOKEN")
        .env_remove("CREDGATE_CONFIG")
        .output()
        .await
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (dialect, has setup) of every shipped example.
fn shipped() -> Vec<(String, bool)> {
    load_dir(&repo().join("dialects"))
        .unwrap()
        .into_iter()
        .map(|(d, _, e)| {
            let s = &e.setup;
            (
                d,
                !(s.users.is_empty() && s.clients.is_empty() && s.apps.is_empty()),
            )
        })
        .collect()
}

fn junit(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// (tests, failures, skipped) of the root element.
fn root_counts(xml: &str) -> (usize, usize, usize) {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let n = |a: &str| root.attribute(a).unwrap().parse::<usize>().unwrap();
    (n("tests"), n("failures"), n("skipped"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_example_passes_twice_against_one_gateway() {
    let gw = common::start().await;
    let examples = shipped();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.xml");
    // The examples are built into the binary: any folder will do.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args = [
        "replay",
        "--target",
        &gw.url,
        "--admin-token",
        ADMIN_TOKEN,
        "--junit",
        report.to_str().unwrap(),
    ];
    let out = credgate(here, &args).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let summary = format!("{} passed, 0 failed\n", examples.len());
    assert!(text.ends_with(&summary), "{text}");
    assert_eq!(text.matches("\nPASS ").count(), examples.len(), "{text}");

    let xml = junit(&report);
    assert_eq!(root_counts(&xml), (examples.len(), 0, 0));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let mut dialects: Vec<&str> = examples.iter().map(|(d, _)| d.as_str()).collect();
    dialects.dedup();
    assert_eq!(suites.len(), dialects.len());
    for suite in suites {
        let name = suite.attribute("name").unwrap();
        let want = examples.iter().filter(|(d, _)| d == name).count();
        let cases = suite.children().filter(|n| n.has_tag_name("testcase"));
        assert_eq!(cases.count(), want, "suite {name}");
        assert_eq!(suite.attribute("tests").unwrap(), want.to_string());
    }

    // A second replay against the same, now used, gateway: isolated, so it passes again.
    let out = credgate(here, &args[..5]).await;
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).ends_with(&summary));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_example_fails_with_a_diff_naming_the_field() {
    let gw = common::start().await;
    let dir = tempfile::tempdir().unwrap();
    let examples = dir.path().join("crafter/examples");
    std::fs::create_dir_all(&examples).unwrap();
    let original =
        std::fs::read_to_string(repo().join("dialects/crafter/examples/login-ok.toml")).unwrap();
    let altered = original.replace("\"first_name\": \"Jane\"", "\"first_name\": \"Janet\"");
    assert_ne!(
        altered, original,
        "the example changed shape; alter another field"
    );
    std::fs::write(examples.join("login-ok.toml"), altered).unwrap();
    let report = dir.path().join("report.xml");

    let out = credgate(
        dir.path(),
        &[
            "replay",
            "--target",
            &gw.url,
            "--admin-token",
            ADMIN_TOKEN,
            "--examples",
            dir.path().to_str().unwrap(),
            "--dialect",
            "crafter",
            "--junit",
            report.to_str().unwrap(),
        ],
    )
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL crafter/login-ok"), "{text}");
    assert!(
        text.contains("body /first_name: expected \"Janet\", got \"Jane\""),
        "{text}"
    );
    assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");

    let xml = junit(&report);
    assert_eq!(root_counts(&xml), (1, 1, 0));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure
        .attribute("message")
        .unwrap()
        .contains("/first_name"));
    assert!(failure.text().unwrap().contains("expected \"Janet\""));
}

/// The acceptance: a gateway started from the binary alone, and `credgate replay` run
/// from an empty folder (no source tree): every shipped example passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_the_binary_alone_in_empty_folders() {
    let gw = common::TracedBinary::start(ADMIN_TOKEN).await;
    let empty = tempfile::tempdir().unwrap();
    let out = credgate(
        empty.path(),
        &["replay", "--target", &gw.url, "--admin-token", ADMIN_TOKEN],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let summary = format!("{} passed, 0 failed\n", shipped().len());
    assert!(text.ends_with(&summary), "{text}");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialect_filter_replays_only_the_named_dialects() {
    let gw = common::start().await;
    let want = shipped()
        .iter()
        .filter(|(d, _)| d == "crayon" || d == "etapp")
        .count();
    let out = credgate(
        &repo(),
        &[
            "replay",
            "--target",
            &gw.url,
            "--admin-token",
            ADMIN_TOKEN,
            "--dialect",
            "crayon",
            "--dialect",
            "etapp",
        ],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.ends_with(&format!("{want} passed, 0 failed\n")),
        "{text}"
    );
    assert!(
        !text.contains("akana/") && !text.contains("crafter/"),
        "{text}"
    );

    let out = credgate(
        &repo(),
        &["replay", "--target", &gw.url, "--dialect", "no-such"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no examples for dialect `no-such`"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_setup_examples_are_skipped_with_the_reason() {
    let examples = shipped();
    let needing = examples.iter().filter(|(_, setup)| *setup).count();
    let free = examples.len() - needing;
    assert!(needing > 0 && free > 0);
    let summary = format!("{free} passed, 0 failed, {needing} skipped\n");

    let gw = common::start().await;
    let out = credgate(&repo(), &["replay", "--target", &gw.url]).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.ends_with(&summary), "{text}");
    assert_eq!(
        text.matches("no admin token was given").count(),
        needing,
        "{text}"
    );

    // A target without the admin API (like a vendor's own system): skipped, saying so.
    let bare = common::start_with(|s, _| s.admin_token = None).await;
    let out = credgate(
        &repo(),
        &["replay", "--target", &bare.url, "--admin-token", "any"],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.ends_with(&summary), "{text}");
    assert!(text.contains("has no credgate admin API"), "{text}");

    // A wrong token stops before replaying anything.
    let out = credgate(
        &repo(),
        &["replay", "--target", &gw.url, "--admin-token", "wrong"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refused the admin token"));
}

#[tokio::test]
async fn completions_and_man_page() {
    let dir = tempfile::tempdir().unwrap();
    // A broken config file does not matter to commands that need none.
    std::fs::write(dir.path().join("config.toml"), "listen = [").unwrap();
    let out = credgate(dir.path(), &["completions", "bash"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.contains("credgate") && script.contains("replay"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = credgate(dir.path(), &["completions", shell]).await;
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let out = credgate(dir.path(), &["completions", "tcsh"]).await;
    assert_eq!(out.status.code(), Some(2));

    let out = credgate(dir.path(), &["man"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with(".ie") || page.contains("\n.TH"), "{page}");
    assert!(
        page.contains(".TH credgate") && page.contains("replay"),
        "{page}"
    );
}
