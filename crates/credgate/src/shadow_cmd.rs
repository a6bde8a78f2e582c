//! `credgate shadow report`: the client side of `GET /admin/shadow/summary`, printed per
//! dialect and route with the cut-over verdict.

use clap::Subcommand;
use credgate_server::shadow::Summary;
use credgate_server::Settings;

#[derive(Subcommand)]
pub enum ShadowCmd {
    /// Per dialect and route: comparisons, agreements, divergences by kind, users synced, and
    /// whether the route is ready to cut over.
    Report {
        /// The gateway's base URL (default: http:// + the configured `listen`).
        #[arg(long)]
        target: Option<String>,
        /// The admin token (default: the configured `admin_token` / CREDGATE_ADMIN_TOKEN).
        #[arg(long, env = "CREDGATE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// The window: comparisons since this long ago (`90s`, `30m`, `24h`, `7d`); default
        /// the gateway's `[shadow] max_age_secs`.
        #[arg(long, value_parser = parse_ago)]
        since: Option<u64>,
    },
    /// Writes a sample of the recorded exchanges as dialect example files
    /// (DIR/<dialect>/examples/shadow-*.toml) for `credgate replay --examples DIR`: secrets
    /// generated, identities replaced, volatile values as wildcards.
    Examples {
        /// The folder to write into.
        dir: std::path::PathBuf,
        /// Only this dialect's exchanges (repeatable; default: every dialect).
        #[arg(long = "dialect")]
        dialects: Vec<String>,
        /// Exchanges written at most per dialect, route and status.
        #[arg(long, default_value_t = 3)]
        per_route: usize,
        /// The gateway's base URL (default: http:// + the configured `listen`).
        #[arg(long)]
        target: Option<String>,
        /// The admin token (default: the configured `admin_token` / CREDGATE_ADMIN_TOKEN).
        #[arg(long, env = "CREDGATE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

/// `90s`, `30m`, `24h`, `7d` (or plain seconds) as seconds.
pub fn parse_ago(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration like 90s, 30m, 24h or 7d"))?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("`{text}`: the unit is one of s, m, h, d")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("`{text}`: too long"))
}

fn admin_token(given: Option<String>, settings: &Settings) -> Result<String, String> {
    given
        .or_else(|| settings.admin_token.as_ref().map(|t| t.expose().to_owned()))
        .ok_or_else(|| "an admin token is needed: --admin-token or CREDGATE_ADMIN_TOKEN".into())
}

pub async fn run(cmd: ShadowCmd, settings: &Settings) -> Result<(), String> {
    match cmd {
        ShadowCmd::Examples {
            dir,
            dialects,
            per_route,
            target,
            admin_token: token,
        } => {
            let target = target.unwrap_or_else(|| format!("http://{}", settings.listen));
            let token = admin_token(token, settings)?;
            let mut records = Vec::new();
            let wanted = if dialects.is_empty() {
                vec![String::new()]
            } else {
                dialects
            };
            for dialect in &wanted {
                records.extend(fetch_exchanges(&target, &token, dialect).await?);
            }
            let dialects = credgate_server::upstream::spoken_dialects(settings)?;
            let written =
                crate::shadow_examples::write(&dir, &records, per_route.max(1), &dialects)?;
            for file in &written.files {
                println!("wrote {}", dir.join(file).display());
            }
            println!(
                "{} examples written; left out: {} diverging, {} with a token the upstream issued, {} with a session the dialect cannot open",
                written.files.len(),
                written.diverging,
                written.with_issued_token,
                written.with_session,
            );
            Ok(())
        }
        ShadowCmd::Report {
            target,
            admin_token,
            since,
        } => {
            let target = target.unwrap_or_else(|| format!("http://{}", settings.listen));
            let token = admin_token
                .or_else(|| settings.admin_token.as_ref().map(|t| t.expose().to_owned()))
                .ok_or("an admin token is needed: --admin-token or CREDGATE_ADMIN_TOKEN")?;
            let summary = fetch(&target, &token, since).await?;
            print!("{}", describe(&summary));
            Ok(())
        }
    }
}

async fn fetch_exchanges(
    target: &str,
    token: &str,
    dialect: &str,
) -> Result<Vec<crate::shadow_examples::Recorded>, String> {
    let url = format!(
        "{}/admin/shadow/exchanges?limit=1000&dialect={dialect}",
        target.trim_end_matches('/')
    );
    admin_get(&url, token).await
}

async fn fetch(target: &str, token: &str, ago: Option<u64>) -> Result<Summary, String> {
    let mut url = format!("{}/admin/shadow/summary", target.trim_end_matches('/'));
    if let Some(ago) = ago {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        url.push_str(&format!("?since={}", now.saturating_sub(ago)));
    }
    admin_get(&url, token).await
}

/// A shadow admin endpoint's JSON answer, or what went wrong in words.
async fn admin_get<T: serde::de::DeserializeOwned>(url: &str, token: &str) -> Result<T, String> {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    match status {
        200 => serde_json::from_str(&text).map_err(|e| format!("{url}: unreadable answer: {e}")),
        401 => Err(format!("{url}: the admin token was refused (401)")),
        404 => Err(format!(
            "{url}: not found (404): the admin API is off (no admin_token) or the gateway predates shadow mode"
        )),
        _ => Err(format!("{url}: unexpected answer {status}: {text}")),
    }
}

/// One block per dialect and route.
pub fn describe(summary: &Summary) -> String {
    let mut out = format!(
        "shadow comparisons since {} (ready: at least {} and no divergence)\n",
        summary.since, summary.ready_after
    );
    if summary.routes.is_empty() {
        out.push_str("  no comparisons in the window\n");
    }
    for r in &summary.routes {
        let divergences: u64 = r.divergences.values().sum();
        let kinds: Vec<String> = r
            .divergences
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        out.push_str(&format!(
            "{}/{}: compared {}, agreements {}, divergences {}{}, not synced {}, users synced {}: {}\n",
            r.dialect,
            r.route,
            r.compared,
            r.agreements,
            divergences,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            r.not_synced,
            r.users_synced,
            if r.ready { "READY to cut over" } else { "not ready" }
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use credgate_server::shadow::RouteSummary;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_ago("90s").unwrap(), 90);
        assert_eq!(parse_ago("30m").unwrap(), 1800);
        assert_eq!(parse_ago("24h").unwrap(), 86_400);
        assert_eq!(parse_ago("7d").unwrap(), 604_800);
        assert_eq!(parse_ago("120").unwrap(), 120);
        assert!(parse_ago("7w").is_err());
        assert!(parse_ago("soon").is_err());
    }

    #[test]
    fn the_report_names_each_route_and_its_verdict() {
        let summary = Summary {
            since: 1_700_000_000,
            ready_after: 10,
            routes: vec![RouteSummary {
                dialect: "crayon".into(),
                route: "change_password".into(),
                compared: 12,
                agreements: 11,
                divergences: [("policy".to_owned(), 1)].into(),
                not_synced: 0,
                users_synced: 3,
                ready: false,
            }],
        };
        let text = describe(&summary);
        assert!(text.contains(
            "crayon/change_password: compared 12, agreements 11, divergences 1 (policy=1), not synced 0, users synced 3: not ready"
        ), "{text}");
    }
}
