//! Reports built to cost us: huge strings, endless failure-details rows, counts at the top
//! of `u64`. Every fixture is built here in code.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use sealwatch_model::{AggregateReport, Report, TlsReport};
use sealwatch_parser::{Limits, Parser};

const HEAD: &str = r#"{"organization-name": "Hostile Inc.", "report-id": "r-1",
    "date-range": {"start-datetime": "2024-01-01T00:00:00Z",
                   "end-datetime": "2024-01-01T23:59:59Z"},
    "contact-info": "tlsrpt@hostile.example","#;

fn tls_report(json: &[u8], limits: Limits) -> TlsReport {
    let parsed = Parser::new(limits).parse(json, None).expect("a report");
    match parsed.reports.into_iter().next() {
        Some(Report::TlsRpt(t)) => t,
        other => panic!("not a TLS report: {other:?}"),
    }
}

fn aggregate(xml: &str, limits: Limits) -> AggregateReport {
    let parsed = Parser::new(limits)
        .parse(xml.as_bytes(), None)
        .expect("a report");
    match parsed.reports.into_iter().next() {
        Some(Report::DmarcAggregate(a)) => a,
        other => panic!("not an aggregate report: {other:?}"),
    }
}

fn dmarc_xml(org_name: &str, records: &str) -> String {
    format!(
        "<feedback><report_metadata><org_name>{org_name}</org_name>\
         <email>dmarc@hostile.example</email><report_id>r-1</report_id>\
         <date_range><begin>1700000000</begin><end>1700086399</end></date_range>\
         </report_metadata><policy_published><domain>example.com</domain><p>none</p>\
         </policy_published>{records}</feedback>"
    )
}

fn dmarc_record(count: &str) -> String {
    format!(
        "<record><row><source_ip>192.0.2.1</source_ip><count>{count}</count>\
         <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>\
         </policy_evaluated></row><identifiers><header_from>example.com</header_from>\
         </identifiers><auth_results><spf><domain>example.com</domain><result>fail</result>\
         </spf></auth_results></record>"
    )
}

fn limit_warnings<'w>(warnings: &'w [String], code: &str) -> Vec<&'w str> {
    let prefix = format!("{code}: ");
    warnings
        .iter()
        .filter(|w| w.starts_with(&prefix))
        .map(String::as_str)
        .collect()
}

#[test]
fn a_120_mb_additional_information_is_cut_to_the_field_limit() {
    // Arrange: ~120 MB of JSON (under the 128 MiB decompression budget) streamed into a
    // gzip member, so only the compressed form is ever held.
    const INFO_BYTES: usize = 120_000_000;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(HEAD.as_bytes()).expect("write");
    gz.write_all(
        br#""policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
            "summary": {"total-successful-session-count": 10, "total-failure-session-count": 1},
            "failure-details": [{"result-type": "validation-failure",
                "failed-session-count": 1, "additional-information": ""#,
    )
    .expect("write");
    let chunk = [b'A'; 1 << 16];
    let mut left = INFO_BYTES;
    while left > 0 {
        let n = left.min(chunk.len());
        gz.write_all(&chunk[..n]).expect("write");
        left -= n;
    }
    gz.write_all(br#""}]}]}"#).expect("write");
    let body = gz.finish().expect("gzip");
    assert!(body.len() < 256 << 10, "gzip is {} bytes", body.len());

    // Act
    let limits = Limits::default();
    let report = tls_report(&body, limits.clone());

    // Assert
    let detail = &report.policies[0].failure_details[0];
    let info = detail.additional_information.as_deref().expect("kept");
    assert_eq!(info.len(), limits.max_field_bytes);
    assert!(info.bytes().all(|b| b == b'A'));
    assert_eq!(
        limit_warnings(&report.warnings, "field-truncated"),
        [format!(
            "field-truncated: values cut to {} bytes: additional-information ({INFO_BYTES} bytes)",
            limits.max_field_bytes
        )]
    );
    assert_eq!(report.policies[0].failed_sessions, 1);
}

#[test]
fn failure_details_beyond_the_limit_are_dropped_with_their_counts() {
    // Arrange: 5,000 rows of 3 failed sessions each in one policy.
    let row = r#"{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.1",
        "receiving-mx-hostname": "mx.example.com", "failed-session-count": 3}"#;
    let rows = vec![row; 5000].join(",");
    let json = format!(
        r#"{HEAD} "policies": [
            {{"policy": {{"policy-type": "sts", "policy-domain": "example.com"}},
              "summary": {{"total-successful-session-count": 7,
                          "total-failure-session-count": 15000}},
              "failure-details": [{rows}]}},
            {{"policy": {{"policy-type": "sts", "policy-domain": "example.net"}},
              "summary": {{"total-successful-session-count": 1,
                          "total-failure-session-count": 3}},
              "failure-details": [{row}]}}]}}"#
    );

    // Act
    let report = tls_report(json.as_bytes(), Limits::default());

    // Assert
    assert_eq!(report.policies[0].failure_details.len(), 1000);
    assert_eq!(report.policies[1].failure_details.len(), 1);
    assert_eq!(
        limit_warnings(&report.warnings, "failure-details-dropped"),
        [
            "failure-details-dropped: policy 1: kept the first 1000 failure-details rows, \
          dropped 4000 more with 12000 failed sessions; the summary counts are as reported"
        ]
    );
    // Summary counts are the sender's totals, not sums of the rows kept.
    assert_eq!(report.policies[0].failed_sessions, 15000);
    assert_eq!(report.policies[0].successful_sessions, 7);
    assert_eq!(report.failed_sessions, 15003);
    assert!(limit_warnings(&report.warnings, "field-truncated").is_empty());
}

#[test]
fn a_1_mb_dmarc_org_name_is_cut_on_a_character_boundary_with_a_warning() {
    // Arrange: `a` then two-byte characters, so byte 4096 falls inside one.
    let org_name = format!("a{}", "é".repeat(512 * 1024));
    let original = org_name.len();
    let xml = dmarc_xml(&org_name, &dmarc_record("5"));

    // Act
    let report = aggregate(&xml, Limits::default());

    // Assert
    assert_eq!(report.org_name.len(), 4095);
    assert!(org_name.starts_with(&report.org_name));
    assert_eq!(
        limit_warnings(&report.warnings, "field-truncated"),
        [format!(
            "field-truncated: values cut to 4096 bytes: org_name ({original} bytes)"
        )]
    );
    assert_eq!(report.message_count, 5);
}

#[test]
fn one_warning_names_every_truncated_field() {
    // Arrange
    let long = "x".repeat(100);
    let json = format!(
        r#"{{"organization-name": "{long}", "report-id": "r-1", "contact-info": "{long}",
            "date-range": {{"start-datetime": "2024-01-01T00:00:00Z",
                           "end-datetime": "2024-01-01T23:59:59Z"}},
            "policies": [{{"policy": {{"policy-type": "sts", "policy-domain": "example.com",
                                      "mx-host": ["{long}", "{long}y", "mx.example.com"]}},
                          "summary": {{"total-successful-session-count": 1,
                                      "total-failure-session-count": 0}}}}]}}"#
    );
    let limits = Limits {
        max_field_bytes: 10,
        ..Limits::default()
    };

    // Act
    let report = tls_report(json.as_bytes(), limits);

    // Assert
    assert_eq!(report.org_name, "xxxxxxxxxx");
    assert_eq!(report.policies[0].mx_hosts[2], "mx.example");
    assert_eq!(
        limit_warnings(&report.warnings, "field-truncated"),
        [
            "field-truncated: values cut to 10 bytes: organization-name (100 bytes), \
          contact-info (100 bytes), mx-host (3 values, longest 101 bytes)"
        ]
    );
}

#[test]
fn reports_within_the_limits_have_no_limit_warnings() {
    let report = aggregate(
        &dmarc_xml("Fine Org", &dmarc_record("1")),
        Limits::default(),
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn counts_near_u64_max_do_not_panic_or_wrap() {
    // DMARC: two records at the top of u64.
    let max = u64::MAX.to_string();
    let records = dmarc_record(&max).repeat(2);
    let report = aggregate(&dmarc_xml("o", &records), Limits::default());
    assert_eq!(report.records.len(), 2);
    assert_eq!(report.message_count, u64::MAX);

    // TLS-RPT: summaries and dropped rows at the top of u64.
    let row =
        format!(r#"{{"result-type": "starttls-not-supported", "failed-session-count": {max}}}"#);
    let policy = format!(
        r#"{{"policy": {{"policy-type": "sts", "policy-domain": "example.com"}},
            "summary": {{"total-successful-session-count": {max},
                        "total-failure-session-count": {max}}},
            "failure-details": [{row}, {row}, {row}]}}"#
    );
    let json = format!(r#"{HEAD} "policies": [{policy}, {policy}]}}"#);
    let limits = Limits {
        max_failure_details: 1,
        ..Limits::default()
    };
    let report = tls_report(json.as_bytes(), limits);
    assert_eq!(report.successful_sessions, u64::MAX);
    assert_eq!(report.failed_sessions, u64::MAX);
    let dropped = limit_warnings(&report.warnings, "failure-details-dropped");
    assert_eq!(dropped.len(), 2);
    assert!(
        dropped
            .iter()
            .all(|w| w.contains(&format!("dropped 2 more with {max} failed sessions"))),
        "{dropped:?}"
    );
}
