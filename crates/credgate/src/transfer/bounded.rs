//! Size bounds of imported rows, enforced while reading: a row longer than [`MAX_ROW_BYTES`] is
//! never held in memory whole, only reported by its line.
//!
//! JSON Lines are read with [`read_bounded_line`]. CSV goes through [`BoundedCsv`], a reader
//! that follows CSV quoting (RFC 4180, as the `csv` crate parses it) and cuts every record
//! past the bound: the cut record keeps its line breaks (inside a quoted field), so record
//! boundaries and line numbers stay those of the file, and its start line is remembered so the
//! importer reports it as too long.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Read};

/// The largest row accepted, in bytes.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// Reads one line (through `\n`) into `buf`, keeping at most `max` bytes of it; the rest of a
/// longer line is read and dropped. Returns the bytes consumed (0 at the end) and whether the
/// line was cut.
pub fn read_bounded_line(
    reader: &mut impl BufRead,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<(usize, bool)> {
    buf.clear();
    let (mut consumed, mut cut) = (0, false);
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, cut));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        reader.consume(n);
        consumed += n;
        if done {
            return Ok((consumed, cut));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records (after a record terminator, or at the start).
    Boundary,
    /// At the start of a field.
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the field's end, or the first of `""`.
    QuoteInQuoted,
}

/// Where a byte leaves the CSV parser.
fn step(state: State, b: u8) -> State {
    let end = b == b'\n' || b == b'\r';
    match state {
        State::Quoted => {
            if b == b'"' {
                State::QuoteInQuoted
            } else {
                State::Quoted
            }
        }
        _ if end => State::Boundary,
        State::Boundary | State::FieldStart if b == b'"' => State::Quoted,
        State::QuoteInQuoted if b == b'"' => State::Quoted,
        _ if b == b',' => State::FieldStart,
        _ => State::Unquoted,
    }
}

/// A CSV source whose records are cut at `max` bytes (see the module documentation).
pub struct BoundedCsv<R> {
    inner: R,
    max: usize,
    /// The parser's state in the real file.
    real: State,
    /// The parser's state in what was handed on.
    shown: State,
    line: u64,
    record_start_line: u64,
    record_bytes: usize,
    cutting: bool,
    pending: Vec<u8>,
    at: usize,
    /// Start lines of the records that were cut.
    pub oversized: BTreeSet<u64>,
}

impl<R: Read> BoundedCsv<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            real: State::Boundary,
            shown: State::Boundary,
            line: 1,
            record_start_line: 1,
            record_bytes: 0,
            cutting: false,
            pending: Vec::new(),
            at: 0,
            oversized: BTreeSet::new(),
        }
    }

    fn show(&mut self, b: u8) {
        self.pending.push(b);
        self.shown = step(self.shown, b);
    }

    fn push(&mut self, b: u8) {
        let terminator = b == b'\n' || b == b'\r';
        if self.real == State::Boundary && !terminator {
            // A record starts here.
            self.record_start_line = self.line;
            self.record_bytes = 0;
            self.cutting = false;
        }
        self.real = step(self.real, b);
        self.record_bytes += 1;
        if !self.cutting && self.record_bytes > self.max && self.real != State::Boundary {
            self.cutting = true;
            // The parser reports a record by the line it starts on.
            self.oversized.insert(self.record_start_line);
            // From here the cut record shows as one quoted field holding only line breaks.
            match self.shown {
                State::Quoted => {}
                State::Boundary | State::FieldStart => self.show(b'"'),
                State::Unquoted | State::QuoteInQuoted => {
                    self.show(b',');
                    self.show(b'"');
                }
            }
        }
        if self.cutting {
            if self.real == State::Boundary {
                self.show(b'"');
                self.show(b);
                self.cutting = false;
            } else if terminator {
                self.show(b);
            }
        } else {
            self.show(b);
        }
        if b == b'\n' {
            self.line += 1;
        }
    }
}

impl<R: Read> Read for BoundedCsv<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        while self.at == self.pending.len() {
            self.pending.clear();
            self.at = 0;
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                if self.cutting {
                    // The file ends inside a cut record: close its quoted field.
                    self.cutting = false;
                    self.show(b'"');
                    break;
                }
                return Ok(0);
            }
            for &b in &chunk[..n] {
                self.push(b);
            }
        }
        let n = out.len().min(self.pending.len() - self.at);
        out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every record with its start line, through the bounded reader.
    fn records(text: &str, max: usize) -> (Vec<(u64, Vec<String>)>, BTreeSet<u64>) {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(BoundedCsv::new(text.as_bytes(), max));
        let mut out = Vec::new();
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).unwrap() {
            let line = record.position().unwrap().line();
            out.push((line, record.iter().map(str::to_owned).collect()));
        }
        (out, reader.get_ref().oversized.clone())
    }

    #[test]
    fn short_records_pass_untouched() {
        let text = "a,b\r\n\"x\ny\",\"q\"\"uote\"\n\nlast,row";
        let (bounded, cut) = records(text, 1000);
        let mut plain = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(text.as_bytes());
        let expected: Vec<(u64, Vec<String>)> = plain
            .records()
            .map(|r| {
                let r = r.unwrap();
                let line = r.position().unwrap().line();
                (line, r.iter().map(str::to_owned).collect())
            })
            .collect();
        assert_eq!(bounded, expected);
        assert!(cut.is_empty());
    }

    #[test]
    fn long_records_are_cut_keeping_the_others_and_their_lines() {
        let big = "z".repeat(500);
        let quoted_big = format!("\"{}\n{}\"", big, big);
        for long in [
            format!("u,{big}"),
            format!("\"u\",{quoted_big}"),
            format!("u,\"a\"\"{big}\"\"\""),
            big.clone(),
        ] {
            let text = format!("h1,h2\nfirst,1\n{long}\nafter,2\n\"multi\nline\",3\n");
            let (rows, cut) = records(&text, 100);
            let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
            let long_lines = long.matches('\n').count() as u64;
            assert_eq!(
                lines,
                [1, 2, 3, 4 + long_lines, 5 + long_lines],
                "{long:.20}"
            );
            assert_eq!(cut, BTreeSet::from([3]), "{long:.20}");
            assert_eq!(rows[3].1, ["after", "2"]);
            assert_eq!(rows[4].1, ["multi\nline", "3"]);
            assert!(rows[2].1.concat().len() <= 100 + long_lines as usize);
        }
    }

    #[test]
    fn a_file_ending_inside_a_long_record_ends_cleanly() {
        let text = format!("h\nok\n\"{}", "z".repeat(300));
        let (rows, cut) = records(&text, 100);
        assert_eq!(rows.len(), 3);
        assert_eq!(cut, BTreeSet::from([3]));
    }

    #[test]
    fn lines_are_read_within_the_bound() {
        let text = format!("short\n{}\nlast", "x".repeat(1000));
        let mut reader = io::BufReader::with_capacity(16, text.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_line(&mut reader, 10, &mut buf).unwrap(),
            (6, false)
        );
        assert_eq!(buf, b"short\n");
        assert_eq!(
            read_bounded_line(&mut reader, 10, &mut buf).unwrap(),
            (1001, true)
        );
        assert_eq!(buf.len(), 10);
        assert_eq!(
            read_bounded_line(&mut reader, 10, &mut buf).unwrap(),
            (4, false)
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_bounded_line(&mut reader, 10, &mut buf).unwrap(),
            (0, false)
        );
    }
}
