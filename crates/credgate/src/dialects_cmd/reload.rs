//! The client side of `POST /admin/dialects/reload`: prints what the gateway did, and fails
//! when it refused the new set (422) or could not be asked.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct ReloadAnswer {
    pub status: String,
    #[serde(default)]
    pub changed: Vec<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub failures: Vec<ExampleFailure>,
}

#[derive(Debug, Deserialize)]
pub struct ExampleFailure {
    pub dialect: String,
    pub example: String,
    #[serde(default)]
    pub mismatches: Vec<String>,
}

/// A readable account of the answer.
pub fn describe(answer: &ReloadAnswer) -> String {
    let mut out = String::new();
    let changed = if answer.changed.is_empty() {
        "no dialect changed".to_owned()
    } else {
        format!("changed: {}", answer.changed.join(", "))
    };
    out.push_str(&format!("{} ({changed})\n", answer.status));
    if let Some(e) = &answer.error {
        out.push_str(&format!("  {e}\n"));
    }
    for f in &answer.failures {
        out.push_str(&format!("  {}/{} failed\n", f.dialect, f.example));
        for m in &f.mismatches {
            out.push_str(&format!("    {m}\n"));
        }
    }
    out
}

pub async fn reload(target: &str, admin_token: &str) -> Result<(), String> {
    let url = format!("{}/admin/dialects/reload", target.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(admin_token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    let answer = serde_json::from_str::<ReloadAnswer>(&text).ok();
    match (status, answer) {
        (200, Some(answer)) => {
            print!("{}", describe(&answer));
            Ok(())
        }
        (422, Some(answer)) => {
            print!("{}", describe(&answer));
            Err("the gateway kept serving its current dialect set".into())
        }
        (401, _) => Err(format!("{url}: the admin token was refused (401)")),
        (404, _) => Err(format!(
            "{url}: not found (404): the admin API is off (no admin_token) or the gateway predates reloads"
        )),
        (_, _) => Err(format!("{url}: unexpected answer {status}: {text}")),
    }
}
