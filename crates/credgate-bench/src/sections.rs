//! The measurements of each section, one round at a time, recorded as named figures.

use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, LoadResult, LoadSpec, Workload};
use crate::report::Figures;
use crate::run::{Site, CHANGE_CONNECTIONS, MEMORY_CONNECTIONS};
use crate::stats::{self, micros};
use crate::targets::{Api, ChangeLoad, FixedLoad, LoginLoad};
use crate::{bound, BenchError, Profile, Span};

fn spec(connections: usize, span: Span) -> LoadSpec {
    LoadSpec {
        connections,
        warmup: span.warmup,
        window: span.window,
        pace: None,
    }
}

/// Runs a load and notes any unexpected answer, so a broken run cannot pass as a fast one.
async fn measure(
    label: &str,
    workload: Arc<dyn Workload>,
    spec: LoadSpec,
    figures: &mut Figures,
) -> LoadResult {
    let result = load::run(workload, spec).await;
    if result.errors > 0 {
        figures.note(format!(
            "{label}: {} unexpected answer(s), e.g. {}",
            result.errors,
            result.first_error.as_deref().unwrap_or("?")
        ));
    }
    eprintln!(
        "  {label}: {:.1}/s p50 {:.0} µs p99 {:.0} µs ({} ok, {} errors)",
        result.rate,
        micros(result.p50),
        micros(result.p99),
        result.ok,
        result.errors
    );
    result
}

/// Sections 1 and 2 at one cost: the bcrypt bound, then a change through every API.
pub async fn bound_and_changes(
    site: &Site,
    cost: u32,
    profile: &Profile,
    changes: bool,
    figures: &mut Figures,
) -> Result<(), BenchError> {
    let (window, span) = if cost >= 12 {
        (profile.bound12, profile.change12)
    } else {
        (profile.bound10, profile.change10)
    };
    let bound =
        tokio::task::spawn_blocking(move || bound::pairs_per_second(cost, bound::cores(), window))
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))??;
    eprintln!("  bcrypt bound at cost {cost}: {bound:.2} pairs/s");
    figures.record(format!("bound.{cost}"), bound);
    if !changes {
        return Ok(());
    }
    for api in Api::all() {
        let label = format!("change cost {cost} {}", api.name());
        let r = measure(
            &label,
            site.change(&api),
            spec(CHANGE_CONNECTIONS, span),
            figures,
        )
        .await;
        figures.record(format!("change.{cost}.{}", api.name()), r.rate);
        figures.record(
            format!("change.ratio.{cost}.{}", api.name()),
            r.rate / bound,
        );
    }
    Ok(())
}

/// Section 3: changes at cost 4 through each dialect next to the native API; throughput on
/// eight connections, latency on one (so that it is the request's own time, not a queue).
/// The APIs take turns in short slices, so a drift of the machine's load hits all alike.
pub async fn translation(site: &Site, profile: &Profile, figures: &mut Figures) {
    let apis = Api::all();
    let n = apis.len();
    let (mut rates, mut samples) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for _ in 0..profile.slices {
        for (i, api) in apis.iter().enumerate() {
            let name = api.name();
            let tput = measure(
                &format!("cost 4 {name} x{CHANGE_CONNECTIONS}"),
                site.change(api),
                spec(CHANGE_CONNECTIONS, profile.change4),
                figures,
            )
            .await;
            rates[i].push(tput.rate);
        }
        for (i, api) in apis.iter().enumerate() {
            let lat = measure(
                &format!("cost 4 {} x1", api.name()),
                site.change(api),
                spec(1, profile.latency4),
                figures,
            )
            .await;
            samples[i].extend(lat.samples);
        }
    }
    let mut native = (f64::NAN, f64::NAN);
    for (i, api) in apis.iter().enumerate() {
        let name = api.name();
        let rate = rates[i].iter().sum::<f64>() / rates[i].len().max(1) as f64;
        let p50 = stats::quantile(&mut samples[i], 0.50).map_or(f64::NAN, micros);
        let p99 = stats::quantile(&mut samples[i], 0.99).map_or(f64::NAN, micros);
        if *api == Api::Native {
            native = (rate, p50);
        }
        figures.record(format!("t4.rate.{name}"), rate);
        figures.record(format!("t4.ratio.{name}"), rate / native.0);
        figures.record(format!("t4.p50.{name}"), p50);
        figures.record(format!("t4.p99.{name}"), p99);
        figures.record(format!("t4.added.{name}"), p50 - native.1);
    }
}

/// The cheap requests of sections 4 and 5.
fn probes(site: &Site) -> [(&'static str, Arc<dyn Workload>); 3] {
    let base = &site.gateway.base;
    let (username, token) = &site.seeded.reset;
    [
        ("healthz", FixedLoad::healthz(base)),
        ("unauthenticated", FixedLoad::unauthenticated(base)),
        (
            "reset_validate",
            FixedLoad::reset_validation(base, username, token),
        ),
    ]
}

/// Section 4: cheap requests, one every 10 ms each, while native changes at the site's cost
/// keep the hashing pool saturated.
pub async fn isolation(site: &Site, profile: &Profile, figures: &mut Figures) {
    let span = profile.isolation;
    let saturate = Arc::clone(&site.isolation);
    // The changes start first and run past the probes on both sides.
    let changes = tokio::spawn(load::run(
        saturate,
        LoadSpec {
            connections: CHANGE_CONNECTIONS,
            warmup: span.warmup,
            window: span.window + Duration::from_millis(500),
            pace: None,
        },
    ));
    tokio::time::sleep(span.warmup).await;
    let probe_spec = LoadSpec {
        connections: 1,
        warmup: Duration::from_millis(200),
        window: span.window,
        pace: Some(Duration::from_millis(10)),
    };
    let runs: Vec<_> = probes(site)
        .into_iter()
        .map(|(name, w)| (name, tokio::spawn(load::run(w, probe_spec))))
        .collect();
    for (name, handle) in runs {
        let Ok(r) = handle.await else { continue };
        if r.errors > 0 {
            figures.note(format!(
                "isolation {name}: {} unexpected answer(s), e.g. {}",
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            ));
        }
        eprintln!(
            "  isolation {name}: p50 {:.0} µs p99 {:.0} µs",
            micros(r.p50),
            micros(r.p99)
        );
        figures.record(format!("iso.{name}.p50"), micros(r.p50));
        figures.record(format!("iso.{name}.p99"), micros(r.p99));
    }
    if let Ok(c) = changes.await {
        if c.errors > 0 {
            figures.note(format!(
                "isolation changes: {} unexpected answer(s), e.g. {}",
                c.errors,
                c.first_error.as_deref().unwrap_or("?")
            ));
        }
        eprintln!("  isolation: changes {:.2}/s", c.rate);
        figures.record("iso.changes", c.rate);
    }
}

/// Section 6: peak RSS of a fresh gateway after 256 connections change passwords at once.
pub async fn memory(
    site: &Site,
    profile: &Profile,
    figures: &mut Figures,
) -> Result<(), BenchError> {
    let (_, idle) = site.gateway.memory_kib()?;
    let users = site.seeded.users[..MEMORY_CONNECTIONS].to_vec();
    let load = ChangeLoad::new(Api::Native, &site.gateway.base, users);
    let r = measure(
        "memory load",
        load,
        spec(MEMORY_CONNECTIONS, profile.memory),
        figures,
    )
    .await;
    let (peak, _) = site.gateway.memory_kib()?;
    eprintln!("  RSS idle {idle} KiB, peak {peak} KiB");
    figures.record("mem.idle", idle as f64 / 1024.0);
    figures.record("mem.peak", peak as f64 / 1024.0);
    figures.record("mem.rate", r.rate);
    Ok(())
}

/// Section 7: login and change latency on one connection, 1,000 users vs the large store.
pub async fn scale(small: &Site, large: &Site, profile: &Profile, figures: &mut Figures) {
    let one = spec(1, profile.scale);
    let mut p50s = Vec::new();
    for (tag, site) in [("small", small), ("large", large)] {
        let login = Arc::new(LoginLoad {
            base: site.gateway.base.clone(),
            users: vec![site.login_user().clone()],
            password: crate::seed::PASSWORDS[0].to_owned(),
        });
        let l = measure(&format!("login {tag}"), login, one, figures).await;
        let c = measure(
            &format!("change {tag}"),
            site.change(&Api::Native),
            one,
            figures,
        )
        .await;
        figures.record(format!("scale.{tag}.login"), micros(l.p50));
        figures.record(format!("scale.{tag}.change"), micros(c.p50));
        p50s.push((micros(l.p50), micros(c.p50)));
    }
    if let [(login_small, change_small), (login_large, change_large)] = p50s[..] {
        figures.record("scale.ratio.login", login_large / login_small);
        figures.record("scale.ratio.change", change_large / change_small);
    }
}
