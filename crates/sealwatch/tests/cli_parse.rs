//! `sealwatch parse` as a process: the scripting contract (JSON keys, one object per line,
//! `PATH: reason` on stderr, the summary line, exit codes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const AGGREGATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>Example Receiver</org_name>
    <email>dmarc@receiver.example</email>
    <report_id>agg-1</report_id>
    <date_range><begin>1700006400</begin><end>1700092799</end></date_range>
  </report_metadata>
  <policy_published><domain>Example.COM</domain><p>reject</p><pct>100</pct></policy_published>
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>7</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>pass</result></dkim>
      <spf><domain>bounce.example.net</domain><result>softfail</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>2001:db8::1</source_ip><count>5</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>spoof.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
"#;

const TLS: &str = r#"{
  "organization-name": "Sender Inc.",
  "date-range": {"start-datetime": "2026-11-02T00:00:00Z", "end-datetime": "2026-11-02T23:59:59Z"},
  "contact-info": "tlsrpt@sender.example",
  "report-id": "tls-1",
  "policies": [{
    "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.example.com", "max_age: 86400"],
               "policy-domain": "example.com", "mx-host": ["mx1.example.com"]},
    "summary": {"total-successful-session-count": 90, "total-failure-session-count": 10},
    "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "198.51.100.7",
                         "receiving-mx-hostname": "mx1.example.com", "failed-session-count": 10}]
  }]
}"#;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sealwatch-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nested")).expect("create scratch dir");
        Scratch(dir)
    }
    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sealwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(args)
        .output()
        .expect("run sealwatch")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is one JSON object"))
        .collect()
}

#[test]
fn json_lines_carry_the_documented_keys_for_an_aggregate_report() {
    let s = Scratch::new("agg");
    let f = s.write("agg.xml", AGGREGATE.as_bytes());
    let out = sealwatch(&["parse", "--json", path_str(&f)]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let r = &lines[0];
    assert_eq!(r["kind"], "dmarc-aggregate");
    assert_eq!(r["org_name"], "Example Receiver");
    assert_eq!(r["report_id"], "agg-1");
    assert_eq!(r["begin"], "2023-11-15T00:00:00Z");
    assert_eq!(r["end"], "2023-11-15T23:59:59Z");
    assert_eq!(r["policy_domain"], "example.com");
    assert_eq!(r["message_count"], 12);
    assert_eq!(r["records"].as_array().map(Vec::len), Some(2));
    assert_eq!(r["records"][0]["source_ip"], "192.0.2.10");
    assert_eq!(r["records"][0]["count"], 7);
    assert_eq!(r["records"][1]["source_ip"], "2001:db8::1");
    assert_eq!(r["records"][1]["policy_evaluated"]["disposition"], "reject");
    assert_eq!(
        r["records"][0]["auth_results"]["spf"][0]["result"],
        "softfail"
    );
    assert!(r["warnings"].is_array());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(
            "parsed 1 files: 1 reports (1 dmarc-aggregate, 0 tls-rpt, 0 dmarc-failure), 0 files failed"
        )
    );
}

#[test]
fn json_lines_carry_the_documented_keys_for_a_tls_report() {
    let s = Scratch::new("tls");
    let f = s.write("tls.json", TLS.as_bytes());
    let out = sealwatch(&["parse", "--json", path_str(&f)]);
    assert!(out.status.success());
    let r = &json_lines(&out)[0];
    assert_eq!(r["kind"], "tls-rpt");
    assert_eq!(r["org_name"], "Sender Inc.");
    assert_eq!(r["report_id"], "tls-1");
    assert_eq!(r["begin"], "2026-11-02T00:00:00Z");
    let p = &r["policies"][0];
    assert_eq!(p["policy_type"], "sts");
    assert_eq!(p["policy_domain"], "example.com");
    assert_eq!(p["mx_hosts"][0], "mx1.example.com");
    assert_eq!(p["successful_sessions"], 90);
    assert_eq!(p["failed_sessions"], 10);
    assert_eq!(
        p["failure_details"][0]["result_type"],
        "certificate-expired"
    );
    assert_eq!(p["failure_details"][0]["sending_mta_ip"], "198.51.100.7");
}

#[test]
fn directories_are_walked_and_failures_go_to_stderr_with_their_path() {
    let s = Scratch::new("dir");
    s.write("agg.xml", AGGREGATE.as_bytes());
    s.write("nested/tls.json", TLS.as_bytes());
    let bad = s.write("nested/notes.txt", b"shopping list: milk, eggs");
    s.write("nested/empty.xml", b"");
    let out = sealwatch(&["parse", "--json", path_str(&s.0)]);
    assert_eq!(out.status.code(), Some(1), "some inputs failed");
    let kinds: Vec<String> = json_lines(&out)
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"dmarc-aggregate".to_owned()));
    assert!(kinds.contains(&"tls-rpt".to_owned()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&format!("{}: not a report", bad.display()))),
        "stderr: {stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.ends_with("empty.xml: input is empty [empty]")),
        "stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(
            "parsed 4 files: 2 reports (1 dmarc-aggregate, 1 tls-rpt, 0 dmarc-failure), 2 files failed"
        )
    );
}

#[test]
fn without_json_flag_reports_are_pretty_printed_json() {
    let s = Scratch::new("pretty");
    let f = s.write("agg.xml", AGGREGATE.as_bytes());
    let out = sealwatch(&["parse", path_str(&f)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() > 10, "pretty output spans lines");
    let values: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("a stream of JSON values");
    assert_eq!(values.len(), 1);
    assert_eq!(values[0]["report_id"], "agg-1");
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let out = sealwatch(&["parse", "/nonexistent/sealwatch-input"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/sealwatch-input"),
        "stderr: {stderr}"
    );
}

#[test]
fn oversized_inputs_are_refused_by_the_configured_limit() {
    let s = Scratch::new("limit");
    let f = s.write("agg.xml", AGGREGATE.as_bytes());
    let out = sealwatch(&["parse", "--json", "--max-input-bytes", "100", path_str(&f)]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("over the limit of 100 bytes"),
        "stderr: {stderr}"
    );
    assert!(out.stdout.is_empty());
}
