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
    /// Domains analysed at the same time.
    pub concurrency: usize,
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
}

impl Default for Config {
    fn default() -> Self {
        let limits = sealwatch_parser::Limits::default();
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
            },
            analysis: AnalysisSettings {
                window_days: 7,
                history_days: 84,
                quiet_days: 7,
                concurrency: 4,
                thresholds: sealwatch_analytics::Thresholds::default(),
            },
            parser: ParserSettings {
                max_input_bytes: limits.max_input_bytes,
                max_decompressed_bytes: limits.max_decompressed_bytes,
                max_records: limits.max_records,
                max_mime_depth: limits.max_mime_depth,
                max_attachments: limits.max_attachments,
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
        }
    }
}

/// A database URL safe to print: any password is replaced.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
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
    }
}
