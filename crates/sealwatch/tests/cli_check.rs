//! `sealwatch check` as a process, against the loopback test servers (NSD with the
//! tests/servers/dns zones, the HTTPS listener for the test zones, the test CA).

use std::collections::HashMap;
use std::process::{Command, Output};

use serde_json::Value;

fn var(name: &str) -> String {
    if let Ok(v) = std::env::var(name) {
        return v;
    }
    let state = std::env::var("SEALWATCH_TEST_SERVERS_STATE")
        .unwrap_or_else(|_| "/tmp/sealwatch-test-servers".into());
    let text = std::fs::read_to_string(format!("{state}/servers.env")).unwrap_or_default();
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .collect();
    vars.get(name)
        .map(|v| v.trim_matches('\'').to_owned())
        .unwrap_or_else(|| panic!("{name} is not set: run tests/servers/start.sh"))
}

fn check(domain: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("check")
        .arg(domain)
        .args(["--nameserver", &var("SEALWATCH_TEST_DNS")])
        .args(["--ca-file", &var("SEALWATCH_TEST_CA")])
        .args([
            "--mta-sts-addr",
            &format!("127.0.0.1:{}", var("SEALWATCH_TEST_HTTPS_ZONES_PORT")),
        ])
        .args(["--our-rua", "mailto:dmarc@sealwatch.test"])
        .args(["--our-rua", "mailto:tlsrpt@sealwatch.test"])
        .args(["--dnsbl", "dnsbl.test", "--domain-blocklist", "dbl.test"])
        .args(extra)
        .output()
        .expect("run sealwatch")
}

#[test]
fn json_report_of_the_perfect_domain() {
    let out = check("perfect.test", &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["domain"], "perfect.test");
    assert_eq!(report["score"], 100);
    assert_eq!(report["grade"], "A");
    assert_eq!(report["mta_sts"], "enforce");
    let findings = report["findings"].as_array().expect("findings");
    assert!(findings.iter().all(|f| f["severity"] == "ok"));
}

#[test]
fn readable_report_of_a_broken_domain() {
    let out = check("spf-double.test", &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("spf-double.test — score 70/100, grade C"),
        "{text}"
    );
    assert!(
        text.contains("CRITICAL  spf-double.test publishes 2 SPF records [spf-multiple-records]")
    );
    assert!(text.contains(
        "publish:  spf-double.test. IN TXT \"v=spf1 mx include:_spf.spf-double.test -all\""
    ));
    assert!(text.contains("1 to fix."));
}

#[test]
fn a_bad_domain_name_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["check", "not a domain"])
        .output()
        .expect("run sealwatch");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a domain name"));
}
