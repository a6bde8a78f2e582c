//! `credgate import`: streams a file of users into the store in batches, reporting every row
//! that is bad (file:line and why) or conflicts with a stored user, and one summary.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::io::{BufReader, IsTerminal};
use std::path::Path;
use std::time::{Duration, Instant};

use credgate_core::import::{ImportOptions, ImportOutcome, ImportRow, ImportSecret};
use credgate_core::{CredentialService, RequestMeta};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::bounded::{read_bounded_line, BoundedCsv, MAX_ROW_BYTES};
use super::format::{self, Format};

/// Rows per store transaction.
const BATCH: usize = 2000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub conflicts: u64,
    pub bad: u64,
    pub plain_passwords: u64,
}

impl ImportSummary {
    /// Rows that were not applied as the file says.
    pub fn failed(&self) -> u64 {
        self.conflicts + self.bad
    }
}

/// First line on which each username, id and alias appeared: a later row repeating one is
/// bad. Keys are 128-bit fingerprints, so a million rows cost megabytes, not the strings.
struct SeenInFile {
    hashers: (RandomState, RandomState),
    first_line: HashMap<u128, u64>,
}

impl SeenInFile {
    fn new() -> Self {
        Self {
            hashers: (RandomState::new(), RandomState::new()),
            first_line: HashMap::new(),
        }
    }

    fn fingerprint(&self, key: impl Hash + Copy) -> u128 {
        (u128::from(self.hashers.0.hash_one(key)) << 64) | u128::from(self.hashers.1.hash_one(key))
    }

    /// Records the row's names; the first one already seen, with its line, is an error.
    fn claim(&mut self, row: &ImportRow, line: u64) -> Result<(), String> {
        let mut keys = vec![(
            self.fingerprint(("u", row.username.as_str())),
            "username".to_owned(),
        )];
        if let Some(id) = &row.id {
            keys.push((self.fingerprint(("i", id.as_str())), "id".to_owned()));
        }
        for (dialect, external_id) in &row.aliases {
            let key = self.fingerprint(("a", dialect.as_str(), external_id.as_str()));
            keys.push((key, format!("alias {dialect}={external_id}")));
        }
        for (key, what) in &keys {
            if let Some(first) = self.first_line.get(key) {
                return Err(format!("duplicate {what} (first on line {first})"));
            }
        }
        for (key, _) in keys {
            self.first_line.insert(key, line);
        }
        Ok(())
    }
}

/// A row's line number, and the row or why it is bad.
type LineRow = (u64, Result<format::RawRow, String>);

/// Where rows come from: a file, or standard input for `-`.
type Input = Box<dyn std::io::Read + Send>;

/// Where rows come from: each with its line number, or the reason it cannot be read.
enum Rows {
    Csv {
        reader: Box<csv::Reader<BoundedCsv<BufReader<Input>>>>,
        header: Vec<usize>,
        record: csv::ByteRecord,
    },
    Jsonl {
        reader: BufReader<Input>,
        line: u64,
        bytes: u64,
        buf: Vec<u8>,
    },
    /// Auth0's array, read whole; the "line" of a row is the user's position in the array.
    Auth0 {
        users: std::vec::IntoIter<serde_json::Value>,
        index: u64,
        bytes: u64,
    },
}

impl Rows {
    fn open(path: &Path, format: Format) -> Result<Self, String> {
        let file: Input = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
            )
        };
        let reader = BufReader::with_capacity(1 << 16, file);
        Ok(match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .from_reader(BoundedCsv::new(reader, MAX_ROW_BYTES));
                let header = reader
                    .headers()
                    .map_err(|e| format!("{}: cannot read the header row: {e}", path.display()))?;
                let header =
                    format::csv_header(header).map_err(|e| format!("{}:1: {e}", path.display()))?;
                Rows::Csv {
                    reader: Box::new(reader),
                    header,
                    record: csv::ByteRecord::new(),
                }
            }
            Format::Jsonl => Rows::Jsonl {
                reader,
                line: 0,
                bytes: 0,
                buf: Vec::new(),
            },
            Format::Auth0 => {
                let mut text = String::new();
                let mut reader = reader;
                std::io::Read::read_to_string(&mut reader, &mut text)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let users =
                    super::auth0::users(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                Rows::Auth0 {
                    users: users.into_iter(),
                    index: 0,
                    bytes: text.len() as u64,
                }
            }
        })
    }

    /// The next row: `None` at the end, else its line and the row or why it is bad.
    fn next(&mut self) -> Result<Option<LineRow>, String> {
        match self {
            Rows::Csv {
                reader,
                header,
                record,
            } => match reader.read_byte_record(record) {
                Ok(false) => Ok(None),
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line());
                    if reader.get_ref().oversized.contains(&line) {
                        let why = format!("the row is longer than {MAX_ROW_BYTES} bytes");
                        return Ok(Some((line, Err(why))));
                    }
                    if record.len() != header.len() {
                        let why = format!(
                            "{} fields where the header has {}",
                            record.len(),
                            header.len()
                        );
                        return Ok(Some((line, Err(why))));
                    }
                    Ok(Some((line, format::csv_row(header, record))))
                }
                Err(e) => match e.kind() {
                    csv::ErrorKind::Io(_) => Err(format!("read failed: {e}")),
                    _ => {
                        let line = e.position().map_or(0, |p| p.line());
                        Ok(Some((line, Err("malformed CSV record".into()))))
                    }
                },
            },
            Rows::Jsonl {
                reader,
                line,
                bytes,
                buf,
            } => loop {
                // Never more than the bound in memory: a longer line is read past, and reported.
                let (read, cut) = read_bounded_line(reader, MAX_ROW_BYTES + 2, buf)
                    .map_err(|e| format!("read failed: {e}"))?;
                if read == 0 {
                    return Ok(None);
                }
                *line += 1;
                *bytes += read as u64;
                let content = buf.strip_suffix(b"\n").unwrap_or(buf);
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                if cut || content.len() > MAX_ROW_BYTES {
                    let why = format!("the row is longer than {MAX_ROW_BYTES} bytes");
                    return Ok(Some((*line, Err(why))));
                }
                let Ok(text) = std::str::from_utf8(buf) else {
                    return Ok(Some((*line, Err("not valid UTF-8".into()))));
                };
                if text.trim().is_empty() {
                    continue;
                }
                return Ok(Some((*line, format::json_row(text.trim_end()))));
            },
            Rows::Auth0 { users, index, .. } => Ok(users.next().map(|user| {
                *index += 1;
                (*index, super::auth0::user_row(&user))
            })),
        }
    }

    fn bytes_read(&self) -> u64 {
        match self {
            Rows::Csv { reader, .. } => reader.position().byte(),
            Rows::Jsonl { bytes, .. } | Rows::Auth0 { bytes, .. } => *bytes,
        }
    }
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Up to [`BATCH`] valid rows with their lines, and the bad rows met while reading them.
#[derive(Default)]
struct Chunk {
    rows: Vec<ImportRow>,
    lines: Vec<u64>,
    bad: Vec<(u64, String)>,
    read: u64,
    plain_passwords: u64,
    bytes_read: u64,
}

/// Reads and checks rows on a thread of its own, so parsing overlaps the database's work.
fn spawn_reader(
    mut rows: Rows,
) -> (
    tokio::sync::mpsc::Receiver<Result<Chunk, String>>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let handle = std::thread::spawn(move || {
        let mut seen = SeenInFile::new();
        loop {
            let mut chunk = Chunk::default();
            let mut end = false;
            while chunk.rows.len() < BATCH {
                let (line, parsed) = match rows.next() {
                    Ok(Some(next)) => next,
                    Ok(None) => {
                        end = true;
                        break;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                chunk.read += 1;
                let row = parsed
                    .and_then(format::RawRow::into_import_row)
                    .and_then(|row| row.problem().map_or(Ok(row), Err))
                    .and_then(|row| seen.claim(&row, line).map(|()| row));
                match row {
                    Ok(row) => {
                        if matches!(row.secret, ImportSecret::Password(_)) {
                            chunk.plain_passwords += 1;
                        }
                        chunk.rows.push(row);
                        chunk.lines.push(line);
                    }
                    Err(why) => chunk.bad.push((line, why)),
                }
            }
            chunk.bytes_read = rows.bytes_read();
            if tx.blocking_send(Ok(chunk)).is_err() || end {
                return;
            }
        }
    });
    (rx, handle)
}

/// Imports `path`, printing each bad or conflicting row to stderr as `FILE:LINE: why`.
pub async fn run(
    core: &CredentialService,
    path: &Path,
    format: Format,
    options: ImportOptions,
    meta: &RequestMeta,
) -> Result<ImportSummary, String> {
    let rows = Rows::open(path, format)?;
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(total);
    let name = path.display().to_string();
    let report = |line: u64, why: &str| bar.suspend(|| eprintln!("{name}:{line}: {why}"));
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    let (mut chunks, reader) = spawn_reader(rows);
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        summary.rows += chunk.read;
        summary.bad += chunk.bad.len() as u64;
        summary.plain_passwords += chunk.plain_passwords;
        for (line, why) in &chunk.bad {
            report(*line, why);
        }
        let outcomes = core
            .import_batch(chunk.rows, options)
            .await
            .map_err(|e| format!("import stopped after {} rows: {e}", summary.rows))?;
        for (outcome, line) in outcomes.iter().zip(chunk.lines) {
            match outcome {
                ImportOutcome::Created => summary.created += 1,
                ImportOutcome::Updated => summary.updated += 1,
                ImportOutcome::Unchanged => summary.unchanged += 1,
                ImportOutcome::Conflict(why) => {
                    summary.conflicts += 1;
                    let hint = if why.contains("a different") && !options.update {
                        "; left untouched (--update overwrites)"
                    } else {
                        "; left untouched"
                    };
                    report(line, &format!("conflict: {why}{hint}"));
                }
            }
        }
        bar.set_position(chunk.bytes_read);
        let rate = summary.rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{} rows, {rate:.0} rows/s", summary.rows));
    }
    reader
        .join()
        .map_err(|_| "the file reader failed".to_owned())?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    print_summary(&name, &summary, elapsed, options, core.hasher().cost());
    if !options.dry_run {
        let detail = json!({
            "file": name, "format": format.name(), "rows": summary.rows,
            "created": summary.created, "updated": summary.updated,
            "unchanged": summary.unchanged, "conflicts": summary.conflicts, "bad": summary.bad,
            "plain_passwords": summary.plain_passwords, "update": options.update,
        });
        core.audit_import(meta, detail)
            .await
            .map_err(|e| format!("the import's audit record could not be written: {e}"))?;
    }
    Ok(summary)
}

fn print_summary(
    name: &str,
    s: &ImportSummary,
    elapsed: Duration,
    options: ImportOptions,
    cost: u32,
) {
    let secs = elapsed.as_secs_f64();
    let rate = s.rows as f64 / secs.max(1e-3);
    let dry = if options.dry_run {
        " (dry run: nothing was written)"
    } else {
        ""
    };
    println!(
        "{name}: {} rows in {secs:.1} s ({rate:.0} rows/s): {} created, {} updated, {} unchanged, \
         {} conflicts, {} bad{dry}",
        s.rows, s.created, s.updated, s.unchanged, s.conflicts, s.bad
    );
    if s.plain_passwords > 0 {
        eprintln!(
            "warning: {name} holds {} plain-text passwords (hashed on import, bcrypt cost \
             {cost}); delete the file securely",
            s.plain_passwords
        );
    }
}
