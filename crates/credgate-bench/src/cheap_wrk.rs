//! Section 5, the cheap path, driven by wrk (`-t2 -c64`): /healthz, Akana's session check,
//! Crafter's `validate-session.json` (when the dialect has that route), Crafter's user read
//! (`get.json`) and an unauthenticated 401, each next to nginx's static 200 measured in the
//! same round. No ratio is reported when wrk cannot push nginx past 100,000 req/s: the
//! generator, not the gateway, would then be the limit.

use std::path::Path;

use crate::report::Figures;
use crate::run::Site;
use crate::seed::BenchUser;
use crate::targets::Api;
use crate::{bound, nginx, wrk, BenchError, Profile};

/// nginx must reach this under wrk for a ratio to mean anything here.
pub const NGINX_FLOOR: f64 = 100_000.0;

/// One request the section measures.
pub struct Probe {
    pub key: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
}

/// The session cookies `dialect`'s login hands out for `user`'s seeded token.
fn cookie_header(dialect: &str, user: &BenchUser) -> Option<(String, String)> {
    let api = Api::all().into_iter().find(|a| a.name() == dialect)?;
    let session = api.session(user)?;
    let cookies: Vec<String> = (session.cookies.iter())
        .map(|(name, value)| format!("{name}={}", value.expose()))
        .collect();
    Some(("Cookie".to_owned(), cookies.join("; ")))
}

/// The full path of `dialect`'s route whose path ends with `suffix`, if it has one.
fn route_path(dialect: &str, suffix: &str) -> Option<String> {
    let api = Api::all().into_iter().find(|a| a.name() == dialect)?;
    let Api::Dialect(d) = api else { return None };
    let route = d.routes.iter().find(|r| r.spec.path.ends_with(suffix))?;
    Some(route.path.template.clone())
}

/// The section's requests; a note for each that the loaded dialects cannot serve.
pub fn probes(site: &Site, figures: &mut Figures) -> Vec<Probe> {
    let base = &site.gateway.base;
    let user = site.session_user();
    let mut probes = vec![Probe {
        key: "healthz",
        url: format!("{base}/healthz"),
        headers: vec![],
        status: 200,
    }];
    let akana = cookie_header("akana", user);
    let crafter = cookie_header("crafter", user);
    let wanted = [
        ("session", "akana", akana, "/login/status", String::new()),
        (
            "validate_session",
            "crafter",
            crafter.clone(),
            "/security/validate-session.json",
            String::new(),
        ),
        (
            "user_read",
            "crafter",
            crafter,
            "/user/get.json",
            format!("?username={}", user.username.replace('@', "%40")),
        ),
    ];
    for (key, dialect, cookie, suffix, query) in wanted {
        match (route_path(dialect, suffix), cookie) {
            (Some(path), Some(cookie)) => probes.push(Probe {
                key,
                url: format!("{base}{path}{query}"),
                headers: vec![cookie],
                status: 200,
            }),
            _ => figures.note(format!(
                "cheap path {key}: the {dialect} dialect has no `…{suffix}` route or session; row skipped"
            )),
        }
    }
    if let Some(path) = route_path("akana", "/login/status") {
        probes.push(Probe {
            key: "unauthenticated",
            url: format!("{base}{path}"),
            headers: vec![],
            status: 401,
        });
    }
    probes
}

/// Checks one request's status before loading it: a wrong answer at full speed is no figure.
async fn answers(probe: &Probe) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client.get(&probe.url);
    for (name, value) in &probe.headers {
        request = request.header(name, value);
    }
    let status = request.send().await.map_err(|e| e.to_string())?.status();
    if status.as_u16() == probe.status {
        Ok(())
    } else {
        Err(format!("answered {status}, expected {}", probe.status))
    }
}

/// A warm-up run, then the measured one.
async fn measure(
    binary: &Path,
    probe: &Probe,
    profile: &Profile,
) -> Result<wrk::WrkResult, BenchError> {
    wrk::run(binary, &probe.url, &probe.headers, profile.cheap.warmup).await?;
    let r = wrk::run(binary, &probe.url, &probe.headers, profile.cheap.window).await?;
    let wrong = if probe.status < 400 {
        r.non_2xx
    } else {
        r.requests.saturating_sub(r.non_2xx)
    };
    eprintln!(
        "  wrk {}: {:.0} req/s, p99 {:.0} µs{}",
        probe.key,
        r.rate,
        r.p99_us,
        if wrong > 0 || r.socket_errors > 0 {
            format!(
                " ({wrong} unexpected status(es), {} socket error(s))",
                r.socket_errors
            )
        } else {
            String::new()
        }
    );
    Ok(r)
}

/// Section 5 with wrk; records `cheap.wrk.<key>`, `cheap.wrk.nginx` and, when nginx passed
/// [`NGINX_FLOOR`], `cheap.wrk.ratio.<key>`.
pub async fn section(
    site: &Site,
    nginx_dir: &Path,
    profile: &Profile,
    figures: &mut Figures,
) -> Result<(), BenchError> {
    let binary = match wrk::find() {
        Ok(b) => b,
        Err(why) => {
            figures.note(format!("cheap path skipped: {why}"));
            return Ok(());
        }
    };
    let mut rates = Vec::new();
    for probe in probes(site, figures) {
        if let Err(why) = answers(&probe).await {
            figures.note(format!("cheap path {}: {why}; row skipped", probe.key));
            continue;
        }
        let r = measure(&binary, &probe, profile).await?;
        figures.record(format!("cheap.wrk.{}", probe.key), r.rate);
        rates.push((probe.key, r.rate));
    }
    let nginx_binary = match nginx::find() {
        Ok(b) => b,
        Err(why) => {
            figures.note(format!("cheap path: no ratios, {why}"));
            return Ok(());
        }
    };
    let server = nginx::Nginx::start(&nginx_binary, nginx_dir, bound::cores()).await?;
    let yardstick = Probe {
        key: "nginx",
        url: server.url.clone(),
        headers: vec![],
        status: 200,
    };
    let stat = measure(&binary, &yardstick, profile).await;
    server.stop(&nginx_binary).await?;
    let stat = stat?;
    figures.record("cheap.wrk.nginx", stat.rate);
    if stat.rate < NGINX_FLOOR {
        figures.note(format!(
            "cheap path: wrk pushed nginx to only {:.0} req/s (< {NGINX_FLOOR:.0}): the generator is the limit, no ratio reported",
            stat.rate
        ));
        return Ok(());
    }
    for (key, rate) in rates {
        figures.record(format!("cheap.wrk.ratio.{key}"), rate / stat.rate);
    }
    // The stack's own ceiling on this machine: what credgate's ratios are read against.
    let bare = crate::bare_actix::BareActix::start(bound::cores()).await?;
    let probe = Probe {
        key: "bare_actix",
        url: bare.url.clone(),
        headers: vec![],
        status: 200,
    };
    let measured = measure(&binary, &probe, profile).await;
    bare.stop().await?;
    let bare_rate = measured?.rate;
    figures.record("cheap.wrk.bare_actix", bare_rate);
    figures.record("cheap.wrk.ratio.bare_actix", bare_rate / stat.rate);
    Ok(())
}

/// The section's rows: nginx's own figure, then each request's req/s and share of it against
/// the target.
pub fn rows(f: &Figures, t: &mut crate::report::Table) {
    use crate::report::{num, pct, Verdict};
    if !f.has("cheap.wrk.nginx") && !f.has("cheap.wrk.healthz") {
        return;
    }
    const SECTION: &str = "5 cheap path (wrk)";
    t.info(
        SECTION,
        format!(
            "nginx static 200: req/s (wrk -t{} -c{}; a ratio needs ≥ {NGINX_FLOOR:.0})",
            wrk::THREADS,
            wrk::CONNECTIONS
        ),
        num(f.get("cheap.wrk.nginx"), 0),
    );
    if f.has("cheap.wrk.bare_actix") {
        t.info(
            SECTION,
            "bare actix-web handler, static 200 (the stack's own ceiling): req/s, vs nginx",
            format!(
                "{} ({})",
                num(f.get("cheap.wrk.bare_actix"), 0),
                pct(f.get("cheap.wrk.ratio.bare_actix"))
            ),
        );
    }
    let rows = [
        ("healthz", "/healthz", 0.90),
        ("session", "session check, akana login/status", 0.80),
        (
            "validate_session",
            "session check, crafter validate-session.json",
            0.80,
        ),
        ("user_read", "user read, crafter get.json", 0.60),
        (
            "unauthenticated",
            "unauthenticated 401, akana login/status",
            0.80,
        ),
    ];
    for (key, label, target) in rows {
        let rate = f.get(&format!("cheap.wrk.{key}"));
        let ratio = f.get(&format!("cheap.wrk.ratio.{key}"));
        t.row(
            SECTION,
            format!("{label}: req/s, vs nginx"),
            format!("{} ({})", num(rate, 0), pct(ratio)),
            &format!("≥ {:.0}% of nginx", target * 100.0),
            Verdict::check(ratio, |r| r >= target),
        );
    }
}
