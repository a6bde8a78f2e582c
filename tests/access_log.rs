//! The binary's access log at `info`: one line per request, written by the flusher without any
//! other log line to carry it, with its fields and without the query string.

use crate::common::TracedBinary;

#[tokio::test]
async fn access_lines_reach_the_log_within_the_flush_interval_without_the_query() {
    let admin = "access-log-admin-token-0123456789abcdef";
    let mut gw =
        TracedBinary::start_with(admin, &[("CREDGATE_LOG_LEVEL", "info".to_owned())]).await;
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/healthz?token=query-secret-7f3a", gw.url))
        .header("x-request-id", "access-log-probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let wanted =
        "request request_id=access-log-probe-1 method=GET path=/healthz status=200 latency_us=";
    let log_file = gw.dir.path().join("trace.log");
    // Normally nothing else is logged at info after it: the flusher writes the line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut found = false;
    while std::time::Instant::now() < deadline {
        let text = std::fs::read_to_string(&log_file).unwrap();
        if text.contains(wanted) {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (logs, _) = gw.stop_and_collect();
    assert!(found, "no access line in {logs}");
    let line = logs.lines().find(|l| l.contains(wanted)).unwrap();
    assert!(
        line.contains(" INFO credgate_server::telemetry: "),
        "{line}"
    );
    assert!(
        !logs.contains("query-secret-7f3a"),
        "the query string was logged"
    );
}
