//! The one middleware every request passes (issue 16: it replaces three `from_fn` layers, each
//! of which boxed the inner service's future and its own). In order: the header-size limit
//! (431), the request id, the listener the request came in on (a dialect or the metrics
//! listener is answered here), the body deadline (`deadline`); after the answer: the deadline's
//! 408, the response headers, the access line and the metrics.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use futures_util::future::{ready, LocalBoxFuture, Ready};

use crate::listeners::{Listeners, Role};

/// The middleware's settings, shared by every worker.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Which role each bound address plays.
    pub listeners: Arc<Listeners>,
    /// How long a request body may take (`body_timeout_ms`).
    pub body_deadline: Duration,
    /// Whether requests are counted and timed for the metrics.
    pub metrics: bool,
}

impl<S, B> Transform<S, ServiceRequest> for Gate
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = GateService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GateService {
            service: Rc::new(service),
            gate: Rc::new(self.clone()),
        }))
    }
}

/// [`Gate`] in front of the routes.
pub struct GateService<S> {
    service: Rc<S>,
    gate: Rc<Gate>,
}

impl<S, B> Service<ServiceRequest> for GateService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Box::pin(pass(Rc::clone(&self.service), Rc::clone(&self.gate), req))
    }
}

async fn pass<S, B>(
    service: Rc<S>,
    gate: Rc<Gate>,
    mut req: ServiceRequest,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let started = Instant::now();
    if let Some(refusal) = crate::telemetry::refuse_large_headers(&req) {
        let res = req.into_response(refusal);
        crate::metrics::observe(&res, gate.metrics, started);
        return Ok(res.map_into_right_body());
    }
    let id = crate::telemetry::assign_id(&req);
    let role = gate.listeners.role(req.app_config().local_addr());
    let expired = match role {
        Role::Metrics => None,
        // A dialect listener's body is bounded like the main listener's.
        Role::Main | Role::Dialects(_) => crate::deadline::guard(&mut req, gate.body_deadline),
    };
    let answered = match role {
        Role::Main => service.call(req).await?.map_into_left_body(),
        extra => crate::listeners::serve_extra(&extra, req)
            .await?
            .map_into_right_body(),
    };
    let mut res = match expired {
        Some(flag) if flag.get() => either_flat(crate::deadline::expired(answered)),
        _ => answered,
    };
    crate::telemetry::finish(&mut res, id, started);
    crate::metrics::observe(&res, gate.metrics, started);
    Ok(res)
}

/// `EitherBody<EitherBody<B>>` as `EitherBody<B>` (both right bodies are boxed).
fn either_flat<B: MessageBody>(
    res: ServiceResponse<EitherBody<EitherBody<B>>>,
) -> ServiceResponse<EitherBody<B>> {
    res.map_body(|_, body| match body {
        EitherBody::Left { body } => body,
        EitherBody::Right { body } => EitherBody::right(body),
    })
}
