//! wrk (Debian `wrk`) as the load generator of the cheap-path section: a C client that, unlike
//! the benchmark's own reqwest client, can push nginx's static 200 past 100,000 req/s here, so
//! the ratios it gives are the gateway's, not the client's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::BenchError;

/// wrk's threads and connections: the issue's `wrk -t2 -c64`.
pub const THREADS: usize = 2;
pub const CONNECTIONS: usize = 64;

/// The wrk binary, or why there is none.
pub fn find() -> Result<PathBuf, String> {
    ["/usr/bin/wrk", "/usr/local/bin/wrk"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| "wrk is not installed (apt-get install wrk)".to_owned())
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkResult {
    pub rate: f64,
    pub requests: u64,
    /// Answers outside 2xx/3xx (expected for the 401 row).
    pub non_2xx: u64,
    /// Socket errors (connect, read, write, timeout).
    pub socket_errors: u64,
    pub p99_us: f64,
}

/// Runs `wrk -t2 -c64 -d<secs>s --latency` against `url` with `headers`.
pub async fn run(
    binary: &Path,
    url: &str,
    headers: &[(String, String)],
    duration: Duration,
) -> Result<WrkResult, BenchError> {
    let secs = duration.as_secs().max(1);
    let mut cmd = Command::new(binary);
    cmd.arg(format!("-t{THREADS}"))
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{secs}s"))
        .arg("--latency");
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    let out = cmd
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| BenchError::Setup(format!("running wrk: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(BenchError::Setup(format!(
            "wrk failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse(&text).ok_or_else(|| BenchError::Setup(format!("unreadable wrk output: {text}")))
}

/// Reads wrk's report (`Requests/sec:`, the request count, `Non-2xx`, `Socket errors`, 99%).
pub fn parse(text: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    let mut rate = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rate = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            r.socket_errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99_us = duration_us(v.trim()).unwrap_or(0.0);
        } else if line.contains(" requests in ") {
            r.requests = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    r.rate = rate?;
    Some(r)
}

/// `1.23ms`, `850.00us`, `1.02s` as microseconds.
fn duration_us(v: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   400.00us  100.00us   5.00ms   90.00%\n\
  Latency Distribution\n     50%  380.00us\n     75%  420.00us\n     90%  500.00us\n     99%    1.25ms\n\
  812345 requests in 5.00s, 100.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n\
  Non-2xx or 3xx responses: 812345\nRequests/sec: 162469.00\nTransfer/sec:     20.00MB\n";
        let r = parse(report).unwrap();
        assert_eq!(r.rate, 162_469.0);
        assert_eq!(r.requests, 812_345);
        assert_eq!(r.non_2xx, 812_345);
        assert_eq!(r.socket_errors, 3);
        assert_eq!(r.p99_us, 1_250.0);
        assert!(parse("no figures").is_none());
    }
}
