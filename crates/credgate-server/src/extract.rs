//! Typed extractors of the native and admin APIs: the body as JSON, the caller's bearer token
//! and the request's metadata. A rejection is the canonical error's problem document.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use credgate_core::{Error, RequestMeta, SecretToken};
use credgate_dialect::authorization::bearer_token;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::problem::{json_body, Problem};
use crate::telemetry::request_id;

/// A JSON request body (within the configured body limit); a body that does not parse is a
/// 400 problem naming where it broke.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move { Ok(Json(json_body(&bytes.await?)?)) })
    }
}

/// The bearer token the caller presented; without one, a 401 problem. Put it before the body
/// among a handler's arguments: a caller without a token learns nothing about the body.
pub struct Bearer(pub SecretToken);

impl FromRequest for Bearer {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            bearer(req)
                .map(Bearer)
                .ok_or(Problem(Error::Unauthenticated)),
        )
    }
}

/// The bearer token of `Authorization`, if it holds one.
pub fn bearer(req: &HttpRequest) -> Option<SecretToken> {
    bearer_token(req.headers().get("authorization")?.to_str().ok()?)
}

/// What the core records of a native API request.
pub struct NativeMeta(pub RequestMeta);

/// What the core records of an admin API request.
pub struct AdminMeta(pub RequestMeta);

impl FromRequest for NativeMeta {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(meta(req, "native"))))
    }
}

impl FromRequest for AdminMeta {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(meta(req, "admin"))))
    }
}

/// The request's metadata, under `label` (the dialect's name, `native` or `admin`).
pub fn meta(req: &HttpRequest, label: &str) -> RequestMeta {
    RequestMeta {
        dialect: label.into(),
        request_id: request_id(req),
        client_addr: crate::client_addr::of(req),
    }
}
