//! The log's output: one shared buffer in front of stderr. Every `tracing` event is appended and
//! written out at once (so warnings and errors are never late, and lines keep their order); the
//! per-request access line is hand-formatted (no `tracing` field machinery per request) and only
//! appended, to be written with the next event, when the buffer passes [`FLUSH_BYTES`], by the
//! flusher thread every [`FLUSH_EVERY`], or at shutdown ([`flush`]) — nginx's
//! `access_log ... buffer= flush=`. The line has the fields of the `tracing` line it replaces,
//! in the same text or JSON format; like it, never a query string, header or body.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How late an access line may be written at most (while the process runs).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Buffered access lines are written once they pass this size.
pub const FLUSH_BYTES: usize = 32 * 1024;

/// The target the access line is logged under (as the `tracing` line was).
const TARGET: &str = "credgate_server::telemetry";

/// The process's log output; set once by [`install`].
pub struct Sink {
    buffer: Mutex<Vec<u8>>,
    json: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Creates the shared sink (text or JSON lines) and starts its flusher; `None` when one exists.
pub fn install(json: bool) -> Option<&'static Sink> {
    let mut fresh = false;
    let sink = SINK.get_or_init(|| {
        fresh = true;
        Sink {
            buffer: Mutex::new(Vec::with_capacity(2 * FLUSH_BYTES)),
            json,
        }
    });
    if !fresh {
        return None;
    }
    let spawned = std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(|| loop {
            std::thread::sleep(FLUSH_EVERY);
            flush();
        });
    if spawned.is_err() {
        // Without the flusher every line is written at once (see `Sink::access`).
        return Some(sink);
    }
    FLUSHER.get_or_init(|| ());
    Some(sink)
}

static FLUSHER: OnceLock<()> = OnceLock::new();

/// The sink, when [`install`] made one (the binary); in-process test gateways have none.
pub fn sink() -> Option<&'static Sink> {
    SINK.get()
}

/// Writes out whatever is buffered (the flusher does it every [`FLUSH_EVERY`]; call it before
/// the process exits).
pub fn flush() {
    if let Some(sink) = SINK.get() {
        sink.write_out(None);
    }
}

impl Sink {
    /// Appends `extra` (when given) and writes the whole buffer to stderr, under the lock, so
    /// lines from different threads never interleave or change order.
    fn write_out(&self, extra: Option<&[u8]>) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(extra) = extra {
            buffer.extend_from_slice(extra);
        }
        if buffer.is_empty() {
            return;
        }
        // Nowhere to report a failing stderr; the lines are dropped as `tracing` would.
        let _ = std::io::stderr().lock().write_all(&buffer);
        buffer.clear();
    }

    /// Appends one formatted access line; writes the buffer out when it is full.
    fn push(&self, line: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.extend_from_slice(line);
        if buffer.len() >= FLUSH_BYTES || FLUSHER.get().is_none() {
            let _ = std::io::stderr().lock().write_all(&buffer);
            buffer.clear();
        }
    }

    /// Logs one answered request: the same fields as the `tracing` line it replaces.
    pub fn access(&self, line: &AccessLine<'_>) {
        LINE.with(|cell| {
            let mut out = cell.borrow_mut();
            out.clear();
            if self.json {
                line.json(SystemTime::now(), &mut out);
            } else {
                line.text(SystemTime::now(), &mut out);
            }
            self.push(out.as_bytes());
        });
    }
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
    /// The formatted date and time up to the second, for the second it names.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// The fields of one access line.
pub struct AccessLine<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency_us: u64,
}

impl AccessLine<'_> {
    /// `tracing-subscriber`'s default text line, without colours.
    fn text(&self, now: SystemTime, out: &mut String) {
        timestamp(now, out);
        out.push_str("  INFO ");
        out.push_str(TARGET);
        out.push_str(": request request_id=");
        out.push_str(self.request_id);
        out.push_str(" method=");
        out.push_str(self.method);
        out.push_str(" path=");
        out.push_str(self.path);
        out.push_str(" status=");
        push_number(out, u64::from(self.status));
        out.push_str(" latency_us=");
        push_number(out, self.latency_us);
        out.push('\n');
    }

    /// `tracing-subscriber`'s JSON line.
    fn json(&self, now: SystemTime, out: &mut String) {
        out.push_str("{\"timestamp\":\"");
        timestamp(now, out);
        out.push_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"request\",\"request_id\":");
        json_string(out, self.request_id);
        out.push_str(",\"method\":");
        json_string(out, self.method);
        out.push_str(",\"path\":");
        json_string(out, self.path);
        out.push_str(",\"status\":");
        push_number(out, u64::from(self.status));
        out.push_str(",\"latency_us\":");
        push_number(out, self.latency_us);
        out.push_str("},\"target\":\"");
        out.push_str(TARGET);
        out.push_str("\"}\n");
    }
}

fn push_number(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(char::from(b"0123456789abcdef"[(c as usize) >> 4]));
                out.push(char::from(b"0123456789abcdef"[(c as usize) & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 in UTC with microseconds, as `tracing-subscriber`'s `SystemTime` timer writes it
/// (`2026-11-30T06:29:45.951889Z`); the part up to the second is formatted once a second.
fn timestamp(now: SystemTime, out: &mut String) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1 = date_time(secs);
            cached.0 = secs;
        }
        out.push_str(&cached.1);
    });
    out.push('.');
    let micros = u64::from(since.subsec_micros());
    let mut digits = [b'0'; 6];
    let mut n = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for d in digits {
        out.push(char::from(d));
    }
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (UTC; the civil-from-days algorithm).
fn date_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )
}

/// `tracing`'s writer: every event goes through the sink and is written out at once.
#[derive(Clone, Copy)]
pub struct EventWriter(pub &'static Sink);

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_out(Some(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EventWriter {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> AccessLine<'static> {
        AccessLine {
            request_id: "13cd0d35-f596-461f-8af0-236227465f75",
            method: "GET",
            path: "/a\"b\\c",
            status: 200,
            latency_us: 14527,
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut out = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_796_020_185_951_889);
        timestamp(t, &mut out);
        assert_eq!(out, "2026-11-30T06:29:45.951889Z");
        // Leap day, year end and the epoch itself.
        for (secs, expected) in [
            (951_782_400, "2000-02-29T00:00:00"),
            (1_704_067_199, "2023-12-31T23:59:59"),
            (0, "1970-01-01T00:00:00"),
            (4_107_542_400, "2100-03-01T00:00:00"),
        ] {
            assert_eq!(date_time(secs), expected);
        }
    }

    #[test]
    fn the_text_line_is_tracings_line() {
        let mut out = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_796_020_185_000_007);
        line().text(t, &mut out);
        assert_eq!(
            out,
            "2026-11-30T06:29:45.000007Z  INFO credgate_server::telemetry: request \
             request_id=13cd0d35-f596-461f-8af0-236227465f75 method=GET path=/a\"b\\c \
             status=200 latency_us=14527\n"
        );
    }

    #[test]
    fn the_json_line_parses_with_every_field() {
        let mut out = String::new();
        line().json(UNIX_EPOCH + Duration::from_secs(1), &mut out);
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(v["timestamp"], "1970-01-01T00:00:01.000000Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], TARGET);
        assert_eq!(v["fields"]["message"], "request");
        assert_eq!(v["fields"]["path"], "/a\"b\\c");
        assert_eq!(v["fields"]["status"], 200);
        assert_eq!(v["fields"]["latency_us"], 14527);
        let mut ctl = String::new();
        json_string(&mut ctl, "\u{1}\u{1f}x\té");
        assert_eq!(
            ctl,
            serde_json::to_string("\u{1}\u{1f}x\té").unwrap_or_default()
        );
    }
}
