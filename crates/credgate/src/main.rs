//! `credgate`: serve the gateway, and manage its users, clients and application keys.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand};
use credgate::transfer::{self, format::Format};
use credgate_core::{NewUserSpec, Password, RequestMeta, SecretToken, SystemClock};
use credgate_server::{build_core, Settings};

#[derive(Parser)]
#[command(
    name = "credgate",
    version = credgate::VERSION,
    about = "A multi-dialect API compatibility gateway for credential APIs"
)]
struct Cli {
    /// Configuration file (default: ./config.toml when present).
    #[arg(long, global = true, env = "CREDGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve every enabled dialect, the native API and the admin API.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    #[command(subcommand)]
    User(UserCmd),
    #[command(subcommand)]
    Client(ClientCmd),
    #[command(subcommand)]
    App(AppCmd),
    /// Import users from CSV or JSON Lines (bcrypt hashes or plain passwords); see README.
    Import {
        /// The file to read; `-` reads standard input (then --format is required).
        file: PathBuf,
        /// csv, jsonl, or auth0 (Auth0's bulk-import JSON array); default from the file's
        /// extension (csv or jsonl).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Check every row against the file and the database, and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Overwrite existing users whose data differ from the file (default: report a conflict).
        #[arg(long)]
        update: bool,
    },
    /// Export every user with its bcrypt hash (never a password), in the import format.
    Export {
        /// A new file (an existing one is never overwritten); `-` writes to standard output
        /// (then --format is required).
        file: PathBuf,
        /// csv or jsonl; default from the file's extension.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Wrap every weak legacy hash in bcrypt now (resumable); see README "Importing users".
    Rehash {
        /// Print how many weak hashes would be wrapped, by format, and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print how many users are stored in each format and state, and write nothing.
        #[arg(long, conflicts_with = "dry_run")]
        status: bool,
        /// Users read per batch (each batch is one transaction).
        #[arg(long, default_value_t = 1000)]
        batch: u32,
    },
    #[command(flatten)]
    Tooling(credgate::tooling::Tooling),
    /// Inspect, lint and reload dialects; print OpenAPI documents.
    #[command(subcommand)]
    Dialects(credgate::dialects_cmd::DialectsCmd),
    /// Shadow mode: report how credgate's answers compare with the legacy system's.
    #[command(subcommand)]
    Shadow(credgate::shadow_cmd::ShadowCmd),
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user; the password comes from stdin (--password-stdin) or a prompt.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        externally_managed: bool,
        /// A legacy id a dialect's clients use: DIALECT=ID (repeatable).
        #[arg(long = "alias", value_parser = parse_pair)]
        aliases: Vec<(String, String)>,
        /// A profile attribute: KEY=VALUE (repeatable).
        #[arg(long = "profile", value_parser = parse_pair)]
        profile: Vec<(String, String)>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's security question; the answer comes from stdin or a prompt (stored hashed).
    SetAnswer {
        #[arg(long)]
        id: String,
        #[arg(long)]
        question: String,
        #[arg(long)]
        answer_stdin: bool,
    },
    /// Set a user's two-factor login: `code` (delivered through the notifier), `totp` (an
    /// authenticator app; prints the secret and otpauth URI once) or `off`.
    TwoFactor {
        #[arg(long)]
        id: String,
        #[arg(long)]
        method: String,
    },
    /// List users (never their hashes).
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum ClientCmd {
    /// Register an API client for token grants; the secret comes from stdin or a prompt.
    Add {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        secret_stdin: bool,
    },
}

#[derive(Subcommand)]
enum AppCmd {
    /// Register an application key (Et-App-Key); the key comes from stdin or a prompt.
    Add {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        key_stdin: bool,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

/// A secret from stdin (first line) or typed at a prompt without echo.
fn read_secret(from_stdin: bool, prompt: &str) -> Result<String, String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| e.to_string())?;
        return Ok(s.lines().next().unwrap_or_default().to_owned());
    }
    rpassword::prompt_password(prompt).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    private_umask();
    let cli = Cli::parse();
    let command = match cli.command {
        Cmd::Tooling(tool) => return tool.run(Cli::command()),
        command => command,
    };
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("credgate: {e}");
            return ExitCode::from(2);
        }
    };
    credgate_server::telemetry::init_logging(&settings.log_format, &settings.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("credgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(command, settings));
    // The access lines still buffered (see credgate_server::access_log).
    credgate_server::telemetry::flush_logs();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credgate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Cmd, settings: Settings) -> Result<(), String> {
    let cli_meta = RequestMeta {
        dialect: "cli".into(),
        request_id: uuid_like(),
        client_addr: None,
    };
    match command {
        Cmd::Tooling(_) => Err("operator tooling runs before the settings load".into()),
        Cmd::Dialects(cmd) => credgate::dialects_cmd::run(cmd, &settings).await,
        Cmd::Shadow(cmd) => credgate::shadow_cmd::run(cmd, &settings).await,
        Cmd::Serve => credgate_server::run_with(
            settings,
            Some(Arc::new(credgate_examples::scratch::ExampleReplay)),
        )
        .await
        .map_err(|e| e.to_string()),
        Cmd::Migrate => {
            credgate_store::migrate(&settings.database_url)
                .await
                .map_err(|e| e.to_string())?;
            println!("migrations applied to {}", settings.database_url);
            Ok(())
        }
        Cmd::User(cmd) => user(cmd, &settings, &cli_meta).await,
        Cmd::Client(ClientCmd::Add {
            client_id,
            name,
            secret_stdin,
        }) => {
            let secret = Password::new(read_secret(secret_stdin, "Client secret: ")?);
            let core = core(&settings).await?;
            core.create_client(client_id.clone(), secret, name, &cli_meta)
                .await
                .map_err(|e| describe(&e))?;
            println!("{client_id}");
            Ok(())
        }
        Cmd::App(AppCmd::Add { name, key_stdin }) => {
            let key = SecretToken::new(read_secret(key_stdin, "Application key: ")?);
            let core = core(&settings).await?;
            core.create_app(key, name, &cli_meta)
                .await
                .map_err(|e| describe(&e))?;
            println!("application key registered");
            Ok(())
        }
        transfer @ (Cmd::Import { .. } | Cmd::Export { .. } | Cmd::Rehash { .. }) => {
            stored_users(transfer, &settings, &cli_meta).await
        }
    }
}

/// The core over the configured store, as every CLI command that changes data uses it.
async fn core(settings: &Settings) -> Result<Arc<credgate_core::CredentialService>, String> {
    build_core(settings, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())
}

/// `credgate user ...`.
async fn user(cmd: UserCmd, settings: &Settings, cli_meta: &RequestMeta) -> Result<(), String> {
    match cmd {
        UserCmd::Add {
            username,
            id,
            admin,
            externally_managed,
            aliases,
            profile,
            password_stdin,
        } => {
            let password = Password::new(read_secret(password_stdin, "Password: ")?);
            let core = core(settings).await?;
            let spec = NewUserSpec {
                username,
                password,
                id,
                admin,
                externally_managed,
                aliases: aliases.into_iter().collect(),
                profile: profile.into_iter().collect(),
            };
            let user = core
                .create_user(spec, cli_meta)
                .await
                .map_err(|e| describe(&e))?;
            println!("{}", user.id);
            Ok(())
        }
        UserCmd::SetAnswer {
            id,
            question,
            answer_stdin,
        } => {
            let answer = Password::new(read_secret(answer_stdin, "Answer: ")?);
            let core = core(settings).await?;
            core.set_security_answer(&id, question, answer, cli_meta)
                .await
                .map_err(|e| describe(&e))?;
            println!("security answer set for {id}");
            Ok(())
        }
        UserCmd::TwoFactor { id, method } => {
            let choice = credgate_server::admin::parse_two_factor(&method)
                .ok_or_else(|| format!("--method {method}: expected code, totp or off"))?;
            let core = core(settings).await?;
            let enrolled = core
                .set_two_factor(&id, choice, cli_meta)
                .await
                .map_err(|e| describe(&e))?;
            let method = enrolled.method.map_or("off", |m| m.as_str());
            println!("two-factor {method} for {id}");
            if let Some(uri) = &enrolled.otpauth_uri {
                println!("{}", uri.expose());
            }
            Ok(())
        }
        UserCmd::List { limit } => {
            let core = core(settings).await?;
            for user in core.users(limit, 0).await.map_err(|e| describe(&e))? {
                println!("{}", user_line(&user));
            }
            Ok(())
        }
    }
}

/// One line of `credgate user list`: id, username, flags and aliases, tab-separated.
fn user_line(user: &credgate_core::User) -> String {
    let aliases: Vec<String> = user
        .aliases
        .iter()
        .map(|(d, id)| format!("{d}={id}"))
        .collect();
    let flags = [
        (user.admin, "admin"),
        (user.externally_managed, "externally-managed"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect::<Vec<_>>()
    .join(",");
    format!(
        "{}\t{}\t{}\t{}",
        user.id,
        user.username,
        flags,
        aliases.join(",")
    )
}

/// `credgate import`, `export` and `rehash`: the stored users in bulk.
async fn stored_users(
    command: Cmd,
    settings: &Settings,
    cli_meta: &RequestMeta,
) -> Result<(), String> {
    match command {
        Cmd::Import {
            file,
            format,
            dry_run,
            update,
        } => {
            let format = format.map_or_else(|| Format::for_path(&file), Ok)?;
            let core = core(settings).await?;
            let options = credgate_core::import::ImportOptions { update, dry_run };
            let summary = transfer::import::run(&core, &file, format, options, cli_meta).await?;
            match summary.failed() {
                0 => Ok(()),
                n => Err(format!(
                    "{n} of {} rows were not imported (listed above)",
                    summary.rows
                )),
            }
        }
        Cmd::Export { file, format } => {
            let format = format.map_or_else(|| Format::for_path(&file), Ok)?;
            let core = core(settings).await?;
            let count = transfer::export::run(&core, &file, format).await?;
            if file == std::path::Path::new("-") {
                // Standard output carries the users themselves.
                eprintln!("exported {count} users");
            } else {
                println!("exported {count} users to {}", file.display());
            }
            Ok(())
        }
        Cmd::Rehash {
            dry_run,
            status,
            batch,
        } => {
            let core = core(settings).await?;
            let options = credgate::rehash::RehashOptions {
                dry_run,
                status,
                batch,
            };
            print!("{}", credgate::rehash::run(&core, options, cli_meta).await?);
            Ok(())
        }
        _ => Err("not a bulk command".into()),
    }
}

/// A readable sentence for a canonical error, naming broken policy rules.
fn describe(e: &credgate_core::Error) -> String {
    match e {
        credgate_core::Error::PolicyViolation { rules } => rules
            .iter()
            .map(|r| r.message())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn uuid_like() -> String {
    credgate_core::token::digest(&format!("{:?}", std::time::SystemTime::now()))[..32].to_owned()
}

/// Every file and folder credgate creates is its own: 0600 and 0700 whatever the inherited umask
/// (the database, its `-wal`/`-shm`, the reset outbox and exports also set their modes
/// explicitly, for the library users that keep their own umask).
fn private_umask() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file-mode mask; it cannot fail and touches no
    // memory. It runs first in main, before any thread that could create files exists.
    unsafe {
        libc::umask(0o077);
    }
}
