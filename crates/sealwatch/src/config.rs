//! Configuration: defaults, then `sealwatch.toml` (or `--config FILE`), then environment
//! variables `SEALWATCH_<SECTION>__<KEY>` (for example `SEALWATCH_DATABASE__URL`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub poller: PollerSettings,
    pub parser: ParserSettings,
    pub analysis: AnalysisSettings,
    pub api: ApiSettings,
    pub reporting: ReportingSettings,
    pub digest: DigestSettings,
    pub smtp: SmtpSettings,
    pub jobs: JobSettings,
    pub retention: RetentionSettings,
    pub health: HealthSettings,
    pub outbound: OutboundSettings,
}

/// Connections the service opens on a tenant's or a stranger's behalf (the MTA-STS policy
/// fetch of the health check, reverse DNS of report addresses).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    /// Also connect to (and look up) private, loopback, link-local and other special-purpose
    /// addresses (RFC 6890). Off in production; on for test servers on loopback.
    pub allow_private_addresses: bool,
}

impl OutboundSettings {
    pub fn policy(&self) -> sealwatch_health::OutboundPolicy {
        sealwatch_health::OutboundPolicy::allow_private(self.allow_private_addresses)
    }
}

/// How the weekly (and on-demand) domain health check looks things up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Name servers to ask, `IP:PORT` (empty: the system resolver).
    pub name_servers: Vec<std::net::SocketAddr>,
    /// Timeout of each DNS query in seconds (one retry follows a timeout).
    pub dns_timeout_secs: f64,
    /// Check the MX addresses and the domain against blocklists.
    pub blocklists: bool,
    /// IP blocklist zones (empty: the built-in public lists).
    pub dnsbl_zones: Vec<String>,
    /// Domain blocklist zones (empty: the built-in public lists).
    pub domain_blocklists: Vec<String>,
    /// Extra PEM trust roots for the MTA-STS policy fetch.
    pub ca_file: Option<PathBuf>,
    /// Connect to this address for every `mta-sts.DOMAIN` (testing only).
    pub mta_sts_addr: Option<std::net::SocketAddr>,
}

impl HealthSettings {
    /// The resolver of the analysis, when `analysis.reverse_dns` or `analysis.resolve_mx` is on.
    pub fn analysis_dns(
        &self,
        analysis: &AnalysisSettings,
        outbound: &OutboundSettings,
    ) -> anyhow::Result<Option<sealwatch_health::ReverseDns>> {
        if !analysis.reverse_dns && !analysis.resolve_mx {
            return Ok(None);
        }
        Ok(Some(
            sealwatch_health::ReverseDns::new(
                self.name_servers.clone(),
                std::time::Duration::from_secs_f64(self.dns_timeout_secs.clamp(0.1, 30.0)),
            )
            .context("setting up DNS lookups for the analysis")?
            .outbound(outbound.policy()),
        ))
    }

    /// The checker flags these settings amount to.
    pub fn checker_args(&self) -> crate::cli::CheckerArgs {
        crate::cli::CheckerArgs {
            nameservers: self.name_servers.clone(),
            ca_file: self.ca_file.clone(),
            mta_sts_addr: self.mta_sts_addr,
            dnsbl: self.dnsbl_zones.clone(),
            domain_blocklists: self.domain_blocklists.clone(),
            no_blocklists: !self.blocklists,
            dns_timeout: self.dns_timeout_secs,
            ..crate::cli::CheckerArgs::default()
        }
    }
}

/// How long data is kept (a daily job purges the rest).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days raw message bytes and quarantined inputs are kept.
    pub raw_days: u32,
    /// Days parsed reports are kept (by the end of the period they cover).
    pub reports_days: u32,
    /// Days finished jobs are kept in the queue.
    pub jobs_days: u32,
}

impl RetentionSettings {
    pub fn store(&self) -> sealwatch_store::Retention {
        sealwatch_store::Retention {
            raw_days: self.raw_days.max(1),
            reports_days: self.reports_days.max(1),
        }
    }
}

/// The job queue and its workers (`serve --role worker|poller|scheduler`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Analysis, digest and health-check jobs run at once per worker process.
    pub concurrency: usize,
    /// When the scheduler plans jobs: cron with seconds, in UTC.
    pub scheduler_cron: String,
    /// Seconds in-flight jobs get to finish on shutdown before they are left to be re-queued.
    pub shutdown_timeout_secs: u64,
    /// Milliseconds between queue checks of an idle worker.
    pub idle_poll_ms: u64,
    /// Seconds before a job that failed for a passing reason runs again.
    pub retry_after_secs: u64,
}

/// The admin web API (`serve --role api`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Listen address, `ADDR:PORT` (`serve --bind` overrides it).
    pub bind: String,
    /// Largest accepted request body in bytes (JSON bodies and posted TLS reports).
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Failed authentications allowed per client address and per token prefix per minute;
    /// further failures are answered 429 (a valid token is always accepted).
    pub auth_failures_per_minute: u32,
    /// Load balancers and reverse proxies (addresses or CIDR networks) whose
    /// `X-Forwarded-For` / `Forwarded` headers name the client; empty: the TCP peer is the
    /// client.
    pub trusted_proxies: Vec<sealwatch_api::TrustedProxy>,
    /// Seconds `/metrics` serves the database gauges before reading them again.
    pub metrics_refresh_secs: u64,
    /// TLS reports accepted over HTTPS per client address per minute (burst of as many);
    /// further posts are answered 429 with `Retry-After`.
    pub intake_per_address_per_minute: u32,
    /// TLS reports accepted over HTTPS per claimed domain per hour (burst of as many),
    /// whether the domain is verified, unverified or unknown.
    pub intake_per_domain_per_hour: u32,
    /// Seconds the TLS-RPT intake routes from its in-memory table before reading it again
    /// (changes made through the same process apply at once).
    pub intake_route_refresh_secs: u64,
}

/// Where subscribers send their reports: the addresses onboarding tells them to publish.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingSettings {
    /// DMARC aggregate `rua` address, e.g. `dmarc@reports.example.net`.
    pub dmarc_rua: String,
    /// TLS-RPT `rua` address (mailto), e.g. `tlsrpt@reports.example.net`.
    pub tlsrpt_rua: String,
    /// Public base URL of the API for the TLS-RPT HTTPS `rua`, if reports may be posted.
    pub tlsrpt_https_base: Option<String>,
}

/// The weekly digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSettings {
    /// `From:` of digest emails.
    pub from: String,
    /// `Reply-To:` of digest emails.
    pub reply_to: Option<String>,
    /// Base of the unsubscribe link (`List-Unsubscribe`), e.g. `https://sealwatch.example.net/unsubscribe`.
    pub unsubscribe_url: String,
    /// Send attempts before a digest is marked failed.
    pub max_attempts: u32,
    /// First retry delay in seconds (doubles each attempt).
    pub retry_backoff_secs: u64,
}

/// The SMTP relay digests are sent through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `implicit` | `starttls` | `plain` (plain only to a loopback relay).
    pub tls: String,
    pub username: Option<String>,
    /// Environment variable holding the SMTP password (never stored in the file).
    pub password_env: Option<String>,
    /// Extra PEM trust roots for the relay's certificate (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Timeout of each SMTP operation, in seconds.
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://sealwatch.db` (default, created on first use) or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollerSettings {
    /// Seconds between poll cycles in `serve`.
    pub interval_secs: u64,
    /// Mailboxes polled at once.
    pub concurrency: usize,
    /// Messages per IMAP FETCH and per database transaction.
    pub batch_size: usize,
    /// Timeout of each IMAP network operation, in seconds.
    pub timeout_secs: u64,
    /// Reconnect attempts after a network failure within one poll.
    pub retries: u32,
    /// First reconnect delay in milliseconds (doubles each attempt).
    pub backoff_ms: u64,
    /// Extra PEM trust roots for IMAP TLS (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Seconds a poller holds a mailbox's lease; a poller that dies frees its mailboxes
    /// after this. Keep it above the longest poll.
    pub lease_secs: u64,
    /// Mailbox passwords are read only from environment variables with this prefix (a
    /// mailbox naming any other variable is refused when added and not read when polled).
    pub password_env_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSettings {
    /// Days judged by each run (ending today).
    pub window_days: u32,
    /// Days of history loaded as the baseline.
    pub history_days: u32,
    /// An anomaly not seen for this many days is resolved automatically.
    pub quiet_days: u32,
    /// Days a domain that was never analysed is judged over on its first analysis (each
    /// day in order, as nightly runs would have); a domain analysed before is judged on
    /// every day after its watermark, at most this many.
    pub catch_up_days: u32,
    /// Domains analysed at the same time.
    pub concurrency: usize,
    /// Name the sending sources of TLS failures (and the DMARC sources in their networks) by
    /// reverse DNS, with the resolvers of `[health]`.
    pub reverse_dns: bool,
    /// Resolve the MX host names that TLS failures name, with the resolvers of `[health]`, so
    /// a failure whose `receiving-ip` is none of its MX's addresses (STARTTLS stripped on the
    /// way) is flagged however long it has been going on.
    pub resolve_mx: bool,
    /// Detector thresholds.
    pub thresholds: sealwatch_analytics::Thresholds,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSettings {
    pub max_input_bytes: u64,
    pub max_decompressed_bytes: u64,
    pub max_records: usize,
    pub max_mime_depth: usize,
    pub max_attachments: usize,
    /// Bytes kept of any one string of a report; longer values are cut with a warning.
    pub max_field_bytes: usize,
    /// TLS-RPT failure-details rows kept per policy; the rest are dropped with a warning.
    pub max_failure_details: usize,
}

impl Default for Config {
    fn default() -> Self {
        let limits = sealwatch_parser::Limits::default();
        let intake = sealwatch_api::IntakeConfig::default();
        Config {
            database: DatabaseConfig {
                url: "sqlite://sealwatch.db".to_owned(),
                max_connections: 8,
            },
            poller: PollerSettings {
                interval_secs: 300,
                concurrency: 8,
                batch_size: 200,
                timeout_secs: 30,
                retries: 3,
                backoff_ms: 1000,
                ca_file: None,
                lease_secs: 900,
                password_env_prefix: sealwatch_ingest::imap::DEFAULT_PASSWORD_ENV_PREFIX.to_owned(),
            },
            analysis: AnalysisSettings {
                window_days: 7,
                history_days: 84,
                quiet_days: 7,
                catch_up_days: 28,
                concurrency: 4,
                reverse_dns: false,
                resolve_mx: true,
                thresholds: sealwatch_analytics::Thresholds::default(),
            },
            api: ApiSettings {
                bind: "127.0.0.1:8080".to_owned(),
                max_body_bytes: 10 << 20,
                request_timeout_secs: 30,
                auth_failures_per_minute: 20,
                trusted_proxies: Vec::new(),
                metrics_refresh_secs: 15,
                intake_per_address_per_minute: intake.per_address_per_minute,
                intake_per_domain_per_hour: intake.per_domain_per_hour,
                intake_route_refresh_secs: intake.route_refresh.as_secs(),
            },
            reporting: ReportingSettings {
                dmarc_rua: "dmarc@reports.sealwatch.invalid".to_owned(),
                tlsrpt_rua: "tlsrpt@reports.sealwatch.invalid".to_owned(),
                tlsrpt_https_base: None,
            },
            digest: DigestSettings {
                from: "sealwatch <digest@sealwatch.invalid>".to_owned(),
                reply_to: None,
                unsubscribe_url: "https://sealwatch.invalid/unsubscribe".to_owned(),
                max_attempts: 8,
                retry_backoff_secs: 60,
            },
            health: HealthSettings {
                name_servers: Vec::new(),
                dns_timeout_secs: 5.0,
                blocklists: true,
                dnsbl_zones: Vec::new(),
                domain_blocklists: Vec::new(),
                ca_file: None,
                mta_sts_addr: None,
            },
            outbound: OutboundSettings {
                allow_private_addresses: false,
            },
            retention: RetentionSettings {
                raw_days: 90,
                reports_days: 400,
                jobs_days: 7,
            },
            jobs: JobSettings {
                concurrency: 4,
                scheduler_cron: "*/10 * * * * *".to_owned(),
                shutdown_timeout_secs: 60,
                idle_poll_ms: 1000,
                retry_after_secs: 30,
            },
            smtp: SmtpSettings {
                host: "127.0.0.1".to_owned(),
                port: 25,
                tls: "plain".to_owned(),
                username: None,
                password_env: None,
                ca_file: None,
                timeout_secs: 30,
            },
            parser: ParserSettings {
                max_input_bytes: limits.max_input_bytes,
                max_decompressed_bytes: limits.max_decompressed_bytes,
                max_records: limits.max_records,
                max_mime_depth: limits.max_mime_depth,
                max_attachments: limits.max_attachments,
                max_field_bytes: limits.max_field_bytes,
                max_failure_details: limits.max_failure_details,
            },
        }
    }
}

impl Config {
    /// Loads defaults ← file ← environment. A missing default file is fine; a missing
    /// explicit `--config` file is an error.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match explicit {
            Some(path) => {
                anyhow::ensure!(path.is_file(), "config file {} not found", path.display());
                figment = figment.merge(Toml::file(path));
            }
            None => {
                if Path::new("sealwatch.toml").is_file() {
                    figment = figment.merge(Toml::file("sealwatch.toml"));
                }
            }
        }
        // Only `SEALWATCH_<SECTION>__<KEY>` names are configuration; other SEALWATCH_* variables
        // (SEALWATCH_CONFIG, SEALWATCH_LOG, command flags) are not.
        figment = figment.merge(
            Env::prefixed("SEALWATCH_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        figment.extract().context("invalid configuration")
    }

    pub fn db(&self) -> sealwatch_store::DbConfig {
        sealwatch_store::DbConfig {
            url: self.database.url.clone(),
            max_connections: self.database.max_connections,
        }
    }

    pub fn limits(&self) -> sealwatch_parser::Limits {
        sealwatch_parser::Limits {
            max_input_bytes: self.parser.max_input_bytes,
            max_decompressed_bytes: self.parser.max_decompressed_bytes,
            max_records: self.parser.max_records,
            max_mime_depth: self.parser.max_mime_depth,
            max_attachments: self.parser.max_attachments,
            max_field_bytes: self.parser.max_field_bytes,
            max_failure_details: self.parser.max_failure_details,
            ..sealwatch_parser::Limits::default()
        }
    }

    pub fn poller(&self) -> sealwatch_ingest::imap::PollerConfig {
        sealwatch_ingest::imap::PollerConfig {
            concurrency: self.poller.concurrency,
            batch_size: self.poller.batch_size,
            timeout: std::time::Duration::from_secs(self.poller.timeout_secs.max(1)),
            retries: self.poller.retries,
            backoff: std::time::Duration::from_millis(self.poller.backoff_ms),
            password_env_prefix: self.poller.password_env_prefix.clone(),
        }
    }
}

/// Query parameters whose value is a secret when their name contains one of these.
const SECRET_PARAMS: [&str; 6] = ["password", "passwd", "pwd", "secret", "token", "key"];

fn secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// A database URL safe to print: the password of the userinfo (everything up to the last
/// `@` of the authority) and the values of query parameters named like secrets
/// (`password`, `sslpassword`, `secret`, `token`, `key`, …) are replaced with `***`.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return redact_by_hand(raw);
    };
    if url.password().is_some() && url.set_password(Some("***")).is_err() {
        return redact_by_hand(raw);
    }
    if url.query_pairs().any(|(k, _)| secret_param(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_param(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// For what the URL parser refuses (a password with `#` or `/` in it, …): everything
/// between `://` and the last `@` but the user name is dropped (too much rather than too
/// little), then secret query values.
fn redact_by_hand(raw: &str) -> String {
    let userinfo_redacted = match raw.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => raw.to_owned(),
        },
        None => raw.to_owned(),
    };
    let Some((base, query)) = userinfo_redacted.split_once('?') else {
        return userinfo_redacted;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret_param(k) => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("sqlite://sealwatch.db"), "sqlite://sealwatch.db");
        assert_eq!(
            redact_url("sqlite:///var/lib/sealwatch/sealwatch.db?mode=rwc"),
            "sqlite:///var/lib/sealwatch/sealwatch.db?mode=rwc"
        );
    }

    #[test]
    fn the_userinfo_ends_at_the_last_at_sign() {
        let r = redact_url("postgres://app:p@ss@db/x");
        assert_eq!(r, "postgres://app:***@db/x");
        assert!(!r.contains("ss@"), "{r}");
        let r = redact_url("postgres://app:a@b@c@db.internal:5432/x?sslmode=require");
        assert_eq!(r, "postgres://app:***@db.internal:5432/x?sslmode=require");
    }

    #[test]
    fn secret_query_parameters_are_redacted() {
        let r = redact_url("postgres://app@db/x?password=hunter2&sslmode=require");
        assert_eq!(r, "postgres://app@db/x?password=***&sslmode=require");
        let r = redact_url(
            "postgres://db/x?user=app&PassWord=s1&sslpassword=s2&pwd=s3&passwd=s4&api_key=s5&client_secret=s6&token=s7",
        );
        for leaked in ["s1", "s2", "s3", "s4", "s5", "s6", "s7"] {
            assert!(!r.contains(leaked), "{leaked} in {r}");
        }
        assert!(r.contains("user=app"), "{r}");
    }

    #[test]
    fn urls_the_parser_refuses_are_still_redacted() {
        // `#` ends the authority for a URL parser: not a URL it accepts.
        let r = redact_url("postgres://app:p#ss@db/x?password=s3");
        assert!(
            !r.contains("p#ss") && !r.contains("ss@") && !r.contains("s3"),
            "{r}"
        );
        assert!(r.starts_with("postgres://app:***@db/x"), "{r}");
        let r = redact_url("sealwatch.db?key=abc");
        assert_eq!(r, "sealwatch.db?key=***");
    }
}

#[cfg(test)]
mod reference {
    use super::*;

    fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, v, out);
                }
            }
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }

    /// Every configuration key, as `section.key` and its default.
    pub fn all_keys() -> Vec<(String, String)> {
        let v = serde_json::to_value(Config::default()).expect("config serialises");
        let mut out = Vec::new();
        leaves("", &v, &mut out);
        out
    }

    /// The operations guide documents every key under its environment name.
    #[test]
    fn operations_guide_lists_every_configuration_key() {
        let guide = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/operations.md"
        ))
        .expect("docs/operations.md");
        // The rows to paste into the table for every key the guide lacks.
        let missing: Vec<String> = all_keys()
            .into_iter()
            .map(|(k, d)| {
                let env = format!("SEALWATCH_{}", k.to_uppercase().replace('.', "__"));
                (env.clone(), format!("| `{k}` | `{env}` | `{d}` |"))
            })
            .filter(|(env, _)| !guide.contains(&format!("`{env}`")))
            .map(|(_, row)| row)
            .collect();
        assert!(
            missing.is_empty(),
            "docs/operations.md lacks these configuration rows:\n{}",
            missing.join("\n")
        );
    }
}
