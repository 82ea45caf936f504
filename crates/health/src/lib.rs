//! Domain health check: the DNS and MTA-STS picture of a domain, scored and explained.
//!
//! **API.** [`HealthChecker::new`] takes a [`CheckConfig`] (name servers, timeouts, trust
//! roots, our reporting addresses, blocklists) and [`HealthChecker::check`] returns a
//! [`HealthReport`] for one [`DomainName`]: a score out of 100 with a [`Grade`], typed
//! findings ([`Finding`]: a stable kebab-case [`CheckId`], a [`Severity`], the record as
//! found, a plain-English explanation and, where it can be computed, the exact record to
//! publish instead), the MTA-STS and TLS-RPT posture, the MX hosts, and every record the
//! findings rest on. [`score`] and [`grade`] are documented pure functions of the findings;
//! [`diff`] compares two reports of a domain (records that appeared, vanished or changed,
//! problems that appeared or were resolved). The record parsers live in [`record`], pure and
//! unit-tested.
//!
//! Checks: MX (present, null MX, hosts resolvable), SPF (one record, syntax, `all`, at most
//! 10 DNS lookups and 2 void lookups counted recursively through include/redirect with loop
//! protection), DMARC (one record, syntax, `p`/`sp`/`np`/`pct`, `rua` includes our addresses,
//! external-destination authorisation), DKIM (configured, common and caller-supplied
//! selectors; key type and size, revoked and test-mode keys), MTA-STS (TXT record, policy file
//! over HTTPS, syntax, mode, `mx` patterns covering the real MX hosts, certificate problems
//! reported as such), TLS-RPT (record, syntax, points at us), BIMI (syntax, DMARC at
//! enforcement) and blocklists (MX addresses on IP lists, the domain on domain lists; a list
//! that answers for everything is detected and ignored).
//!
//! **Invariants.**
//! - No database and no HTTP server; the only IO is DNS (hickory-resolver, with configurable
//!   name servers and port, a per-query timeout and one retry by default) and one HTTPS GET
//!   of the MTA-STS policy (rustls on ring, certificate validation always on, extra trust
//!   roots optional, HTTP/1.1 by hyper, body limit 64 KiB, bounded response head, time limit,
//!   no redirects, optional connect-address override for tests).
//! - Outbound connections and reverse lookups skip addresses that are not globally reachable
//!   (private, loopback, link-local and the other special-purpose ranges of RFC 6890, see
//!   [`outbound`]) unless [`OutboundPolicy::AllowPrivate`] is configured; the DNS itself
//!   goes to the configured resolvers only.
//! - A lookup that fails (timeout, SERVFAIL, REFUSED) yields a finding with severity
//!   [`Severity::Unknown`] ("could not check"), never one that says a record is missing.
//! - A check never fails as a whole: [`HealthChecker::check`] always returns a report.
//! - Each run uses a fresh resolver (no answers cached from an earlier run).
//! - Errors are [`HealthError`] (configuration only); no panics on any DNS or HTTP input.

mod check;
mod dns;
mod error;
mod https;
pub mod outbound;
mod rdns;
pub mod record;
mod report;

#[cfg(test)]
use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rustls::pki_types::CertificateDer;
use sealwatch_model::DomainName;

pub use check::dkim::COMMON_SELECTORS;
pub use error::HealthError;
pub use outbound::OutboundPolicy;
pub use rdns::{MAX_HOSTS_PER_CALL, ReverseDns};
pub use report::{
    Category, Change, CheckId, Finding, Fix, Grade, HealthReport, MtaStsState, MxHost, Observed,
    ObservedRecord, STS_POLICY_BROKEN, Severity, StsPolicyHealth, TlsRptState, diff, grade, score,
};

use check::Section;
use check::dmarc::DmarcOutcome;
use dns::{DnsSettings, HickoryDns, ResolverSetup};

/// Largest MTA-STS policy file accepted (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Name servers to ask (UDP, TCP on truncation or error); empty: the system resolver
    /// (`/etc/resolv.conf`).
    pub name_servers: Vec<SocketAddr>,
    /// Timeout of each DNS query attempt.
    pub dns_timeout: Duration,
    /// Retries after a failed DNS query attempt.
    pub dns_retries: usize,
    /// Time limit of the whole policy fetch (connect, TLS, request, response).
    pub https_timeout: Duration,
    /// Largest policy file accepted.
    pub max_policy_bytes: usize,
    /// Trust roots added to the Mozilla roots for the policy fetch.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Connect to this address for every `mta-sts.<domain>` (the name must still resolve);
    /// for tests against a local HTTPS server. The addresses the name resolves to must
    /// still be permitted by [`CheckConfig::outbound`].
    pub mta_sts_connect: Option<SocketAddr>,
    /// Which addresses the policy fetch may connect to: by default only globally reachable
    /// ones (never private, loopback, link-local or other special-purpose addresses).
    pub outbound: OutboundPolicy,
    /// Our DMARC/TLS-RPT reporting addresses (`mailto:x@y` or `x@y`).
    pub our_rua: Vec<String>,
    /// DKIM selectors always tried (besides [`COMMON_SELECTORS`]).
    pub dkim_selectors: Vec<String>,
    /// IP blocklist zones (DNSBL) for the MX addresses.
    pub dnsbl_zones: Vec<String>,
    /// Domain blocklist zones for the domain.
    pub domain_blocklists: Vec<String>,
}

/// Public blocklists used when none are configured.
pub const DEFAULT_DNSBL_ZONES: &[&str] = &["zen.spamhaus.org", "bl.spamcop.net"];
/// Public domain blocklists used when none are configured.
pub const DEFAULT_DOMAIN_BLOCKLISTS: &[&str] = &["dbl.spamhaus.org"];

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            name_servers: Vec::new(),
            dns_timeout: Duration::from_secs(5),
            dns_retries: 1,
            https_timeout: Duration::from_secs(15),
            max_policy_bytes: MAX_POLICY_BYTES,
            extra_roots: Vec::new(),
            mta_sts_connect: None,
            outbound: OutboundPolicy::PublicOnly,
            our_rua: Vec::new(),
            dkim_selectors: Vec::new(),
            dnsbl_zones: DEFAULT_DNSBL_ZONES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            domain_blocklists: DEFAULT_DOMAIN_BLOCKLISTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// Reads every certificate of a PEM file (for [`CheckConfig::extra_roots`]).
pub fn load_pem_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, HealthError> {
    let io = |source| HealthError::Io {
        path: path.display().to_string(),
        source,
    };
    let pem = std::fs::read(path).map_err(io)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    if certs.is_empty() {
        return Err(HealthError::TrustRoot(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Runs health checks with one configuration.
#[derive(Debug)]
pub struct HealthChecker {
    config: CheckConfig,
    resolver: ResolverSetup,
    fetcher: https::Fetcher,
    ours: Vec<String>,
}

impl HealthChecker {
    /// Validates the configuration (resolver settings, trust roots).
    pub fn new(config: CheckConfig) -> Result<Self, HealthError> {
        let resolver = ResolverSetup::new(&DnsSettings {
            name_servers: config.name_servers.clone(),
            timeout: config.dns_timeout,
            retries: config.dns_retries,
        })?;
        let fetcher = https::Fetcher::new(
            &config.extra_roots,
            config.https_timeout,
            config.max_policy_bytes,
        )?;
        let ours = check::our_addresses(&config.our_rua);
        Ok(Self {
            config,
            resolver,
            fetcher,
            ours,
        })
    }

    /// The TXT records at `name` (sorted), through the configured resolvers: for checks
    /// outside the health report, such as a domain-ownership token. Needs a Tokio runtime.
    pub async fn txt(&self, name: &str) -> Observed {
        let dns = match self.resolver.build() {
            Ok(dns) => dns,
            Err(e) => return Observed::Failed(e.to_string()),
        };
        match dns::Dns::txt(&dns, name).await {
            dns::Answer::Records(mut values) => {
                values.sort();
                Observed::Found(values)
            }
            dns::Answer::NoData | dns::Answer::NxDomain => Observed::Absent,
            dns::Answer::Failed(e) => Observed::Failed(e),
        }
    }

    /// Checks a domain. `extra_selectors` are DKIM selectors to try besides the configured
    /// and common ones (e.g. those seen in the domain's DMARC reports). Needs a Tokio runtime.
    pub async fn check(&self, domain: &DomainName, extra_selectors: &[String]) -> HealthReport {
        let checked_at = Utc::now();
        match self.resolver.build() {
            Ok(dns) => self.run(&dns, domain, extra_selectors, checked_at).await,
            Err(e) => {
                let findings = vec![Finding::new(
                    CheckId::MxCouldNotCheck,
                    Severity::Unknown,
                    domain.as_str(),
                    "no check could be run",
                    format!("The DNS resolver could not be set up: {e}."),
                )];
                assemble(
                    domain,
                    checked_at,
                    Section {
                        findings,
                        records: Vec::new(),
                    },
                    Parts::unknown(),
                )
            }
        }
    }

    async fn run(
        &self,
        dns: &HickoryDns,
        domain: &DomainName,
        extra_selectors: &[String],
        checked_at: chrono::DateTime<Utc>,
    ) -> HealthReport {
        let d = domain.as_str();
        let selectors = check::dkim::selectors(&self.config.dkim_selectors, extra_selectors);
        let ((mx_section, mx), (dmarc_section, dmarc), dkim_section) = tokio::join!(
            check::mx::check(dns, d),
            check::dmarc::check(dns, d, &self.ours),
            check::dkim::check(dns, d, &selectors),
        );
        let mut all = Section::default();
        all.extend(mx_section);
        if mx == check::mx::MxSet::NoDomain {
            return assemble(domain, checked_at, all, Parts::unknown());
        }
        let new_id = checked_at.format("%Y%m%d%H%M").to_string();
        let target = check::mtasts::Target {
            fetcher: &self.fetcher,
            connect: self.config.mta_sts_connect,
            outbound: self.config.outbound,
            new_id: &new_id,
        };
        let random_label = random_label();
        let lists = check::blocklist::Lists {
            ip: &self.config.dnsbl_zones,
            domain: &self.config.domain_blocklists,
            random_label: &random_label,
        };
        let (spf_section, (sts_section, sts), (rpt_section, rpt), bimi_section, bl_section) = tokio::join!(
            check::spf::check(dns, d, &mx),
            check::mtasts::check(dns, d, &mx, &target),
            check::tlsrpt::check(dns, d, &mx, &self.ours),
            check::bimi::check(dns, d, &dmarc),
            check::blocklist::check(dns, d, &mx, &lists),
        );
        for s in [
            spf_section,
            dmarc_section,
            dkim_section,
            sts_section,
            rpt_section,
            bimi_section,
            bl_section,
        ] {
            all.extend(s);
        }
        downgrade_dkim_for_non_sending_domains(&mut all, d);
        let parts = Parts {
            dmarc_policy: match &dmarc {
                DmarcOutcome::Found(r) => r.policy,
                _ => None,
            },
            mta_sts: sts,
            tls_rpt: rpt,
            mx: mx.hosts().to_vec(),
        };
        let report = assemble(domain, checked_at, all, parts);
        tracing::debug!(
            domain = d,
            score = report.score,
            findings = report.findings.len(),
            complete = report.complete,
            "health check done"
        );
        report
    }
}

/// A domain whose SPF record is exactly `v=spf1 -all` declares that it sends no mail; it
/// needs no DKIM key, so not finding one is information, not a problem.
fn downgrade_dkim_for_non_sending_domains(all: &mut Section, domain: &str) {
    let sends_nothing = all.records.iter().any(|r| {
        r.name == domain
            && r.rtype == "TXT"
            && matches!(&r.observed, Observed::Found(v)
                if v.len() == 1 && v[0].split_whitespace().collect::<Vec<_>>().join(" ").eq_ignore_ascii_case("v=spf1 -all"))
    });
    if !sends_nothing {
        return;
    }
    for f in &mut all.findings {
        if f.check == CheckId::DkimNotFound {
            f.severity = Severity::Info;
            f.summary = "no DKIM key, and none is needed: the domain sends no mail".to_owned();
            f.explanation = "The SPF record v=spf1 -all declares that this domain sends no mail, \
                             so it needs no DKIM key. If it does send mail, publish SPF and DKIM \
                             for the services that send it."
                .to_owned();
        }
    }
}

struct Parts {
    dmarc_policy: Option<record::dmarc::Policy>,
    mta_sts: MtaStsState,
    tls_rpt: TlsRptState,
    mx: Vec<MxHost>,
}

impl Parts {
    fn unknown() -> Self {
        Self {
            dmarc_policy: None,
            mta_sts: MtaStsState::Unknown,
            tls_rpt: TlsRptState::Unknown,
            mx: Vec::new(),
        }
    }
}

fn assemble(
    domain: &DomainName,
    checked_at: chrono::DateTime<Utc>,
    section: Section,
    parts: Parts,
) -> HealthReport {
    let Section {
        mut findings,
        mut records,
    } = section;
    // Stable order: by category, then worst first; the checks' own order within that.
    findings.sort_by_key(|f| (f.category, f.severity.rank()));
    records.sort_by(|a, b| (&a.name, &a.rtype).cmp(&(&b.name, &b.rtype)));
    records.dedup_by(|a, b| a.name == b.name && a.rtype == b.rtype);
    let s = score(&findings);
    HealthReport {
        domain: domain.clone(),
        checked_at,
        score: s,
        grade: grade(s),
        complete: !findings.iter().any(|f| f.severity == Severity::Unknown),
        dmarc_policy: parts.dmarc_policy,
        mta_sts: parts.mta_sts,
        tls_rpt: parts.tls_rpt,
        mx: parts.mx,
        findings,
        records,
    }
}

/// A random DNS label (16 hex digits) from the standard library's randomly keyed hasher.
fn random_label() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("sw{:016x}", h.finish())
}

/// Runs a future to completion on a fresh current-thread runtime (unit tests).
#[cfg(test)]
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("tokio runtime: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_check_future_is_send() {
        let checker = HealthChecker::new(CheckConfig {
            name_servers: vec!["127.0.0.1:9".parse().expect("addr")],
            ..CheckConfig::default()
        })
        .expect("config");
        let domain = DomainName::parse("x.test").expect("valid");
        let fut = checker.check(&domain, &[]);
        assert_send(&fut);
    }

    #[test]
    fn random_labels_differ() {
        assert_ne!(random_label(), random_label());
        assert!(random_label().chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
