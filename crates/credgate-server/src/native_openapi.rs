//! The OpenAPI 3.1 document of the native and admin APIs (`native.rs`, `admin.rs`). Kept
//! beside the handlers it describes; schemathesis checks it against the running server in CI
//! (`tests/openapi.rs`), so a handler that answers something undocumented fails the build.

use serde_json::{json, Map, Value};

fn problem_ref() -> Value {
    json!({"$ref": "#/components/schemas/Problem"})
}

/// A response carrying an RFC 9457 problem.
fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": problem_ref()}}})
}

/// The answers every call can get when the caller is refused or the gateway cannot serve.
fn common(mut responses: Map<String, Value>, admin: bool) -> Value {
    if admin {
        responses.insert(
            "401".into(),
            problem("The admin token is missing or wrong (`unauthenticated`)."),
        );
    }
    responses
        .entry("429")
        .or_insert_with(|| problem("Too many attempts (`rate_limited`); see Retry-After."));
    responses.insert(
        "503".into(),
        problem("The database is unreachable (`unavailable`); see Retry-After."),
    );
    Value::Object(responses)
}

fn responses(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn no_content(description: &str) -> Value {
    json!({"description": description})
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn closed_object(props: Value, required: &[&str]) -> Value {
    let mut o = object(props, required);
    o["additionalProperties"] = json!(false);
    o
}

fn admin_op(summary: &str, mut op: Value) -> Value {
    op["summary"] = json!(summary);
    op["tags"] = json!(["admin"]);
    op["security"] = json!([{"adminToken": []}]);
    op
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
}

/// The document served at `GET /openapi/native.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    for group in [health_paths(), native_paths(), admin_paths()] {
        if let Value::Object(group) = group {
            paths.extend(group);
        }
    }
    json!({
        "openapi": credgate_dialect::openapi::OPENAPI_VERSION,
        "info": {
            "title": "credgate native and admin APIs",
            "description": "The gateway's own API (OAuth 2.0 token endpoint, password change, resets) and its admin API. Errors are RFC 9457 problems with `type` `urn:credgate:error:<kind>`; the token endpoint answers RFC 6749 errors.",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "components": components(),
    })
}

fn string() -> Value {
    json!({"type": "string"})
}

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

fn bad_request() -> Value {
    problem("The request is malformed or invalid (`malformed_request`, `invalid_request`, `policy_violation`, `invalid_credentials`, `reset_token_invalid`).")
}

/// Liveness, readiness and the OpenAPI documents.
fn health_paths() -> Value {
    let string = string();
    json!({
        "/healthz": {"get": {
            "summary": "The process is up", "tags": ["health"],
            "responses": {"200": json_response("Up.", object(json!({"status": {"const": "ok"}}), &["status"]))},
        }},
        "/readyz": {"get": {
            "summary": "The database is reachable (upstreams are reported, not required)", "tags": ["health"],
            "responses": common(responses(&[("200", json_response("Ready, or `degraded` when an upstream is unreachable.", object(json!({
                "status": {"enum": ["ready", "degraded"]},
                "failing": {"type": "array", "items": string},
                "upstreams": {"type": "object", "additionalProperties": {"enum": ["reachable", "unreachable"]}},
            }), &["status"])))]), false),
        }},
        "/openapi/{name}.json": {"get": {
            "summary": "An OpenAPI document: `native`, or a served dialect's name", "tags": ["health"],
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": string}],
            "responses": {
                "200": json_response("The document.", json!({"type": "object", "required": ["openapi", "paths"]})),
                "404": problem("No such dialect (`not_found`)."),
            },
        }},
    })
}

/// The token endpoint, password change and resets.
fn native_paths() -> Value {
    let string = string();
    let oauth_error = json!({
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "enum": ["invalid_request", "invalid_grant", "invalid_client", "unsupported_grant_type"]}},
    });
    let token_failure = |status: &str| {
        json!({"description": format!("RFC 6749 error ({status})."), "content": {
            "application/json": {"schema": oauth_error},
            "application/problem+json": {"schema": problem_ref()},
        }})
    };
    let token_fields = json!({
        "grant_type": {"type": "string", "enum": ["password", "client_credentials", "refresh_token"]},
        "username": string, "password": string, "client_id": string,
        "client_secret": string, "refresh_token": string,
    });
    let token_form =
        json!({"type": "object", "properties": token_fields, "required": ["grant_type"]});
    let bad_request = bad_request();
    json!({
        "/v1/token": {"post": {
            "summary": "Issue a token: password, client_credentials or refresh_token grant", "tags": ["native"],
            "security": [{"clientBasic": []}, {}],
            "requestBody": {"required": true, "content": {
                "application/x-www-form-urlencoded": {"schema": token_form},
                "application/json": {"schema": token_form},
            }},
            "responses": common(responses(&[
                ("200", json_response("The token.", object(json!({
                    "access_token": string, "token_type": {"const": "Bearer"},
                    "expires_in": {"type": "integer"}, "refresh_token": string,
                }), &["access_token", "token_type", "expires_in"]))),
                ("400", token_failure("400")),
                ("401", token_failure("401")),
                ("403", problem("The client may not use this grant (`forbidden`).")),
            ]), false),
        }},
        "/v1/revoke": {"post": {
            "summary": "Revoke an access or refresh token (RFC 7009); 200 also for unknown tokens", "tags": ["native"],
            "security": [{"clientBasic": []}, {}],
            "requestBody": {"required": true, "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["token"], "properties": {
                    "token": string, "token_type_hint": {"type": "string"}, "client_id": string, "client_secret": string,
                }}},
            }},
            "responses": common(responses(&[
                ("200", no_content("Revoked, or unknown to this issuer and client; a refresh token ends its whole session.")),
                ("400", token_failure("400")),
                ("401", token_failure("401")),
            ]), false),
        }},
        "/v1/users/{id}/password": {"put": {
            "summary": "Change a password (`me` for the caller)", "tags": ["native"],
            "security": [{"bearer": []}],
            "parameters": [{"name": "id", "in": "path", "required": true, "description": "The user's id, or `me`.", "schema": string}],
            "requestBody": json_body(object(json!({"current_password": string, "new_password": string}), &["current_password", "new_password"])),
            "responses": common(responses(&[
                ("204", no_content("Changed, durably; the user's other sessions are revoked.")),
                ("400", bad_request.clone()),
                ("401", problem("No valid user token (`unauthenticated`).")),
                ("403", problem("Not this caller's password (`forbidden`, `externally_managed`).")),
                ("404", problem("No such user (`not_found`).")),
                ("409", problem("Changed concurrently (`conflict`).")),
            ]), false),
        }},
        "/v1/password-resets": {"post": {
            "summary": "Start a password reset; the same answer whether or not the user exists", "tags": ["native"],
            "requestBody": json_body(object(json!({"username": string}), &["username"])),
            "responses": common(responses(&[("202", no_content("Accepted.")), ("400", bad_request.clone())]), false),
        }},
        "/v1/password-resets/validate": {"post": {
            "summary": "Check a reset token without spending it", "tags": ["native"],
            "requestBody": json_body(object(json!({"username": string, "token": string}), &["token"])),
            "responses": common(responses(&[("204", no_content("Valid.")), ("400", bad_request.clone())]), false),
        }},
        "/v1/password-resets/complete": {"post": {
            "summary": "Set a new password with a reset token", "tags": ["native"],
            "requestBody": json_body(object(json!({"username": string, "token": string, "new_password": string}), &["token", "new_password"])),
            "responses": common(responses(&[
                ("204", no_content("Reset, durably; every session is revoked.")),
                ("400", bad_request.clone()),
                ("403", problem("The user's password is managed elsewhere (`externally_managed`).")),
                ("404", problem("No such user (`not_found`).")),
                ("409", problem("Changed concurrently (`conflict`).")),
            ]), false),
        }},
    })
}

/// The admin API, metrics and reload.
fn admin_paths() -> Value {
    let (string, string_map, bad_request) = (string(), string_map(), bad_request());
    let user = json!({"$ref": "#/components/schemas/User"});
    json!({
        "/admin/users": {
            "post": admin_op("Create a user", json!({
                "requestBody": json_body(closed_object(json!({
                    "username": string, "password": string, "id": string,
                    "admin": {"type": "boolean"}, "externally_managed": {"type": "boolean"},
                    "aliases": string_map, "profile": string_map,
                }), &["username", "password"])),
                "responses": common(responses(&[
                    ("201", json_response("Created.", object(json!({"id": string}), &["id"]))),
                    ("400", bad_request.clone()),
                    ("409", problem("The username, id or an alias is taken (`conflict`).")),
                ]), true),
            })),
            "get": admin_op("List users (never their hashes)", json!({
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
                ],
                "responses": common(responses(&[
                    ("200", json_response("Users.", json!({"type": "array", "items": user}))),
                    ("400", problem("A bad query parameter (`malformed_request`).")),
                ]), true),
            })),
        },
        "/admin/users/{id}": {"get": admin_op("Show a user", json!({
            "parameters": [id_param()],
            "responses": common(responses(&[
                ("200", json_response("The user.", user)),
                ("404", problem("No such user (`not_found`).")),
            ]), true),
        }))},
        "/admin/users/{id}/security-answer": {"put": admin_op("Set a security question and answer (the answer is stored hashed)", json!({
            "parameters": [id_param()],
            "requestBody": json_body(closed_object(json!({"question": string, "answer": string}), &["question", "answer"])),
            "responses": common(responses(&[
                ("204", no_content("Set.")),
                ("400", bad_request.clone()),
                ("404", problem("No such user (`not_found`).")),
            ]), true),
        }))},
        "/admin/clients": {"post": admin_op("Register an API client", json!({
            "requestBody": json_body(closed_object(json!({"client_id": string, "client_secret": string, "name": {"type": ["string", "null"]}}), &["client_id", "client_secret"])),
            "responses": common(responses(&[
                ("201", json_response("Registered.", object(json!({"client_id": string}), &["client_id"]))),
                ("400", bad_request.clone()),
                ("409", problem("The client id is taken (`conflict`).")),
            ]), true),
        }))},
        "/admin/apps": {"post": admin_op("Register an application key", json!({
            "requestBody": json_body(closed_object(json!({"key": string, "name": {"type": ["string", "null"]}}), &["key"])),
            "responses": common(responses(&[
                ("201", json_response("Registered.", object(json!({"name": {"type": ["string", "null"]}}), &["name"]))),
                ("400", bad_request.clone()),
                ("409", problem("The key is registered already (`conflict`).")),
            ]), true),
        }))},
        "/admin/dialects/reload": {"post": admin_op("Re-read the dialect folders; swap the new set in only if every changed dialect's examples pass", json!({
            "responses": common(responses(&[
                ("200", json_response("Swapped in (`reloaded`), or nothing changed (`unchanged`).", json!({"$ref": "#/components/schemas/ReloadReport"}))),
                ("422", json_response("Refused (`rejected`): the old set keeps serving.", json!({"$ref": "#/components/schemas/ReloadReport"}))),
            ]), true),
        }))},
        "/metrics": {"get": admin_op("Prometheus metrics (here when no separate metrics listener is configured)", json!({
            "responses": {
                "200": {"description": "The Prometheus text format.", "content": {"text/plain": {"schema": string}}},
                "401": problem("The admin token is missing or wrong (`unauthenticated`)."),
                "404": {"description": "Metrics are off here (disabled, or served on their own listener)."},
            },
        }))},
        "/admin/audit": {"get": admin_op("Read the audit trail, newest first", json!({
            "parameters": [
                {"name": "user_id", "in": "query", "schema": string},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
            ],
            "responses": common(responses(&[
                ("200", json_response("Audit records.", json!({"type": "array", "items": {"$ref": "#/components/schemas/AuditRecord"}}))),
                ("400", problem("A bad query parameter (`malformed_request`).")),
            ]), true),
        }))},
        "/admin/shadow/divergences": {"get": admin_op("Shadow mode: stored divergences, newest first", json!({
            "parameters": [
                {"name": "dialect", "in": "query", "schema": string},
                {"name": "route", "in": "query", "schema": string},
                {"name": "kind", "in": "query", "schema": string},
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": -9223372036854775808_i64, "maximum": 9223372036854775807_i64}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
            ],
            "responses": common(responses(&[
                ("200", json_response("Divergences (never a password, token or cookie value).", json!({"type": "array", "items": {"$ref": "#/components/schemas/ShadowComparison"}}))),
                ("400", problem("A bad query parameter (`malformed_request`).")),
            ]), true),
        }))},
        "/admin/shadow/exchanges": {"get": admin_op("Shadow mode: recorded exchanges (secrets replaced at record time), newest first", json!({
            "parameters": [
                {"name": "dialect", "in": "query", "schema": string},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
            ],
            "responses": common(responses(&[
                ("200", json_response("Comparisons with their exchange.", json!({"type": "array", "items": {"$ref": "#/components/schemas/ShadowComparison"}}))),
                ("400", problem("A bad query parameter (`malformed_request`).")),
            ]), true),
        }))},
        "/admin/shadow/summary": {"get": admin_op("Shadow mode: comparisons per dialect and route, and readiness to cut over", json!({
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": -9223372036854775808_i64, "maximum": 9223372036854775807_i64}},
            ],
            "responses": common(responses(&[
                ("200", json_response("The summary.", json!({"$ref": "#/components/schemas/ShadowSummary"}))),
                ("400", problem("A bad query parameter (`malformed_request`).")),
            ]), true),
        }))},
    })
}

fn components() -> Value {
    let (string, string_map) = (string(), string_map());
    json!({
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A user token from `POST /v1/token`."},
        "clientBasic": {"type": "http", "scheme": "basic", "description": "Client credentials (or `client_id`/`client_secret` in the body)."},
        "adminToken": {"type": "http", "scheme": "bearer", "description": "The configured `admin_token`."},
    },
    "schemas": {
        "ShadowComparison": object(json!({
            "seq": {"type": "integer"}, "at": {"type": "integer"},
            "dialect": string, "route": string, "request_id": string,
            "result": {"type": "string", "enum": ["agreement", "divergence", "not_synced"]},
            "kind": {"type": ["string", "null"]},
            "upstream_outcome": string, "upstream_status": {"type": "integer"},
            "local_outcome": string, "local_status": {"type": "integer"},
            "fields": {"type": "array", "items": string},
            "exchange": {},
            "synced": {"type": "boolean"},
        }), &["seq", "at", "dialect", "route", "request_id", "result", "upstream_outcome", "upstream_status", "local_outcome", "local_status", "fields", "synced"]),
        "ShadowSummary": object(json!({
            "since": {"type": "integer"}, "ready_after": {"type": "integer"},
            "routes": {"type": "array", "items": object(json!({
                "dialect": string, "route": string,
                "compared": {"type": "integer"}, "agreements": {"type": "integer"},
                "divergences": {"type": "object", "additionalProperties": {"type": "integer"}},
                "not_synced": {"type": "integer"}, "users_synced": {"type": "integer"},
                "ready": {"type": "boolean"},
            }), &["dialect", "route", "compared", "agreements", "divergences", "not_synced", "users_synced", "ready"])},
        }), &["since", "ready_after", "routes"]),
        "Problem": {
            "type": "object", "required": ["type", "title", "status"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "errors": {"type": "array", "items": object(json!({"field": string, "reason": string}), &["field", "reason"])},
                "rules": {"type": "array", "items": object(json!({"rule": string, "message": string}), &["rule", "message"])},
            },
        },
        "User": object(json!({
            "id": string, "username": string, "admin": {"type": "boolean"},
            "externally_managed": {"type": "boolean"}, "aliases": string_map,
            "profile": string_map, "created_at": {"type": "integer"},
        }), &["id", "username", "admin", "externally_managed", "aliases", "profile", "created_at"]),
        "ReloadReport": object(json!({
            "status": {"enum": ["reloaded", "unchanged", "rejected"]},
            "changed": {"type": "array", "items": string},
            "error": {"type": ["string", "null"]},
            "failures": {"type": "array", "items": object(json!({
                "dialect": string, "example": string,
                "mismatches": {"type": "array", "items": string},
            }), &["dialect", "example", "mismatches"])},
        }), &["status", "changed", "error", "failures"]),
        "AuditRecord": object(json!({
            "seq": {"type": "integer"}, "at": {"type": "integer"}, "kind": string,
            "user_id": {"type": ["string", "null"]}, "dialect": string, "request_id": string,
            "client_addr": {"type": ["string", "null"]}, "detail": {},
        }), &["seq", "at", "kind", "dialect", "request_id"]),
    },
    })
}
