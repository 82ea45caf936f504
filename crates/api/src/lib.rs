//! The admin web API of sealwatch (actix-web, JSON under `/api/v1`, OpenAPI at
//! `/api/v1/openapi.json`, Swagger UI at `/api/v1/docs/`).
//!
//! **API boundary.** [`server`] starts the HTTP server on a bound listener with an
//! [`AppState`]; [`openapi`] is the document generated from the handlers; [`auth::issue_token`]
//! creates a bearer token (the CLI bootstraps the first one with it); [`Metrics`] is shared
//! with the poll loop.
//!
//! **Architecture invariants.** This crate knows HTTP and JSON and nothing below them: it
//! never parses reports (posted TLS reports go through `sealwatch_ingest::prepare`, which
//! calls the parser), never speaks IMAP, and never builds SQL — every query is a
//! `sealwatch_store` function that takes a tenant [`sealwatch_store::Scope`], so a handler
//! cannot forget the tenant filter; digests are rendered by `sealwatch_digest` and domains
//! verified by `sealwatch_health`. An object of another tenant answers 404, like one that
//! does not exist. Every change is written to the audit log. Errors are RFC 9457 problem
//! documents with a stable `code`.

pub mod auth;
mod catch_panic;
pub mod client;
pub mod error;
pub mod intake;
mod metrics;
mod page;
mod routes;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service as _};
use actix_web::{App, HttpServer, web};
use sealwatch_parser::Parser;
use sealwatch_store::Store;
use tracing::Instrument as _;
use utoipa::OpenApi as _;
use utoipa_swagger_ui::SwaggerUi;

pub use catch_panic::CatchPanic;
pub use client::TrustedProxy;
pub use intake::IntakeConfig;
pub use metrics::Metrics;

use crate::auth::Authenticator;
use crate::error::ApiError;

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body (JSON and posted reports).
    pub max_body_bytes: usize,
    /// Time a request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// Failed authentications per client address and per token prefix per minute before
    /// further failures are answered 429 (a valid token is always accepted).
    pub auth_failures_per_minute: u32,
    /// How often each process reads the authentication revision (revocations and tenant
    /// deactivations made elsewhere take effect within this).
    pub auth_revision_check: Duration,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers name the client (load
    /// balancers, reverse proxies); for everyone else the TCP peer is the client.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// Mailbox passwords may only be read from environment variables with this prefix.
    pub password_env_prefix: String,
    /// How long `/metrics` serves the database gauges before reading them again.
    pub metrics_refresh: Duration,
    /// DMARC aggregate address subscribers add to their `rua=`.
    pub dmarc_rua: String,
    /// TLS-RPT mailto address subscribers add to their TLS-RPT `rua=`.
    pub tlsrpt_rua: String,
    /// Public base URL of this API, for the TLS-RPT `https:` rua (optional).
    pub tlsrpt_https_base: Option<String>,
    /// Name servers for domain verification (empty: the system resolver).
    pub dns_servers: Vec<SocketAddr>,
    /// Timeout of each verification DNS query.
    pub dns_timeout: Duration,
    /// HTTP worker threads (0: actix's default, one per core).
    pub workers: usize,
    /// Rate limits of the TLS-RPT intake and its routing-table refresh.
    pub intake: IntakeConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 10 << 20,
            request_timeout: Duration::from_secs(30),
            auth_failures_per_minute: 20,
            auth_revision_check: Duration::from_secs(2),
            trusted_proxies: Vec::new(),
            password_env_prefix: sealwatch_ingest::imap::DEFAULT_PASSWORD_ENV_PREFIX.to_owned(),
            metrics_refresh: Duration::from_secs(15),
            dmarc_rua: "dmarc@reports.sealwatch.invalid".into(),
            tlsrpt_rua: "tlsrpt@reports.sealwatch.invalid".into(),
            tlsrpt_https_base: None,
            dns_servers: Vec::new(),
            dns_timeout: Duration::from_secs(5),
            workers: 0,
            intake: IntakeConfig::default(),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub config: ApiConfig,
    pub parser: Arc<Parser>,
    pub metrics: Arc<Metrics>,
    pub auth: Authenticator,
    /// Rate limits and the routing table of the TLS-RPT intake.
    pub intake: intake::Intake,
    /// The job queue, for work the API hands to the workers (on-demand health checks).
    pub queue: Option<sealwatch_jobs::Queue>,
}

impl AppState {
    pub fn new(
        store: Store,
        config: ApiConfig,
        parser: Arc<Parser>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let auth = Authenticator::new(config.auth_failures_per_minute, config.auth_revision_check);
        let intake = intake::Intake::new(config.intake.clone());
        AppState {
            store,
            intake,
            config,
            parser,
            metrics,
            auth,
            queue: None,
        }
    }

    /// Lets the API queue jobs.
    pub fn with_queue(mut self, queue: sealwatch_jobs::Queue) -> Self {
        self.queue = Some(queue);
        self
    }
}

/// The client's address as far as this server can tell: the TCP peer, or for a peer in
/// `trusted_proxies` the address its forwarding headers name (see [`client::resolve`]).
pub(crate) fn client_address(
    req: &actix_web::HttpRequest,
    config: &ApiConfig,
) -> Option<std::net::IpAddr> {
    client::resolve(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &config.trusted_proxies,
    )
}

/// The OpenAPI document of every endpoint.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::ApiDoc::openapi()
}

/// The OpenAPI document as pretty JSON (what `crates/api/openapi.json` holds).
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// Starts a server answering only `/healthz`, `/readyz` and `/metrics`: what a poller,
/// worker or scheduler process exposes to probes and scrapers. Stop it like [`server`].
pub fn probe_server(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(CatchPanic::new(state.metrics.clone()))
            .configure(routes::configure_probes)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("route".into()))
            }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run())
}

/// Starts the server on a bound listener. Signals are left to the caller: stop it with
/// `server.handle().stop(true)` (graceful: requests in flight finish).
pub fn server(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let timeout = state.config.request_timeout;
    let max_body = state.config.max_body_bytes;
    let workers = state.config.workers;
    let state = web::Data::new(state);
    let doc = openapi();
    let mut http = HttpServer::new(move || {
        let metrics = state.metrics.clone();
        App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(|e, _| error::json_error(e)),
            )
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .wrap(
                actix_web::middleware::ErrorHandlers::new()
                    .default_handler(error::problem_for_plain_errors),
            )
            // Inside the metrics and timeout layer, so a panic is answered and counted
            // like any other 500.
            .wrap(CatchPanic::new(metrics.clone()))
            .wrap_fn(move |req, srv| {
                let metrics = metrics.clone();
                let method = req.method().to_string();
                let span = tracing::info_span!(
                    "request",
                    method = %method,
                    path = %req.path(),
                    tenant_id = tracing::field::Empty,
                    role = tracing::field::Empty,
                    status = tracing::field::Empty,
                );
                let started = Instant::now();
                let fut = srv.call(req);
                async move {
                    match tokio::time::timeout(timeout, fut).await {
                        Ok(Ok(res)) => {
                            let route = res
                                .request()
                                .match_pattern()
                                .unwrap_or_else(|| "unmatched".to_owned());
                            let status = res.status().as_u16();
                            tracing::Span::current().record("status", status);
                            metrics.observe(&method, &route, status, started.elapsed());
                            tracing::debug!(ms = started.elapsed().as_millis() as u64, "answered");
                            Ok(res)
                        }
                        Ok(Err(e)) => {
                            // An error that reached the top (a caught panic, for one): the
                            // route is no longer known.
                            let status = e.as_response_error().status_code().as_u16();
                            tracing::Span::current().record("status", status);
                            metrics.observe(&method, "unknown", status, started.elapsed());
                            Err(e)
                        }
                        Err(_) => {
                            metrics.observe(&method, "timeout", 503, started.elapsed());
                            Err(ApiError::Timeout.into())
                        }
                    }
                }
                .instrument(span)
            })
            .configure(routes::configure)
            .service(SwaggerUi::new("/api/v1/docs/{_:.*}").url("/api/v1/openapi.json", doc.clone()))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("route".into()))
            }))
    })
    .disable_signals()
    .shutdown_timeout(30);
    if workers > 0 {
        http = http.workers(workers);
    }
    Ok(http.listen(listener)?.run())
}
