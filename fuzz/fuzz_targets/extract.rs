//! Arbitrary requests through the dialect engine's matching, extraction and error rendering:
//! nothing may panic, and a rendered status is always a client or server error code.
#![no_main]

use std::sync::OnceLock;

use credgate_core::RequestMeta;
use credgate_dialect::{DialectSet, DialectSource, HttpRequest, LoadOptions, Lookup, RequestView};
use libfuzzer_sys::fuzz_target;

fn dialects() -> &'static DialectSet {
    static SET: OnceLock<DialectSet> = OnceLock::new();
    SET.get_or_init(|| {
        DialectSet::load(&DialectSource::embedded(), &LoadOptions::default()).expect("shipped dialects load")
    })
}

/// Splits the input into method, path, query, headers and body at 0xFF separators.
fn request(data: &[u8]) -> HttpRequest {
    let mut parts = data.split(|b| *b == 0xFF);
    let mut text = |fallback: &str| {
        parts.next().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_else(|| fallback.to_owned())
    };
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    let method = methods[text("").len() % methods.len()].to_owned();
    let path = text("/");
    let query = text("");
    let headers = text("")
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = parts.next().map(<[u8]>::to_vec).unwrap_or_default();
    HttpRequest { method, path, query, headers, body }
}

fuzz_target!(|data: &[u8]| {
    let req = request(data);
    let set = dialects();
    // Aim at a real route too: its template, picked by the input, with the braces dropped.
    let routes: Vec<String> = set
        .dialects()
        .iter()
        .flat_map(|d| d.routes.iter().map(move |r| format!("{}{}", d.spec.base, r.spec.path)))
        .map(|p| p.replace(['{', '}'], ""))
        .collect();
    let pick = routes[data.len() % routes.len()].clone();
    for path in [&req.path, &pick] {
        if let Lookup::Found(m) = set.lookup(&req.method, path) {
            let meta = RequestMeta::default();
            if let Err(error) = m.dialect.extract(&m, &req, meta) {
                let response = m.dialect.render_error(Some(&m), &RequestView::default(), &error);
                assert!((400..600).contains(&response.status));
            }
        }
    }
});
