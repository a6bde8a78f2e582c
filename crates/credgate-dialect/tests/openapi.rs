//! The generated OpenAPI documents: valid 3.1 structure, every route, auth and error table.

use credgate_dialect::{openapi, DialectSet, DialectSource, LoadOptions};
use serde_json::Value;

fn shipped() -> DialectSet {
    DialectSet::load(&DialectSource::embedded(), &LoadOptions::default()).unwrap()
}

/// `{name}` parameters of an OpenAPI path template.
fn template_params(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(n, _)| n.to_owned()))
        .collect()
}

#[test]
fn every_shipped_dialect_has_a_structurally_valid_document_with_every_route() {
    for d in shipped().dialects() {
        let doc = openapi::document(d);
        // Through text and back, as a client would read it.
        let doc: Value = serde_json::from_str(&doc.to_string()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0", "{}", d.name);
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let schemes = doc["components"]["securitySchemes"].as_object();
        let mut ids = Vec::new();
        for route in &d.routes {
            let path = &doc["paths"][route.path.template.as_str()];
            let op = &path[route.spec.method.to_ascii_lowercase().as_str()];
            assert!(op.is_object(), "{} {} missing", d.name, route.spec.name);
            ids.push(op["operationId"].as_str().unwrap().to_owned());
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for name in template_params(&route.path.template) {
                assert!(
                    params
                        .iter()
                        .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true),
                    "{} {}: path parameter {name}",
                    d.name,
                    route.spec.name
                );
            }
            for p in &params {
                assert!(["path", "query", "header", "cookie"].contains(&p["in"].as_str().unwrap()));
                assert!(p["schema"].is_object());
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key(&route.spec.ok.status.to_string()));
            for (status, r) in responses {
                assert!(status.parse::<u16>().is_ok(), "{status}");
                assert!(r["description"].is_string());
                if let Some(content) = r["content"].as_object() {
                    for media in content.values() {
                        assert!(media["schema"].is_object());
                    }
                }
            }
            // Every status of the error table (bar errors the route cannot raise) is listed.
            for kind in [
                "invalid_request",
                "unauthenticated",
                "rate_limited",
                "internal",
            ] {
                let status = route
                    .spec
                    .errors
                    .get(kind)
                    .unwrap_or(&d.spec.errors[kind])
                    .status;
                assert!(
                    responses.contains_key(&status.to_string()),
                    "{} {kind}",
                    d.name
                );
            }
            for requirement in op["security"].as_array().cloned().unwrap_or_default() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.unwrap().contains_key(name), "{name} undeclared");
                }
            }
        }
        let before = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), before, "{}: operationIds unique", d.name);
    }
}

#[test]
fn documents_show_each_vendors_conventions() {
    let set = shipped();
    let doc = |name: &str| openapi::document(set.get(name).unwrap());

    let akana = doc("akana");
    let change = &akana["paths"]["/api/users/{UserID}/password"]["put"];
    assert_eq!(
        change["security"][0],
        serde_json::json!({"session": [], "csrfHeader": []})
    );
    let schemes = &akana["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["name"], "AtmoAuthToken_acmepaymentscorp");
    assert_eq!(
        schemes["csrfHeader"]["name"],
        "X-Csrf-Token_acmepaymentscorp"
    );
    let ok = &change["responses"]["200"]["content"]["text/plain"];
    assert_eq!(ok["schema"]["type"], "string");
    assert_eq!(
        change["requestBody"]["content"]["application/json"]["schema"]["required"],
        serde_json::json!(["OldPassword", "NewPassword"])
    );

    let crayon = doc("crayon");
    let ok = &crayon["paths"]["/api/v1/users/{id}/changepassword"]["put"]["responses"]["200"];
    assert_eq!(
        ok["content"]["application/json; charset=utf-8"]["schema"]["type"],
        "boolean"
    );
    let token = &crayon["paths"]["/api/v1/connect/token"]["post"];
    assert_eq!(token["security"], serde_json::json!([{"clientBasic": []}]));
    assert!(token["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());

    let oauth = doc("oauth-style");
    let change = &oauth["paths"]["/auth/password/change"]["post"]["responses"];
    assert!(change["204"].get("content").is_none());
    assert!(change["429"]["headers"]["Retry-After"].is_object());
    // Client credentials by Basic or in the body.
    let token = &oauth["paths"]["/auth/token"]["post"];
    assert_eq!(
        token["security"],
        serde_json::json!([{"clientBasic": []}, {}])
    );

    let etapp = doc("etapp");
    let token = &etapp["paths"]["/api/token"]["post"];
    assert_eq!(token["security"], serde_json::json!([{"appKey": []}]));
    let params: Vec<&str> = token["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "header")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The two-factor step's headers are documented with the credentials.
    assert_eq!(
        params,
        ["Authorization", "Password", "Username", "VerificationCode"]
    );
    assert!(token["responses"]["403"]["x-credgate-errors"]
        .as_array()
        .unwrap()
        .contains(&"unknown_app".into()));

    let crafter = doc("crafter");
    let change =
        &crafter["paths"]["/studio/api/1/services/api/1/user/change-password.json"]["post"];
    assert_eq!(
        change["security"][0],
        serde_json::json!({"session": [], "csrfHeader": [], "csrfCookie": []})
    );
    assert!(change["responses"]["200"]["headers"]["Location"].is_object());
    let login = &crafter["paths"]["/studio/api/1/services/api/1/security/login.json"]["post"];
    assert!(login.get("security").is_none());
    assert!(
        login["responses"]["200"]["headers"]["Set-Cookie"]["description"]
            .as_str()
            .unwrap()
            .contains("JSESSIONID")
    );
    // A route without a CSRF check cannot answer csrf_rejected.
    assert!(!login["responses"]["403"]["x-credgate-errors"]
        .as_array()
        .unwrap()
        .contains(&"csrf_rejected".into()));
}
