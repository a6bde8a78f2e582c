//! `credgate-bench`: starts the real gateway on loopback with fresh databases, drives it with
//! many keep-alive connections and prints one Markdown table of medians over several rounds,
//! every figure measured in the same run so that ratios hold on a noisy machine.
//! See BENCHMARKS.md for the command, the machine and the latest table.

mod bare_actix;
mod bound;
mod cheap_wrk;
mod gateway;
mod load;
mod nginx;
mod overload;
mod report;
mod run;
mod sections;
mod seed;
mod stats;
mod summary;
mod targets;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("setup: {0}")]
    Setup(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

#[derive(Debug, Parser)]
#[command(name = "credgate-bench", about = "Benchmark the real credgate gateway")]
pub struct Cli {
    /// Short rounds to check that everything works (figures are not comparable).
    #[arg(long)]
    quick: bool,
    /// Rounds; each figure is the median over them (default 3, 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// The gateway binary (default: `credgate` next to this binary).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Users in the large store of the scale section (default 1,000,000; 100,000 with --quick).
    #[arg(long)]
    large_users: Option<usize>,
    /// Sections to run, e.g. `1,2,5` (default: all eight; 8 is the hash pool's overload).
    #[arg(long, value_delimiter = ',')]
    sections: Vec<u8>,
    /// Internal: serve the bare actix-web yardstick on this port (section 5 starts it).
    #[arg(long, hide = true)]
    serve_bare_actix: Option<u16>,
    /// Internal: the bare actix-web yardstick's workers.
    #[arg(long, hide = true, default_value_t = 2)]
    bare_actix_workers: usize,
    /// Serve a bare forwarder on this port (with `--forward-to`): actix-web handing each
    /// request to the upstream with reqwest and its answer back, nothing else. The shadow
    /// latency bench measures one HTTP hop with it.
    #[arg(long, requires = "forward_to")]
    serve_bare_forwarder: Option<u16>,
    /// The bare forwarder's upstream, e.g. `http://127.0.0.1:18701`.
    #[arg(long)]
    forward_to: Option<String>,
}

/// Warm-up and window of one measurement.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub warmup: Duration,
    pub window: Duration,
}

const fn span(warmup_ms: u64, window_ms: u64) -> Span {
    Span {
        warmup: Duration::from_millis(warmup_ms),
        window: Duration::from_millis(window_ms),
    }
}

/// How long each kind of measurement runs. The cost-12 changes dominate the full run.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub rounds: usize,
    pub bound12: Duration,
    pub bound10: Duration,
    pub change12: Span,
    pub change10: Span,
    /// One slice of section 3; every API runs one slice in turn, `slices` times.
    pub change4: Span,
    pub latency4: Span,
    pub slices: usize,
    pub isolation: Span,
    pub cheap: Span,
    pub memory: Span,
    pub scale: Span,
    pub large_users: usize,
}

impl Profile {
    fn new(cli: &Cli) -> Self {
        let full = Profile {
            rounds: 3,
            bound12: Duration::from_secs(8),
            bound10: Duration::from_secs(4),
            change12: span(2_000, 12_000),
            change10: span(1_000, 6_000),
            change4: span(300, 1_000),
            latency4: span(200, 750),
            slices: 4,
            isolation: span(2_000, 10_000),
            cheap: span(1_000, 5_000),
            memory: span(1_000, 5_000),
            scale: span(500, 3_000),
            large_users: 1_000_000,
        };
        let mut p = if cli.quick {
            Profile {
                rounds: 1,
                bound12: Duration::from_secs(2),
                bound10: Duration::from_secs(1),
                change12: span(2_000, 6_000),
                change10: span(1_000, 3_000),
                change4: span(300, 1_000),
                latency4: span(200, 1_000),
                slices: 1,
                isolation: span(1_000, 3_000),
                cheap: span(300, 1_000),
                memory: span(500, 2_000),
                scale: span(300, 1_000),
                large_users: 100_000,
            }
        } else {
            full
        };
        if let Some(r) = cli.rounds {
            p.rounds = r.max(1);
        }
        if let Some(n) = cli.large_users {
            p.large_users = n;
        }
        p
    }
}

/// How a yardstick server `what` this binary ran ended, as its exit code.
fn exit_code(served: std::io::Result<()>, what: &str) -> std::process::ExitCode {
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credgate-bench: {what}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(port) = cli.serve_bare_actix {
        let served = bare_actix::serve(port, cli.bare_actix_workers);
        return exit_code(served, "bare actix-web handler");
    }
    if let (Some(port), Some(upstream)) = (cli.serve_bare_forwarder, &cli.forward_to) {
        let served = bare_actix::forward(port, cli.bare_actix_workers, upstream);
        return exit_code(served, "bare forwarder");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("credgate-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(&cli, Profile::new(&cli))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credgate-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
