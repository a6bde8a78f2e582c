//! `credgate replay`: the vendor examples replayed against a running deployment, so an operator
//! proves a migration before switching clients over. Each example is isolated (its users,
//! clients and keys get a prefix unique to this run) so replays against one long-running
//! gateway do not collide with each other or with earlier runs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use credgate_dialect::example::{load_dir, Example};

use credgate_examples::isolate;
use credgate_examples::runner::{self, Outcome, Target};

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Base URL of the deployment: a credgate gateway, or the vendor's own system.
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// Replay only this dialect's examples (repeatable; default: every dialect found).
    #[arg(long = "dialect", value_name = "NAME")]
    pub dialects: Vec<String>,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The target's admin token, to create what each example needs. Without it, examples that
    /// need setup are skipped with the reason.
    #[arg(long, env = "CREDGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// More examples (repeatable): a folder of dialect folders, one dialect folder, or an
    /// examples folder. The shipped examples are built into the binary; a dialect found here
    /// replaces its shipped examples, a new one is added.
    #[arg(long = "examples", value_name = "DIR")]
    pub examples: Vec<PathBuf>,
}

/// One replayed example.
#[derive(Debug, Clone)]
pub struct Record {
    pub dialect: String,
    /// The file name without `.toml`.
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    pub outcome: Outcome,
    pub seconds: f64,
}

/// An example found on disk: (dialect, file, example).
pub type Found = (String, PathBuf, Example);

/// `credgate replay`: 0 when every example that ran passed (and one did), 1 when any failed
/// or none ran, 2 when it could not start (no examples, unreachable target, refused token).
pub fn main(args: ReplayArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("credgate replay: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("credgate replay: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: ReplayArgs) -> Result<ExitCode, String> {
    let found = crate::embedded::overlay(crate::embedded::examples()?, load(&args.examples)?);
    let examples = select(found, &args.dialects)?;
    let target = Target::new(&args.target, args.admin_token.clone());
    preflight(&target).await?;
    let run_id = isolate::run_id();
    println!(
        "replaying {} examples against {} (identities prefixed rp{run_id}-N-)",
        examples.len(),
        target.base_url
    );
    let progress = Progress::new(examples.len());
    let records = replay_all(&target, &examples, Some(&run_id), |r| progress.report(r)).await;
    progress.finish();
    let (passed, failed, skipped) = tally(&records);
    let limited = records
        .iter()
        .filter(|r| matches!(&r.outcome, Outcome::Failed(m) if m.iter().any(|m| m.rate_limited())))
        .count();
    if limited > 0 {
        println!(
            "note: {limited} failed because the target's guessing limit refused this address \
             (each replay makes about 20 deliberate failed attempts; wait for Retry-After or \
             raise [limits] address_failures, or code_failures for one-time codes)"
        );
    }
    println!("{}", summary(passed, failed, skipped));
    if let Some(path) = &args.junit {
        std::fs::write(path, crate::junit::render(&records))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        if passed == 0 && failed == 0 {
            eprintln!("credgate replay: no example ran, so nothing was proven");
        }
        ExitCode::FAILURE
    })
}

/// Replays `examples` one after another; `isolate_run` (a [`isolate::run_id`]) gives each
/// example's identities a prefix of their own. `each` sees every record as it is made.
pub async fn replay_all(
    target: &Target,
    examples: &[Found],
    isolate_run: Option<&str>,
    mut each: impl FnMut(&Record),
) -> Vec<Record> {
    let mut records = Vec::with_capacity(examples.len());
    for (index, (dialect, file, example)) in examples.iter().enumerate() {
        let started = Instant::now();
        let outcome = match isolate_run {
            Some(run) => {
                let isolated = isolate::isolate(example, &isolate::prefix(run, index + 1));
                runner::run(target, &isolated).await
            }
            None => runner::run(target, example).await,
        };
        let record = Record {
            dialect: dialect.clone(),
            name: file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            description: example.description.clone(),
            file: file.clone(),
            outcome,
            seconds: started.elapsed().as_secs_f64(),
        };
        each(&record);
        records.push(record);
    }
    records
}

/// (passed, failed, skipped).
pub fn tally(records: &[Record]) -> (usize, usize, usize) {
    records
        .iter()
        .fold((0, 0, 0), |(p, f, s), r| match r.outcome {
            Outcome::Passed => (p + 1, f, s),
            Outcome::Failed(_) => (p, f + 1, s),
            Outcome::Skipped(_) => (p, f, s + 1),
        })
}

/// `N passed, N failed`, with `, N skipped` when any were.
pub fn summary(passed: usize, failed: usize, skipped: usize) -> String {
    let mut line = format!("{passed} passed, {failed} failed");
    if skipped > 0 {
        line.push_str(&format!(", {skipped} skipped"));
    }
    line
}

/// The lines printed for one record: a status line, then one indented line per mismatch.
pub fn describe(r: &Record) -> String {
    let id = format!("{}/{}", r.dialect, r.name);
    match &r.outcome {
        Outcome::Passed => format!("PASS {id}"),
        Outcome::Skipped(reason) => format!("SKIP {id}: {reason}"),
        Outcome::Failed(mismatches) => {
            let mut out = format!("FAIL {id} ({})\n     {}", r.file.display(), r.description);
            for m in mismatches {
                out.push_str(&format!("\n     - {m}"));
            }
            out
        }
    }
}

/// The target must answer HTTP, and accept the admin token when one is given: otherwise
/// every example would fail the same way.
async fn preflight(target: &Target) -> Result<(), String> {
    let probe = |path: &str| {
        let req = target.client.get(format!("{}{path}", target.base_url));
        match &target.admin_token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    };
    let path = if target.admin_token.is_some() {
        "/admin/users?limit=1"
    } else {
        "/"
    };
    let res = probe(path)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", target.base_url))?;
    if target.admin_token.is_some() && matches!(res.status().as_u16(), 401 | 403) {
        return Err(format!(
            "the target refused the admin token (GET /admin/users answered {})",
            res.status()
        ));
    }
    Ok(())
}

/// Every example under `dirs`, each of which is a folder of dialect folders, one dialect
/// folder (with examples/), or an examples folder (the dialect is its parent's name).
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Found>, String> {
    let mut out = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(format!("{}: not a folder", dir.display()));
        }
        let found = if dir.join("examples").is_dir() {
            load_folder(&dir_name(dir), &dir.join("examples"))?
        } else if has_toml(dir)? {
            let name = if dir.file_name().is_some_and(|n| n == "examples") {
                dir.parent().map(dir_name).unwrap_or_default()
            } else {
                dir_name(dir)
            };
            load_folder(&name, dir)?
        } else {
            load_dir(dir)?
        };
        if found.is_empty() {
            return Err(format!("no examples (*.toml) in {}", dir.display()));
        }
        out.extend(found);
    }
    Ok(out)
}

/// Keeps the named dialects (all when none are named); an unknown name is an error.
fn select(found: Vec<Found>, dialects: &[String]) -> Result<Vec<Found>, String> {
    if let Some(missing) = dialects.iter().find(|d| !found.iter().any(|f| &f.0 == *d)) {
        let mut known: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
        known.dedup();
        return Err(format!(
            "no examples for dialect `{missing}` (found: {})",
            known.join(", ")
        ));
    }
    Ok(found
        .into_iter()
        .filter(|f| dialects.is_empty() || dialects.contains(&f.0))
        .collect())
}

fn dir_name(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn has_toml(dir: &Path) -> Result<bool, String> {
    Ok(!toml_files(dir)?.is_empty())
}

fn load_folder(dialect: &str, dir: &Path) -> Result<Vec<Found>, String> {
    toml_files(dir)?
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let example = Example::parse(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            Ok((dialect.to_owned(), f, example))
        })
        .collect()
}

/// A progress bar on a terminal (stderr); plain result lines on stdout either way.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(len: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(len as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Self { bar }
    }

    fn report(&self, record: &Record) {
        let line = describe(record);
        match &self.bar {
            Some(bar) => {
                bar.suspend(|| println!("{line}"));
                bar.set_message(format!("{}/{}", record.dialect, record.name));
                bar.inc(1);
            }
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
