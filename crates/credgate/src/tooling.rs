//! Operator commands that need no configuration or database: `replay`, `completions`, `man`.
//! main.rs runs them before loading settings, so a broken config.toml cannot stop them.

use std::io::Write;
use std::process::ExitCode;

use crate::replay::{self, ReplayArgs};

#[derive(clap::Subcommand, Debug)]
pub enum Tooling {
    /// Replay the vendor examples against a running deployment (prove a migration
    /// before switching clients over).
    Replay(ReplayArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `credgate man > credgate.1`.
    Man,
}

impl Tooling {
    /// Runs the command; `cli` is the whole command line definition (for completions and man).
    pub fn run(self, mut cli: clap::Command) -> ExitCode {
        match self {
            Self::Replay(args) => replay::main(args),
            Self::Completions { shell } => {
                let name = cli.get_name().to_owned();
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut cli, name, &mut out);
                write_stdout(&out)
            }
            Self::Man => {
                let mut out = Vec::new();
                match clap_mangen::Man::new(cli).render(&mut out) {
                    Ok(()) => write_stdout(&out),
                    Err(e) => {
                        eprintln!("credgate man: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credgate: {e}");
            ExitCode::FAILURE
        }
    }
}
