//! `credgate export`: every user with its current hash (never a password), streamed page by
//! page in username order, in the format `credgate import` reads.

use std::io::Write;
use std::path::Path;

use credgate_core::CredentialService;

use super::format::{self, Format};

/// Users per store query.
const PAGE: u32 = 2000;

/// Writes every user to `path`, which must not exist yet (it holds hashes: created with mode
/// 0600 on Unix), or to standard output when `path` is `-`. Returns how many users were
/// written.
pub async fn run(core: &CredentialService, path: &Path, format: Format) -> Result<u64, String> {
    if path == Path::new("-") {
        let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
        let (count, mut out) = write_all(core, out, format).await?;
        out.flush().map_err(|e| format!("write failed: {e}"))?;
        return Ok(count);
    }
    let file =
        create_private(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let written = write_all(
        core,
        std::io::BufWriter::with_capacity(1 << 16, file),
        format,
    )
    .await
    .and_then(|(count, out)| {
        finish(out).map_err(|e| format!("write failed: {e}"))?;
        Ok(count)
    });
    if written.is_err() {
        // A partial export must not pass for a whole one.
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Writes every user to `out`; returns the count and the writer, for the caller to finish.
async fn write_all<W: Write>(
    core: &CredentialService,
    out: W,
    format: Format,
) -> Result<(u64, W), String> {
    let io = |e: std::io::Error| format!("write failed: {e}");
    let mut csv_out = None;
    let mut json_out = None;
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(format::EXPORT_FIELDS)
                .map_err(|e| e.to_string())?;
            csv_out = Some(w);
        }
        Format::Jsonl => json_out = Some(out),
        Format::Auth0 => {
            return Err("export writes csv or jsonl (--format auth0 is for import)".into())
        }
    }
    let mut count = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = core
            .store()
            .export_users(after.as_deref(), PAGE)
            .await
            .map_err(|e| format!("export stopped after {count} users: {e}"))?;
        let Some(last) = page.last() else { break };
        after = Some(last.user.username.clone());
        for user in &page {
            if let Some(w) = csv_out.as_mut() {
                w.write_record(format::csv_cells(user))
                    .map_err(|e| e.to_string())?;
            }
            if let Some(w) = json_out.as_mut() {
                writeln!(w, "{}", format::json_line(user)).map_err(io)?;
            }
            count += 1;
        }
    }
    let out = match (csv_out, json_out) {
        (Some(w), _) => w.into_inner().map_err(|e| e.to_string())?,
        (None, Some(w)) => w,
        (None, None) => return Err("no writer".into()),
    };
    Ok((count, out))
}

/// Flushes and syncs, so "exported" means on disk.
fn finish(w: std::io::BufWriter<std::fs::File>) -> std::io::Result<()> {
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
