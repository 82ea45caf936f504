//! Property tests over the whole parser: it never panics, whatever the bytes; a valid
//! report survives any packaging with every field intact; a cut report never panics, never
//! invents data and is never taken for the whole report.

use std::collections::BTreeSet;
use std::net::IpAddr;

use proptest::prelude::*;
use sealwatch_model::{ReportId, TlsPolicyType};
use sealwatch_tests::{
    AggregateXml, Email, Limits, Parser, Part, RecordXml, Report, fixture, gzip, quoted_printable,
    zip, zlib,
};

/// Inputs the mutation properties start from: every kind of fixture the parser reads.
const SEEDS: &[&str] = &[
    "pkg-report.xml",
    "d09-rfc9990-prefixed.xml",
    "d06-cp1252-bytes.xml",
    "d04-broken-close-tag.xml",
    "t00-rfc8460-shape.json",
    "t05-t06-microsoft-tlsa-double-encoded.json",
    "arf-auth-failure.eml",
    "d34-mailing-list-wrapped.eml",
    "pkg-qp-xml-attachment.eml",
    "nr-bounce-dsn.eml",
];

fn small_limits() -> Limits {
    Limits {
        max_decompressed_bytes: 1 << 20,
        max_records: 50,
        max_mime_depth: 4,
        max_attachments: 4,
        max_compression_layers: 2,
        max_zip_members: 4,
        ..Limits::default()
    }
}

/// Runs the parser; the property is that this returns at all (no panic), and that a
/// success always carries at least one report.
fn parse_never_panics(parser: &Parser, input: &[u8], name: Option<&str>) {
    if let Ok(parsed) = parser.parse(input, name) {
        assert!(!parsed.reports.is_empty(), "Ok without a report");
    }
}

/// How a generated report is delivered.
#[derive(Debug, Clone, Copy)]
enum Packaging {
    Plain,
    Gzip,
    Zlib,
    Zip,
    EmailGzip,
    EmailQuotedPrintable,
    EmailZipInForward,
}

fn package(xml: &[u8], how: Packaging) -> Vec<u8> {
    match how {
        Packaging::Plain => xml.to_vec(),
        Packaging::Gzip => gzip(xml),
        Packaging::Zlib => zlib(xml),
        Packaging::Zip => zip(&[("report.xml", xml)]),
        Packaging::EmailGzip => Email::new("dmarc@reporter.example", "Report Domain: x")
            .with_attachment("application/gzip", "report.xml.gz", &gzip(xml)),
        Packaging::EmailQuotedPrintable => {
            Email::new("dmarc@reporter.example", "Report").body(Part::multipart(
                "mixed",
                vec![Part::raw(
                    &[
                        "Content-Type: text/xml; charset=utf-8; name=\"report.xml\"",
                        "Content-Disposition: attachment; filename=\"report.xml\"",
                        "Content-Transfer-Encoding: quoted-printable",
                    ],
                    quoted_printable(xml),
                )],
            ))
        }
        Packaging::EmailZipInForward => {
            let inner = Email::new("dmarc@reporter.example", "Report Domain: x").with_attachment(
                "application/zip",
                "report.zip",
                &zip(&[("r.xml", xml)]),
            );
            Email::new("admin@example.com", "FW: report")
                .body(Part::multipart("mixed", vec![Part::message(&inner)]))
        }
    }
}

fn packaging() -> impl Strategy<Value = Packaging> {
    prop_oneof![
        Just(Packaging::Plain),
        Just(Packaging::Gzip),
        Just(Packaging::Zlib),
        Just(Packaging::Zip),
        Just(Packaging::EmailGzip),
        Just(Packaging::EmailQuotedPrintable),
        Just(Packaging::EmailZipInForward),
    ]
}

/// Free text as reporters write it: any printable characters, XML specials included.
fn free_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{1,40}",
        "[<>&\"' a-zA-Z0-9;#]{1,40}",
        Just("&lt;not an entity&gt; & <b> \"quoted\" 'single'".to_owned()),
        Just("]]> <!-- --> <![CDATA[x]]>".to_owned()),
    ]
    .prop_filter("blank after trimming", |s| !s.trim().is_empty())
}

/// A report id that [`ReportId::parse`] accepts (`<>` alone, say, is rejected).
fn report_id() -> impl Strategy<Value = String> {
    free_text().prop_filter("not a valid report id", |s| ReportId::parse(s).is_ok())
}

fn domain() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,12}(\\.[a-z0-9]{1,12}){0,2}\\.[a-z]{2,6}"
}

fn record() -> impl Strategy<Value = RecordXml> {
    (any::<IpAddr>(), 0u64..=1_000_000_000_000, domain()).prop_map(|(ip, count, from)| RecordXml {
        source_ip: ip.to_string(),
        count,
        header_from: from,
    })
}

fn aggregate() -> impl Strategy<Value = AggregateXml> {
    (
        free_text(),
        "[a-z0-9._-]{1,10}@[a-z0-9-]{1,10}\\.example",
        report_id(),
        0i64..=4_102_444_800,
        0i64..=10 * 86_400,
        domain(),
        proptest::collection::vec(record(), 0..30),
    )
        .prop_map(
            |(org_name, email, report_id, begin, length, domain, records)| AggregateXml {
                org_name,
                email,
                report_id,
                begin,
                end: begin + length,
                domain,
                records,
            },
        )
}

fn original_ips(doc: &AggregateXml) -> BTreeSet<IpAddr> {
    doc.records
        .iter()
        .map(|r| r.source_ip.parse().expect("generated IP"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        named in any::<bool>(),
    ) {
        let name = named.then_some("google.com!example.com!1715040000!1715126399.xml.gz");
        parse_never_panics(&Parser::default(), &bytes, name);
        parse_never_panics(&Parser::new(small_limits()), &bytes, name);
    }

    #[test]
    fn arbitrary_bytes_behind_a_format_signature_never_panic(
        prefix in prop::sample::select(vec![
            &b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"[..],
            &b"PK\x03\x04"[..],
            &b"PK\x05\x06"[..],
            &b"\x78\x9c"[..],
            &b"\xEF\xBB\xBF<feedback><report_metadata><report_id>"[..],
            &b"\xFF\xFE<\x00"[..],
            &b"{\"policies\": [{\"policy\": "[..],
            &b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"[..],
            &b"Content-Type: message/rfc822\r\n\r\n"[..],
            &b"unused"[..],
        ]),
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut input = prefix.to_vec();
        input.extend_from_slice(&tail);
        parse_never_panics(&Parser::default(), &input, None);
        parse_never_panics(&Parser::new(small_limits()), &input, Some("x.json.gz"));
    }

    #[test]
    fn mutated_real_inputs_never_panic(
        seed in prop::sample::select(SEEDS),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..24),
        compress in any::<bool>(),
    ) {
        let mut input = fixture(seed);
        for (at, byte, op) in edits {
            let i = at.index(input.len() + 1);
            match op {
                0 if i < input.len() => input[i] = byte,
                1 => input.insert(i, byte),
                _ if i < input.len() => {
                    input.remove(i);
                }
                _ => input.push(byte),
            }
        }
        if compress {
            input = gzip(&input);
        }
        parse_never_panics(&Parser::default(), &input, Some(seed));
    }

    #[test]
    fn a_generated_aggregate_report_round_trips_through_any_packaging(
        doc in aggregate(),
        how in packaging(),
    ) {
        let xml = doc.to_xml();
        let input = package(xml.as_bytes(), how);
        let parsed = Parser::default().parse(&input, None);
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{how:?}: {e}\n{xml}"))),
        };
        prop_assert!(parsed.failures.is_empty(), "{:?}", parsed.failures);
        let [Report::DmarcAggregate(r)] = &parsed.reports[..] else {
            return Err(TestCaseError::fail("expected one aggregate report"));
        };
        prop_assert_eq!(&r.org_name, doc.org_name.trim());
        let expected_id = ReportId::parse(&doc.report_id).expect("filtered to valid ids");
        prop_assert_eq!(&r.report_id, &expected_id);
        prop_assert_eq!(r.email.as_deref(), Some(doc.email.as_str()));
        prop_assert_eq!(r.begin.timestamp(), doc.begin);
        prop_assert_eq!(r.end.timestamp(), doc.end);
        prop_assert_eq!(r.policy_domain.as_str(), doc.domain.as_str());
        prop_assert_eq!(r.records.len(), doc.records.len());
        for (got, want) in r.records.iter().zip(&doc.records) {
            prop_assert_eq!(got.source_ip.ip(), Some(want.source_ip.parse::<IpAddr>().expect("generated IP")));
            prop_assert_eq!(got.count, want.count);
            prop_assert_eq!(got.identifiers.header_from.as_deref(), Some(want.header_from.as_str()));
            prop_assert_eq!(got.auth_results.spf.len(), 1);
        }
        prop_assert_eq!(r.message_count, doc.records.iter().map(|x| x.count).sum::<u64>());
        if doc.records.is_empty() {
            prop_assert_eq!(r.warnings.clone(), vec!["report has no usable records".to_owned()]);
        } else {
            prop_assert!(r.warnings.is_empty(), "a valid report needed repairs: {:?}", r.warnings);
        }
    }

    #[test]
    fn truncating_a_valid_report_at_any_byte_never_panics_or_invents_records(
        doc in aggregate(),
        how in packaging(),
        cut in any::<prop::sample::Index>(),
    ) {
        let input = package(doc.to_xml().as_bytes(), how);
        let cut = cut.index(input.len());
        let ips = original_ips(&doc);
        if let Ok(parsed) = Parser::default().parse(&input[..cut], None) {
            for report in &parsed.reports {
                let Report::DmarcAggregate(r) = report else {
                    return Err(TestCaseError::fail("a cut aggregate report became another kind"));
                };
                prop_assert!(r.records.len() <= doc.records.len());
                for rec in &r.records {
                    let ip = rec.source_ip.ip();
                    prop_assert!(ip.is_some_and(|ip| ips.contains(&ip)), "invented {:?}", rec.source_ip);
                }
                prop_assert_eq!(r.message_count, r.records.iter().map(|x| x.count).sum::<u64>());
            }
        }
    }

    #[test]
    fn a_generated_tls_report_round_trips(
        org in free_text(),
        id in report_id(),
        begin in 0i64..=4_102_444_800,
        policies in proptest::collection::vec(
            (
                prop::sample::select(vec!["sts", "tlsa", "no-policy-found"]),
                domain(),
                proptest::collection::vec(domain(), 0..4),
                any::<u32>(),
                any::<u32>(),
            ),
            0..6,
        ),
        gzipped in any::<bool>(),
    ) {
        let iso = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .expect("in range")
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let json = serde_json::json!({
            "organization-name": org,
            "date-range": {"start-datetime": iso(begin), "end-datetime": iso(begin + 86_399)},
            "contact-info": "tlsrpt@reporter.example",
            "report-id": id,
            "policies": policies.iter().map(|(kind, domain, mx, ok, failed)| serde_json::json!({
                "policy": {
                    "policy-type": kind,
                    "policy-string": ["version: STSv1", "mode: enforce"],
                    "policy-domain": domain,
                    "mx-host": mx,
                },
                "summary": {
                    "total-successful-session-count": ok,
                    "total-failure-session-count": failed,
                },
            })).collect::<Vec<_>>(),
        });
        let mut input = serde_json::to_vec(&json).expect("serializes");
        if gzipped {
            input = gzip(&input);
        }
        let parsed = Parser::default().parse(&input, None);
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{e}: {json}"))),
        };
        let [Report::TlsRpt(r)] = &parsed.reports[..] else {
            return Err(TestCaseError::fail("expected one TLS report"));
        };
        prop_assert_eq!(&r.org_name, org.trim());
        let expected_id = ReportId::parse(&id).expect("filtered to valid ids");
        prop_assert_eq!(&r.report_id, &expected_id);
        prop_assert_eq!(r.begin.timestamp(), begin);
        prop_assert_eq!(r.end.timestamp(), begin + 86_399);
        prop_assert_eq!(r.policies.len(), policies.len());
        for (got, (kind, domain, mx, ok, failed)) in r.policies.iter().zip(&policies) {
            prop_assert_eq!(got.policy_type.as_str(), *kind);
            prop_assert!(!matches!(got.policy_type, TlsPolicyType::Other(_)));
            prop_assert_eq!(got.policy_domain.as_ref().map(|d| d.as_str()), Some(domain.as_str()));
            prop_assert_eq!(&got.mx_hosts, mx);
            prop_assert_eq!(got.successful_sessions, u64::from(*ok));
            prop_assert_eq!(got.failed_sessions, u64::from(*failed));
        }
        prop_assert_eq!(r.successful_sessions, policies.iter().map(|p| u64::from(p.3)).sum::<u64>());
        prop_assert_eq!(r.failed_sessions, policies.iter().map(|p| u64::from(p.4)).sum::<u64>());
        prop_assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
}

/// Every cut point of one small report, not a sample: no cut is ever a report. Once the
/// first report element is in, a cut is `Truncated`; only the whole document parses.
#[test]
fn truncating_a_report_at_every_byte_never_panics_and_never_yields_part_of_it() {
    let mut doc = AggregateXml::with_records(3);
    doc.org_name = "Cut & <Paste> \"Reporter\"".to_owned();
    let xml = doc.to_xml();
    let ips = original_ips(&doc);
    let parser = Parser::default();
    let first = xml.find("<version>").expect("version") + "<version>".len();
    let closed = xml.rfind("</feedback>").expect("closed") + "</feedback>".len();
    for cut in 0..=xml.len() {
        let input = &xml.as_bytes()[..cut];
        match parser.parse(input, None) {
            Ok(parsed) => {
                assert!(cut >= closed, "cut at {cut}: part of a report parsed");
                let [Report::DmarcAggregate(r)] = &parsed.reports[..] else {
                    panic!("cut at {cut}: expected one aggregate report");
                };
                assert_eq!(r.org_name, doc.org_name, "cut at {cut}");
                assert_eq!(r.records.len(), 3, "cut at {cut}");
                for rec in &r.records {
                    let ip = rec.source_ip.ip().expect("valid IP");
                    assert!(ips.contains(&ip), "cut at {cut}: invented {ip}");
                    assert_eq!(rec.count, 1, "cut at {cut}");
                }
            }
            Err(e) if cut >= first && cut < closed => {
                assert_eq!(e.code(), "truncated", "cut at {cut}: {e}")
            }
            Err(e) => assert!(cut < first, "cut at {cut}: {e}"),
        }
    }
}
