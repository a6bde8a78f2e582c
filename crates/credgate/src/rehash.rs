//! `credgate rehash`: wraps every weak legacy hash in bcrypt now, in the foreground, batch by
//! batch with a progress bar; `--dry-run` prints what it would wrap, by format; `--status`
//! prints how many users are stored in each format and state. Every batch commits on its own:
//! after an interruption, a new run carries on where the last one stopped (wrapped users are
//! no longer weak).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use credgate_core::{CredentialService, RequestMeta};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Users read per census page.
const CENSUS_PAGE: u32 = 5000;

#[derive(Debug, Clone, Copy)]
pub struct RehashOptions {
    pub dry_run: bool,
    pub status: bool,
    /// Users read per batch (one transaction each).
    pub batch: u32,
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} wrapped, {per_sec}, eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs the command; the text it prints on success.
pub async fn run(
    core: &CredentialService,
    options: RehashOptions,
    meta: &RequestMeta,
) -> Result<String, String> {
    let census = core
        .hash_census(CENSUS_PAGE)
        .await
        .map_err(|e| e.to_string())?;
    if options.status {
        let mut out = String::from("FORMAT\tSTATE\tUSERS\n");
        for ((format, state), users) in &census.counts {
            out.push_str(&format!("{format}\t{state}\t{users}\n"));
        }
        return Ok(out);
    }
    let bar = progress_bar(census.in_state("weak"));
    let started = Instant::now();
    let (mut after, mut weak, mut wrapped) = (String::new(), 0u64, 0u64);
    let mut by_format: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let batch = core
            .rehash_batch(&after, options.batch, usize::MAX, options.dry_run, meta)
            .await
            .map_err(|e| e.to_string())?;
        weak += batch.weak;
        wrapped += batch.wrapped;
        for (format, n) in batch.by_format {
            *by_format.entry(format).or_default() += n;
        }
        bar.inc(batch.weak);
        match batch.next {
            Some(next) => after = next,
            None => break,
        }
    }
    bar.finish_and_clear();
    let formats: Vec<String> = by_format.iter().map(|(f, n)| format!("{f}: {n}")).collect();
    let formats = if formats.is_empty() {
        String::new()
    } else {
        format!(" ({})", formats.join(", "))
    };
    Ok(if options.dry_run {
        format!("dry run: {weak} weak hashes would be wrapped{formats}\n")
    } else {
        let secs = started.elapsed().as_secs_f64();
        let changed = weak - wrapped;
        format!(
            "wrapped {wrapped} weak hashes{formats} in {secs:.1} s; {changed} changed meanwhile and were left\n"
        )
    })
}
