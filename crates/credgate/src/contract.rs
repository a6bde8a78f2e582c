//! Replays one contract example against a gateway over HTTP: set up through the admin API,
//! run the preparatory steps, send the vendor's request, compare the answer, run the checks.

use std::collections::BTreeMap;

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
            base_url: base_url.into(),
            admin_token,
            client,
        }
    }
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

/// Runs `example`; returns every mismatch as a readable line (empty: it passed).
pub async fn replay(target: &Target, example: &Example) -> Result<(), Vec<String>> {
    setup(target, example)
        .await
        .map_err(|e| vec![format!("setup: {e}")])?;
    let mut captures: BTreeMap<String, String> = BTreeMap::new();
    for (i, step) in example.before.iter().enumerate() {
        run_step(target, step, &mut captures)
            .await
            .map_err(|e| vec![format!("before[{i}]: {e}")])?;
    }
    let answer = send(target, &example.request, &captures)
        .await
        .map_err(|e| vec![format!("request: {e}")])?;
    let mut diffs = Vec::new();
    let expected = &example.response;
    if answer.status != expected.status {
        diffs.push(format!(
            "status: expected {}, got {} (body: {})",
            expected.status, answer.status, answer.body
        ));
    }
    for (name, want) in &expected.headers {
        match answer.header(name) {
            Some(got) if got == want => {}
            got => diffs.push(format!("header {name}: expected {want:?}, got {got:?}")),
        }
    }
    if let Some(body) = &expected.body {
        if &answer.body != body {
            diffs.push(format!("body: expected {body:?}, got {:?}", answer.body));
        }
    }
    if let Some(want) = &expected.json {
        match (
            serde_json::from_str::<Value>(want),
            serde_json::from_str::<Value>(&answer.body),
        ) {
            (Err(e), _) => diffs.push(format!("the example's json does not parse: {e}")),
            (_, Err(_)) => diffs.push(format!("body: expected JSON, got {:?}", answer.body)),
            (Ok(want), Ok(got)) => diffs.extend(
                json_diff(&want, &got)
                    .into_iter()
                    .map(|d| format!("body {d}")),
            ),
        }
    }
    if diffs.is_empty() {
        for (i, step) in example.after.iter().enumerate() {
            if let Err(e) = run_step(target, step, &mut captures).await {
                diffs.push(format!("after[{i}]: {e}"));
            }
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs)
    }
}

async fn setup(target: &Target, example: &Example) -> Result<(), String> {
    let s = &example.setup;
    if s.users.is_empty() && s.clients.is_empty() && s.apps.is_empty() {
        return Ok(());
    }
    let token = target
        .admin_token
        .as_deref()
        .ok_or("this example needs setup: give an admin token")?;
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
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            let status = res.status();
            return Err(format!(
                "POST {path} answered {status}: {}",
                res.text().await.unwrap_or_default()
            ));
        }
    }
    Ok(())
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
                "{} {}: expected status {want}, got {} (body: {})",
                step.call.method, step.call.path, answer.status, answer.body
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
