//! Replays one vendor example against a gateway over HTTP: set up through the admin API,
//! run the preparatory steps, send the vendor's request, compare the answer, run the checks.
//!
//! [`run`] gives a structured [`Outcome`]; [`replay`] is the older `Result` form. Examples are
//! replayed as written: against a gateway that has seen them before, isolate them first with
//! [`crate::isolate::isolate`].

use std::collections::BTreeMap;
use std::fmt;

use credgate_dialect::example::{json_diff, Example, HttpCall, Step};
use serde_json::{json, Value};

/// A gateway to replay against.
pub struct Target {
    pub base_url: String,
    pub admin_token: Option<String>,
    pub client: reqwest::Client,
}

impl Target {
    pub fn new(base_url: impl Into<String>, admin_token: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            admin_token,
            client,
        }
    }
}

/// One difference between what an example expects and what the target did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Where: `setup`, `before[0]`, `request`, `status`, `header Location`, `body`,
    /// `body /Errors/0/Key` (a JSON pointer), `after[1]`.
    pub at: String,
    pub detail: String,
}

impl Mismatch {
    fn new(at: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.detail)
    }
}

/// How one example went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Every mismatch found (empty never: that is `Passed`).
    Failed(Vec<Mismatch>),
    /// Not run, and why (it needs setup the target cannot take).
    Skipped(String),
}

/// What came back from one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Runs `example` (the older form): every mismatch, or a skip reason, as readable lines.
pub async fn replay(target: &Target, example: &Example) -> Result<(), Vec<String>> {
    match run(target, example).await {
        Outcome::Passed => Ok(()),
        Outcome::Failed(m) => Err(m.iter().map(ToString::to_string).collect()),
        Outcome::Skipped(reason) => Err(vec![format!("skipped: {reason}")]),
    }
}

/// Runs `example` against `target` and reports every mismatch.
pub async fn run(target: &Target, example: &Example) -> Outcome {
    match setup(target, example).await {
        Ok(()) => {}
        Err(SetupProblem::Skip(reason)) => return Outcome::Skipped(reason),
        Err(SetupProblem::Failed(e)) => return Outcome::Failed(vec![Mismatch::new("setup", e)]),
    }
    let mut captures: BTreeMap<String, String> = BTreeMap::new();
    for (i, step) in example.before.iter().enumerate() {
        if let Err(e) = run_step(target, step, &mut captures).await {
            return Outcome::Failed(vec![Mismatch::new(format!("before[{i}]"), e)]);
        }
    }
    let answer = match send(target, &example.request, &captures).await {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(vec![Mismatch::new("request", e)]),
    };
    let mut diffs = compare(&answer, example);
    if diffs.is_empty() {
        for (i, step) in example.after.iter().enumerate() {
            if let Err(e) = run_step(target, step, &mut captures).await {
                diffs.push(Mismatch::new(format!("after[{i}]"), e));
            }
        }
    }
    if diffs.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed(diffs)
    }
}

/// Status, the named headers, and the body (text exactly, JSON structurally).
fn compare(answer: &Answer, example: &Example) -> Vec<Mismatch> {
    let mut diffs = Vec::new();
    let expected = &example.response;
    if answer.status != expected.status {
        diffs.push(Mismatch::new(
            "status",
            format!(
                "expected {}, got {}{} (body: {:?})",
                expected.status,
                answer.status,
                refusal_hint(answer),
                answer.body
            ),
        ));
    }
    for (name, want) in &expected.headers {
        match answer.header(name) {
            Some(got) if got == want => {}
            Some(got) => diffs.push(Mismatch::new(
                format!("header {name}"),
                format!("expected {want:?}, got {got:?}"),
            )),
            None => diffs.push(Mismatch::new(
                format!("header {name}"),
                format!("expected {want:?}, got no such header"),
            )),
        }
    }
    if let Some(body) = &expected.body {
        if &answer.body != body {
            diffs.push(Mismatch::new(
                "body",
                format!("expected {body:?}, got {:?}", answer.body),
            ));
        }
    }
    if let Some(want) = &expected.json {
        match (
            serde_json::from_str::<Value>(want),
            serde_json::from_str::<Value>(&answer.body),
        ) {
            (Err(e), _) => diffs.push(Mismatch::new(
                "response.json",
                format!("the example's JSON does not parse: {e}"),
            )),
            (_, Err(_)) => diffs.push(Mismatch::new(
                "body",
                format!("expected JSON, got {:?}", answer.body),
            )),
            (Ok(want), Ok(got)) => diffs.extend(json_diff(&want, &got).into_iter().map(|d| {
                // json_diff says "/pointer: what"; keep the pointer as the place.
                match d.split_once(": ") {
                    Some((at, what)) => Mismatch::new(format!("body {at}"), what),
                    None => Mismatch::new("body", d),
                }
            })),
        }
    }
    diffs
}

/// Marks a mismatch caused by the target's guessing limit (see [`Mismatch::rate_limited`]).
const RATE_LIMITED: &str = "refused by the target's guessing limit";

impl Mismatch {
    /// The target answered 429 where the example expected something else: its per-address
    /// guessing limit, counting earlier failed attempts, not a dialect difference.
    pub fn rate_limited(&self) -> bool {
        self.detail.contains(RATE_LIMITED)
    }
}

/// A 429 the example did not expect is the target's guessing limit, not the dialect.
fn refusal_hint(answer: &Answer) -> String {
    if answer.status != 429 {
        return String::new();
    }
    let retry = answer
        .header("retry-after")
        .map(|s| format!(", Retry-After {s}s"))
        .unwrap_or_default();
    format!(
        " [{RATE_LIMITED}{retry}: earlier failed attempts from this address count; see [limits]]"
    )
}

enum SetupProblem {
    Skip(String),
    Failed(String),
}

async fn setup(target: &Target, example: &Example) -> Result<(), SetupProblem> {
    let s = &example.setup;
    if s.users.is_empty() && s.clients.is_empty() && s.apps.is_empty() {
        return Ok(());
    }
    let Some(token) = target.admin_token.as_deref() else {
        return Err(SetupProblem::Skip(format!(
            "needs setup ({}) through the admin API, and no admin token was given",
            setup_summary(example)
        )));
    };
    let calls = s
        .users
        .iter()
        .map(|u| ("/admin/users", json!(u)))
        .chain(s.clients.iter().map(|c| ("/admin/clients", json!(c))))
        .chain(s.apps.iter().map(|a| ("/admin/apps", json!(a))));
    for (path, body) in calls {
        let res = target
            .client
            .post(format!("{}{path}", target.base_url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| SetupProblem::Failed(format!("POST {path}: {e}")))?;
        let status = res.status();
        if status.is_success() {
            continue;
        }
        if matches!(status.as_u16(), 404 | 405) {
            return Err(SetupProblem::Skip(format!(
                "needs setup ({}), and the target has no credgate admin API (POST {path} answered {status})",
                setup_summary(example)
            )));
        }
        let text = res.text().await.unwrap_or_default();
        return Err(SetupProblem::Failed(format!(
            "POST {path} answered {status}: {text}"
        )));
    }
    Ok(())
}

/// "1 user, 1 client" for skip reasons.
fn setup_summary(example: &Example) -> String {
    let s = &example.setup;
    [
        (s.users.len(), "user"),
        (s.clients.len(), "client"),
        (s.apps.len(), "application key"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
    .collect::<Vec<_>>()
    .join(", ")
}

async fn run_step(
    target: &Target,
    step: &Step,
    captures: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let answer = send(target, &step.call, captures).await?;
    if let Some(want) = step.expect_status {
        if answer.status != want {
            return Err(format!(
                "{} {}: expected status {want}, got {}{} (body: {:?})",
                step.call.method,
                step.call.path,
                answer.status,
                refusal_hint(&answer),
                answer.body
            ));
        }
    }
    for (name, from) in &step.capture {
        let value = capture(&answer, from)
            .ok_or_else(|| format!("could not capture `{name}` from {from}"))?;
        captures.insert(name.clone(), value);
    }
    Ok(())
}

fn capture(answer: &Answer, from: &str) -> Option<String> {
    let (kind, arg) = from.split_once(':').unwrap_or((from, ""));
    match kind {
        "json" => match serde_json::from_str::<Value>(&answer.body)
            .ok()?
            .pointer(arg)?
        {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        },
        "cookie" => answer
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
            .find(|(n, _)| n.trim() == arg)
            .map(|(_, v)| v.to_owned()),
        "header" => answer.header(arg).map(str::to_owned),
        "body" => Some(answer.body.clone()),
        _ => None,
    }
}

fn render(template: &str, captures: &BTreeMap<String, String>) -> Result<String, String> {
    let env = minijinja::Environment::new();
    env.render_str(template, captures)
        .map_err(|e| format!("template {template:?}: {e}"))
}

/// Sends one call with its templates filled in.
pub async fn send(
    target: &Target,
    call: &HttpCall,
    captures: &BTreeMap<String, String>,
) -> Result<Answer, String> {
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).map_err(|e| e.to_string())?;
    let url = format!("{}{}", target.base_url, render(&call.path, captures)?);
    let mut req = target.client.request(method, url);
    for (name, value) in &call.headers {
        req = req.header(name, render(value, captures)?);
    }
    let body = render(&call.body, captures)?;
    if !body.is_empty() {
        req = req.body(body);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = res.text().await.map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}
