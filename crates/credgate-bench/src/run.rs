//! The run: start and seed the gateways, measure every section in each round, print the table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::gateway::{Gateway, GatewayConfig};
use crate::report::Figures;
use crate::seed::{BenchUser, Seeded};
use crate::targets::{Api, ChangeLoad};
use crate::{sections, seed, summary, BenchError, Cli, Profile};

/// Connections (and users) per API in the change-password measurements.
pub const CHANGE_CONNECTIONS: usize = 8;
/// Connections of the memory section.
pub const MEMORY_CONNECTIONS: usize = 256;

/// One running gateway with its seeded users and per-API change workloads.
pub struct Site {
    pub gateway: Gateway,
    _dir: tempfile::TempDir,
    pub seeded: Seeded,
    pub changes: HashMap<String, Arc<ChangeLoad>>,
    /// The isolation section's saturating changes. Kept across rounds, as the per-API loads
    /// are: it knows each user's current password (a fresh one each round assumed the first,
    /// and after an odd number of changes every request failed with invalid credentials).
    pub isolation: Arc<ChangeLoad>,
}

impl Site {
    /// Users after the per-API blocks: [0] isolation changes (8), then single users.
    fn spare(&self, index: usize) -> &BenchUser {
        &self.seeded.users[after_api_blocks() + index]
    }

    pub fn session_user(&self) -> &BenchUser {
        self.spare(CHANGE_CONNECTIONS)
    }

    pub fn login_user(&self) -> &BenchUser {
        self.spare(CHANGE_CONNECTIONS + 1)
    }

    pub fn change(&self, api: &Api) -> Arc<ChangeLoad> {
        Arc::clone(&self.changes[api.name()])
    }
}

/// The index of the first seeded user after the per-API blocks (the isolation changes' first).
fn after_api_blocks() -> usize {
    Api::all().len() * CHANGE_CONNECTIONS
}

/// Bench users every site has: 8 per API, 8 for isolation, then single-purpose ones.
fn site_users() -> usize {
    after_api_blocks() + CHANGE_CONNECTIONS + 8
}

/// Starts a gateway at `cost` over a fresh database with `users` bench users and `filler`
/// further users written in bulk (the scale section's large store).
pub async fn site(
    binary: &std::path::Path,
    cost: u32,
    users: usize,
    filler: usize,
) -> Result<Site, BenchError> {
    site_with(binary, cost, users, filler, Vec::new()).await
}

/// As [`site`], with extra `CREDGATE_*` settings (name without the prefix, value).
pub async fn site_with(
    binary: &std::path::Path,
    cost: u32,
    users: usize,
    filler: usize,
    extra_env: Vec<(String, String)>,
) -> Result<Site, BenchError> {
    let dir = tempfile::tempdir()?;
    let hash = bcrypt::hash(seed::PASSWORDS[0], cost)
        .map_err(|e| BenchError::Setup(format!("bcrypt: {e}")))?;
    let store = seed::open(dir.path()).await?;
    let seeded = seed::seed(&store, users.max(site_users()), &hash).await?;
    if filler > 0 {
        let started = Instant::now();
        crate::seed::fill(&store, filler, &hash).await?;
        eprintln!(
            "  wrote {filler} users in bulk in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    store.close().await;
    let config = GatewayConfig {
        bcrypt_cost: cost,
        // History 1 still refuses the current password, without extra bcrypt runs; the default
        // (5) adds up to four verifies per change once a user has history.
        env: [("POLICY__HISTORY".to_owned(), "1".to_owned())]
            .into_iter()
            .chain(extra_env)
            .collect(),
    };
    let gateway = Gateway::start(binary, dir.path(), &config).await?;
    let changes = Api::all()
        .into_iter()
        .enumerate()
        .map(|(i, api)| {
            let block = seeded.users[i * CHANGE_CONNECTIONS..(i + 1) * CHANGE_CONNECTIONS].to_vec();
            (
                api.name().to_owned(),
                ChangeLoad::new(api, &gateway.base, block),
            )
        })
        .collect();
    let from = after_api_blocks();
    let isolation_users = seeded.users[from..from + CHANGE_CONNECTIONS].to_vec();
    let isolation = ChangeLoad::new(Api::Native, &gateway.base, isolation_users);
    Ok(Site {
        gateway,
        _dir: dir,
        seeded,
        changes,
        isolation,
    })
}

fn gateway_binary(cli: &Cli) -> Result<PathBuf, BenchError> {
    let path = match &cli.gateway {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("credgate"))
            .unwrap_or_else(|| PathBuf::from("credgate")),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(BenchError::Setup(format!(
            "no gateway binary at {} (cargo build --release -p credgate, or --gateway PATH)",
            path.display()
        )))
    }
}

pub async fn run(cli: &Cli, profile: Profile) -> Result<(), BenchError> {
    let binary = gateway_binary(cli)?;
    let wanted = |n: u8| cli.sections.is_empty() || cli.sections.contains(&n);
    let started = Instant::now();
    let mut figures = Figures::default();
    eprintln!(
        "credgate-bench: {} round(s), gateway {}",
        profile.rounds,
        binary.display()
    );

    let g12 = if wanted(1) || wanted(2) || wanted(4) {
        eprintln!("starting the cost-12 gateway");
        Some(site(&binary, 12, 0, 0).await?)
    } else {
        None
    };
    let g10 = if wanted(1) || wanted(2) {
        eprintln!("starting the cost-10 gateway");
        Some(site(&binary, 10, 0, 0).await?)
    } else {
        None
    };
    let g4 = if wanted(3) || wanted(5) || wanted(7) {
        eprintln!("starting the cost-4 gateway (1,000 users)");
        // Issue 16's conditions for the cheap path: the default `info` log (an access line per
        // request, to a file) and metrics on.
        let env = vec![("LOG_LEVEL".to_owned(), "info".to_owned())];
        Some(site_with(&binary, 4, 1_000, 0, env).await?)
    } else {
        None
    };
    let large = if wanted(7) {
        let n = profile.large_users;
        eprintln!("starting the cost-4 gateway with {n} users");
        Some(site(&binary, 4, 0, n.saturating_sub(site_users())).await?)
    } else {
        None
    };
    let nginx_dir = tempfile::tempdir()?;

    for round in 1..=profile.rounds {
        eprintln!("round {round}/{}", profile.rounds);
        for (site, cost) in [(&g12, 12), (&g10, 10)] {
            if let Some(site) = site {
                sections::bound_and_changes(site, cost, &profile, wanted(2), &mut figures).await?;
            }
        }
        if let (Some(site), true) = (&g12, wanted(4)) {
            sections::isolation(site, &profile, &mut figures).await;
        }
        if let Some(site) = &g4 {
            if wanted(3) {
                sections::translation(site, &profile, &mut figures).await;
            }
            if wanted(5) {
                // wrk drives the cheap path; the benchmark's own client cannot saturate nginx.
                crate::cheap_wrk::section(site, nginx_dir.path(), &profile, &mut figures).await?;
            }
        }
        if let (Some(small), Some(large)) = (&g4, &large) {
            sections::scale(small, large, &profile, &mut figures).await;
        }
    }
    if wanted(6) {
        eprintln!("memory at {MEMORY_CONNECTIONS} connections");
        // 256 simultaneous changes from one address: the address budget would refuse most.
        let site = site_with(&binary, 4, MEMORY_CONNECTIONS, 0, limits_aside()).await?;
        sections::memory(&site, &profile, &mut figures).await?;
        site.gateway.stop().await?;
    }
    if wanted(8) {
        // Guessing limits out of the way: every login here has the right password.
        eprintln!("overload of the hash pool at cost 12");
        let site = site_with(&binary, 12, 0, 0, limits_aside()).await?;
        crate::overload::overload(&site, 12, &mut figures).await?;
        site.gateway.stop().await?;
    }
    for s in [g12, g10, g4, large].into_iter().flatten() {
        s.gateway.stop().await?;
    }
    let table = summary::table(&figures, &profile);
    println!("{}", table.markdown());
    for note in &figures.notes {
        println!("- {note}");
    }
    println!(
        "- {} round(s){}, {} cores, {:.0} s in all; {} target(s) missed",
        profile.rounds,
        if cli.quick { " (--quick)" } else { "" },
        crate::bound::cores(),
        started.elapsed().as_secs_f64(),
        table.missed()
    );
    Ok(())
}

/// Guessing limits out of the way, for loads from one address that only ever send the right
/// password (their budgets are taken before the check, so in-flight attempts count).
fn limits_aside() -> Vec<(String, String)> {
    vec![
        ("LIMITS__USER_FAILURES".to_owned(), "1000000".to_owned()),
        ("LIMITS__ADDRESS_FAILURES".to_owned(), "1000000".to_owned()),
    ]
}
