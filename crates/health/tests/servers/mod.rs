//! Access to the loopback test servers (`tests/servers/start.sh`, which `tests/run.sh` runs):
//! settings come from the environment or from `servers.env` in the state directory, as in
//! `tests/common/servers.rs` (not included here: it needs the imap crate).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use sealwatch_health::{
    CheckConfig, CheckId, Finding, HealthChecker, HealthReport, OutboundPolicy,
};
use sealwatch_model::DomainName;

fn from_file() -> HashMap<String, String> {
    let state = std::env::var("SEALWATCH_TEST_SERVERS_STATE")
        .unwrap_or_else(|_| "/tmp/sealwatch-test-servers".into());
    let text = std::fs::read_to_string(format!("{state}/servers.env")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("export ")?.split_once('=')?;
            Some((k.to_owned(), v.trim_matches('\'').to_owned()))
        })
        .collect()
}

/// A server setting; panics with instructions when the servers are not running.
pub fn var(name: &str) -> String {
    static FILE: OnceLock<HashMap<String, String>> = OnceLock::new();
    std::env::var(name)
        .ok()
        .or_else(|| FILE.get_or_init(from_file).get(name).cloned())
        .unwrap_or_else(|| {
            panic!("{name} is not set: start the test servers with tests/servers/start.sh (tests/run.sh does)")
        })
}

fn port(name: &str) -> u16 {
    var(name).parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// NSD serving tests/servers/dns/*.zone.
pub fn dns() -> SocketAddr {
    var("SEALWATCH_TEST_DNS")
        .parse()
        .expect("SEALWATCH_TEST_DNS is IP:PORT")
}

/// HTTPS with a test-CA certificate for every test zone (`<zone>`, `*.<zone>`).
pub fn https_zones() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port("SEALWATCH_TEST_HTTPS_ZONES_PORT")))
}

/// The same, with a certificate that expired in 2020.
pub fn https_expired() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port("SEALWATCH_TEST_HTTPS_EXPIRED_PORT")))
}

/// The original HTTPS server, whose certificate does not name the health-check zones.
pub fn https_other_names() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port("SEALWATCH_TEST_HTTPS_PORT")))
}

pub const OUR_DMARC: &str = "mailto:dmarc@sealwatch.test";
pub const OUR_TLSRPT: &str = "mailto:tlsrpt@sealwatch.test";

/// The configuration every test starts from: NSD, the test CA, policies from the zones
/// listener, our addresses, the test blocklists (including one that answers everything),
/// and private addresses allowed (the test zones put every host on loopback).
pub fn config() -> CheckConfig {
    let ca = sealwatch_health::load_pem_roots(std::path::Path::new(&var("SEALWATCH_TEST_CA")))
        .expect("the test CA");
    CheckConfig {
        name_servers: vec![dns()],
        dns_timeout: Duration::from_secs(3),
        dns_retries: 1,
        https_timeout: Duration::from_secs(10),
        extra_roots: ca,
        mta_sts_connect: Some(https_zones()),
        outbound: OutboundPolicy::AllowPrivate,
        our_rua: vec![OUR_DMARC.to_owned(), OUR_TLSRPT.to_owned()],
        dkim_selectors: Vec::new(),
        dnsbl_zones: vec!["dnsbl.test".to_owned(), "wild-dnsbl.test".to_owned()],
        domain_blocklists: vec!["dbl.test".to_owned()],
        ..CheckConfig::default()
    }
}

pub async fn check_with(config: CheckConfig, domain: &str) -> HealthReport {
    let checker = HealthChecker::new(config).expect("valid configuration");
    let domain = DomainName::parse(domain).expect("valid domain");
    checker.check(&domain, &[]).await
}

pub async fn check(domain: &str) -> HealthReport {
    check_with(config(), domain).await
}

/// Every finding, one per line, for assertion messages.
pub fn listing(report: &HealthReport) -> String {
    report
        .findings
        .iter()
        .map(|f| format!("  {} {} {}: {}", f.check, f.severity, f.subject, f.summary))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The finding with this id; panics with the whole report otherwise.
pub fn finding(report: &HealthReport, id: CheckId) -> &Finding {
    report.findings_for(id).next().unwrap_or_else(|| {
        panic!(
            "{}: no {id} finding; found:\n{}",
            report.domain,
            listing(report)
        )
    })
}

/// All advice of a finding as text (zone lines and files).
pub fn advice(f: &Finding) -> String {
    f.fixes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
