//! The handlers, one module per resource, and the OpenAPI document listing them.

// `#[utoipa::path]` re-emits the extractor types of each handler with their full path.
#![allow(unused_qualifications)]

pub mod anomalies;
pub mod digests;
pub mod health;
pub mod mailboxes;
pub mod reports;
pub mod system;
pub mod tenants;

use actix_web::web;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sealwatch admin API",
        description = "Onboard subscriber domains, read their DMARC and TLS-RPT reports, review anomalies. \
Errors are RFC 9457 problem documents (application/problem+json) with a stable `code`. \
Lists are ordered deterministically and paged with an opaque `cursor`.",
        license(name = "Apache-2.0")
    ),
    paths(
        system::healthz,
        system::readyz,
        system::metrics,
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::get_tenant,
        tenants::update_tenant,
        tenants::deactivate_tenant,
        tenants::add_domain,
        tenants::list_domains,
        tenants::list_all_domains,
        tenants::get_domain,
        tenants::remove_domain,
        tenants::verify_domain,
        mailboxes::create_mailbox,
        mailboxes::list_mailboxes,
        mailboxes::get_mailbox,
        mailboxes::update_mailbox,
        mailboxes::remove_mailbox,
        reports::list_dmarc,
        reports::get_dmarc,
        reports::raw_dmarc,
        reports::list_tls,
        reports::get_tls,
        reports::raw_tls,
        anomalies::list_anomalies,
        anomalies::get_anomaly,
        anomalies::review_anomaly,
        digests::list_digests,
        digests::preview_digest,
        digests::resend_digest,
        health::get_health,
        health::run_health,
        system::list_quarantine,
        system::raw_quarantine,
        system::retry_quarantine,
        system::post_tlsrpt,
        system::post_tlsrpt_rfc,
        system::create_token,
        system::list_tokens,
        system::revoke_token,
        system::list_audit,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Registers every handler.
/// Only `/healthz`, `/readyz` and `/metrics` (processes without the `api` role).
pub fn configure_probes(cfg: &mut web::ServiceConfig) {
    cfg.service(system::healthz)
        .service(system::readyz)
        .service(system::metrics);
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(system::healthz)
        .service(system::readyz)
        .service(system::metrics)
        .service(tenants::create_tenant)
        .service(tenants::list_tenants)
        .service(tenants::get_tenant)
        .service(tenants::update_tenant)
        .service(tenants::deactivate_tenant)
        .service(tenants::add_domain)
        .service(tenants::list_domains)
        .service(tenants::list_all_domains)
        .service(tenants::get_domain)
        .service(tenants::remove_domain)
        .service(tenants::verify_domain)
        .service(mailboxes::create_mailbox)
        .service(mailboxes::list_mailboxes)
        .service(mailboxes::get_mailbox)
        .service(mailboxes::update_mailbox)
        .service(mailboxes::remove_mailbox)
        .service(reports::list_dmarc)
        .service(reports::get_dmarc)
        .service(reports::raw_dmarc)
        .service(reports::list_tls)
        .service(reports::get_tls)
        .service(reports::raw_tls)
        .service(anomalies::list_anomalies)
        .service(anomalies::get_anomaly)
        .service(anomalies::review_anomaly)
        .service(digests::preview_digest)
        .service(digests::list_digests)
        .service(digests::resend_digest)
        .service(health::get_health)
        .service(health::run_health)
        .service(system::list_quarantine)
        .service(system::raw_quarantine)
        .service(system::retry_quarantine)
        .service(system::post_tlsrpt)
        .service(system::post_tlsrpt_rfc)
        .service(system::create_token)
        .service(system::list_tokens)
        .service(system::revoke_token)
        .service(system::list_audit);
}
