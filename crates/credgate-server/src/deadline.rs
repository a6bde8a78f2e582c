//! The request-body deadline. actix-web bounds the request head (`client_request_timeout`);
//! this bounds the body: once the head is in, the whole body must arrive within the deadline,
//! or the request is answered 408 and its connection closed. Without it a client sending one
//! byte now and then holds a connection (and a file descriptor) for as long as it likes.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::HttpMessage;
use credgate_core::Error;
use futures_util::StreamExt;

/// Wraps the request's payload so that reading it fails once `limit` has passed; gives the
/// flag that says it did, or `None` when the request has no body to wait for (most GETs,
/// health checks: nothing to wrap).
pub fn guard(req: &mut ServiceRequest, limit: Duration) -> Option<Rc<Cell<bool>>> {
    let payload = req.take_payload();
    if let Payload::None = payload {
        return None;
    }
    let expired = Rc::new(Cell::new(false));
    let deadline = tokio::time::Instant::now() + limit;
    let flag = Rc::clone(&expired);
    let guarded = futures_util::stream::unfold(Some(payload), move |state| {
        let flag = Rc::clone(&flag);
        async move {
            let mut payload = state?;
            match tokio::time::timeout_at(deadline, payload.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(payload))),
                Ok(None) => None,
                Err(_) => {
                    flag.set(true);
                    let late = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    );
                    Some((Err(PayloadError::Io(late)), None))
                }
            }
        }
    });
    req.set_payload(Payload::Stream {
        payload: Box::pin(guarded),
    });
    Some(expired)
}

/// The answer to a request whose body deadline passed (see [`guard`]), 408 with
/// `Connection: close`: a dialect route in its own style (its handler renders
/// `request_timeout`), anything else with the problem document.
pub fn expired<B>(mut res: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    tracing::info!(path = %res.request().path(), "request body deadline passed");
    if res.status() == StatusCode::REQUEST_TIMEOUT {
        // A dialect route answered its own 408 (its error table's `request_timeout`): keep
        // that answer, and close the connection, whose request stream is now out of step.
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        return res.map_into_left_body();
    }
    // Anything else (the native and admin APIs): their problem document.
    let labels = res
        .response()
        .extensions()
        .get::<crate::metrics::RequestLabels>()
        .cloned();
    let mut timeout = crate::problem::problem(&Error::RequestTimeout);
    timeout
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    if let Some(labels) = labels {
        // The route's dialect and name stay; the outcome is the timeout.
        timeout
            .extensions_mut()
            .insert(crate::metrics::RequestLabels {
                outcome: "request_timeout",
                ..labels
            });
    }
    let (req, _) = res.into_parts();
    ServiceResponse::new(req, timeout).map_into_right_body()
}
