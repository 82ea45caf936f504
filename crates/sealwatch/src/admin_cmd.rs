//! `sealwatch admin`: bootstrap API tokens, and the API settings for `serve`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sealwatch_store::{AuditEntry, Role, Store};

use crate::cli::AdminCommand;
use crate::config::Config;

/// The admin API settings from the configuration.
pub fn api_config(config: &Config) -> sealwatch_api::ApiConfig {
    let defaults = sealwatch_api::ApiConfig::default();
    sealwatch_api::ApiConfig {
        max_body_bytes: config.api.max_body_bytes,
        request_timeout: Duration::from_secs(config.api.request_timeout_secs.max(1)),
        auth_failures_per_minute: config.api.auth_failures_per_minute,
        auth_revision_check: defaults.auth_revision_check,
        trusted_proxies: config.api.trusted_proxies.clone(),
        password_env_prefix: config.poller.password_env_prefix.clone(),
        metrics_refresh: Duration::from_secs(config.api.metrics_refresh_secs),
        dmarc_rua: config.reporting.dmarc_rua.clone(),
        tlsrpt_rua: config.reporting.tlsrpt_rua.clone(),
        tlsrpt_https_base: config.reporting.tlsrpt_https_base.clone(),
        // Domain verification asks the same resolvers as the health check.
        dns_servers: config.health.name_servers.clone(),
        dns_timeout: Duration::from_secs_f64(config.health.dns_timeout_secs.clamp(0.1, 30.0)),
        workers: defaults.workers,
        intake: sealwatch_api::IntakeConfig {
            per_address_per_minute: config.api.intake_per_address_per_minute,
            per_domain_per_hour: config.api.intake_per_domain_per_hour,
            route_refresh: Duration::from_secs(config.api.intake_route_refresh_secs),
            ..defaults.intake
        },
    }
}

pub async fn run(store: &Store, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::CreateToken { role, name, tenant } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let tenant_id = match (role, tenant) {
                (Role::Tenant, None) => bail!("--role tenant needs --tenant NAME"),
                (Role::Tenant, Some(t)) => Some(
                    store
                        .find_tenant(&t)
                        .await?
                        .with_context(|| format!("no tenant named {t:?}"))?
                        .id,
                ),
                (_, Some(_)) => bail!("--tenant is only for --role tenant"),
                (_, None) => None,
            };
            let name = name.unwrap_or_else(|| format!("{} token", role.as_str()));
            let (token, secret) = sealwatch_api::auth::issue_token(store, &name, role, tenant_id)
                .await
                .map_err(|e| anyhow::anyhow!("creating the token: {e}"))?;
            store
                .audit(AuditEntry {
                    actor: "cli".into(),
                    actor_token_id: None,
                    tenant_id,
                    action: "create".into(),
                    entity: "token".into(),
                    entity_id: Some(token.id.to_string()),
                    before: None,
                    after: Some(serde_json::json!({
                        "id": token.id, "name": token.name, "prefix": token.prefix,
                        "role": token.role.as_str(), "tenant_id": token.tenant_id,
                    })),
                })
                .await?;
            eprintln!(
                "created {} token {:?} (id {}); it is shown only this once:",
                token.role.as_str(),
                token.name,
                token.id
            );
            println!("{secret}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
