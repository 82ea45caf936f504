//! Errors: configuration problems only — a check itself never fails.

/// Why a [`HealthChecker`](crate::HealthChecker) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("trust roots: {0}")]
    TrustRoot(String),
    #[error("DNS resolver: {0}")]
    Resolver(String),
}
