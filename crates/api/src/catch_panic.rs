//! The panic boundary of request handlers: a middleware that catches a panic while the
//! wrapped service handles a request, logs it, counts it (`sealwatch_http_panics_total`)
//! and answers 500 as a problem document (`code` = `internal`). The worker thread and the
//! other requests it serves carry on.

use std::future::{Ready, ready};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::FutureExt as _;
use futures_util::future::LocalBoxFuture;

use crate::Metrics;
use crate::error::ApiError;

/// Wrap an app or scope with this to turn handler panics into 500 answers.
#[derive(Debug, Clone)]
pub struct CatchPanic {
    metrics: Arc<Metrics>,
}

impl CatchPanic {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        CatchPanic { metrics }
    }
}

impl<S, B> Transform<S, ServiceRequest> for CatchPanic
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = CatchPanicService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CatchPanicService {
            service: Rc::new(service),
            metrics: self.metrics.clone(),
        }))
    }
}

/// The service [`CatchPanic`] builds.
#[derive(Debug)]
pub struct CatchPanicService<S> {
    service: Rc<S>,
    metrics: Arc<Metrics>,
}

/// The panic message, when it is a string.
fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

impl<S, B> Service<ServiceRequest> for CatchPanicService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // Nothing of the request may be kept here (a clone of it would stop the router
        // from writing the matched path into it): a panic is answered through the error
        // path, which renders the 500 problem document.
        let method = req.method().clone();
        let path = req.path().to_owned();
        let metrics = self.metrics.clone();
        // A panic may happen while the call is set up as well as while it is polled.
        let service = self.service.clone();
        let fut = std::panic::catch_unwind(AssertUnwindSafe(move || service.call(req)));
        Box::pin(async move {
            let outcome = match fut {
                Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                Err(payload) => Err(payload),
            };
            match outcome {
                Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
                Err(payload) => {
                    metrics.panic();
                    tracing::error!(
                        method = %method,
                        path = %path,
                        panic = message(payload.as_ref()),
                        "request handler panicked; answered 500"
                    );
                    Err(ApiError::Internal("handler panicked".into()).into())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, HttpResponse, test, web};

    use super::*;

    async fn boom() -> HttpResponse {
        let items: Vec<u8> = Vec::new();
        let index = items.len() + 3;
        // A handler bug: indexing past the end.
        HttpResponse::Ok().body(format!("{}", items[index]))
    }

    async fn fine() -> HttpResponse {
        HttpResponse::Ok().body("fine")
    }

    #[actix_web::test]
    async fn a_panicking_handler_answers_500_and_the_next_request_works() {
        let metrics = Arc::new(Metrics::default());
        let app = test::init_service(
            App::new()
                .wrap(CatchPanic::new(metrics.clone()))
                .route("/boom", web::get().to(boom))
                .route("/fine", web::get().to(fine)),
        )
        .await;
        // The panic comes back as an error, which actix renders as the 500 problem.
        let err = test::try_call_service(&app, test::TestRequest::get().uri("/boom").to_request())
            .await
            .expect_err("the panic is an error answer");
        let res = err.error_response();
        assert_eq!(res.status(), 500);
        assert_eq!(
            res.headers()
                .get("content-type")
                .map(|v| v.as_bytes().to_vec()),
            Some(b"application/problem+json".to_vec())
        );
        let bytes = actix_web::body::to_bytes(res.into_body())
            .await
            .expect("the body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(body["code"], "internal");
        assert_eq!(body["status"], 500);
        assert!(
            !body.to_string().contains("index out of bounds"),
            "the panic message is logged, not shown: {body}"
        );

        let res =
            test::call_service(&app, test::TestRequest::get().uri("/fine").to_request()).await;
        assert_eq!(res.status(), 200);
        assert_eq!(test::read_body(res).await, "fine");
        assert!(
            metrics
                .render(None)
                .contains("sealwatch_http_panics_total 1"),
            "{}",
            metrics.render(None)
        );
    }
}
