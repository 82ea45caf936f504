//! Real-world quirks of DMARC aggregate reports (D1–D36), SMTP TLS reports (T1–T21) and
//! report packaging (market notes §5.3, §6.1, §6.2), each checked against a hand-written
//! fixture under `tests/fixtures/quirks/` or a wrapper built at test time.

use chrono::{DateTime, SecondsFormat, Utc};
use sealwatch_model::{
    Alignment, DiscoveryMethod, Disposition, DkimAuthResult, DkimResult, DmarcResult,
    FailureFormat, OverrideType, PolicyAction, PolicyOverrideReason, Report, SpfAuthResult,
    SpfResult, SpfScope, TlsPolicyType, TlsResultType,
};
use sealwatch_tests::{
    AggregateXml, Email, ParseError, Part, aggregate_report, aggregates, assert_clean,
    assert_no_warning, assert_warning, base64_lines, failure_report, fixture, fixture_text, gzip,
    gzip_header, parse_err, parse_ok, raw_deflate, source_ips, tls_report, zip, zlib,
};

fn utc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

const REPORT_NAME: &str = "packaging.example!example.net!1716508800!1716595199.xml.gz";

fn opt_utc(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(utc)
}

// =======================================================================================
// DMARC aggregate content quirks (§6.1)
// =======================================================================================

#[test]
fn yahoo_unused_gzip_body_is_a_placeholder_not_a_crash() {
    // D1: the whole gzip member decompresses to the word "unused".
    let gz = gzip(b"unused");
    let err = parse_err(
        &gz,
        Some("yahoo.com!example.com!1715040000!1715126399.xml.gz"),
    );
    assert_eq!(err, ParseError::Placeholder("unused".to_owned()));
    assert_eq!(err.code(), "placeholder");
    assert!(err.is_not_a_report());
}

#[test]
fn yahoo_unused_placeholder_attached_to_an_email_is_reported_as_placeholder() {
    // D1 as it arrives: Yahoo/AOL mail with an application/x-gzip attachment.
    let email = Email::new(
        "dmarchelp@yahooinc.com",
        "Report Domain: example.com Submitter: yahoo.com Report-ID: <1715040000.123>",
    )
    .with_attachment(
        "application/x-gzip",
        "yahoo.com!example.com!1715040000!1715126399.xml.gz",
        &gzip(b"unused\n"),
    );
    assert_eq!(
        parse_err(&email, None),
        ParseError::Placeholder("unused".to_owned())
    );
}

#[test]
fn stray_unclosed_xs_schema_tag_before_feedback_is_ignored() {
    // D2 (IKEA): `<xs:schema …>` opened before <feedback> and never closed.
    let r = aggregate_report(&fixture("d02-stray-xs-schema.xml"), None);
    assert_eq!(r.org_name, "furniture-retailer.example");
    assert_eq!(r.report_id.as_str(), "aggr_report_2024_05_06_663900c1");
    assert_eq!(r.begin.timestamp(), 1_714_946_400);
    assert_eq!(r.end.timestamp(), 1_715_032_800);
    assert_eq!(r.policy_domain.as_str(), "shop.example.de");
    assert_eq!(r.policy_published.fo.as_deref(), Some("0"));
    assert_eq!(r.policy_published.pct, Some(100));
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.message_count, 4);
    let rec = &r.records[0];
    assert_eq!(rec.source_ip.to_string(), "198.51.100.23");
    assert_eq!(
        rec.identifiers.envelope_from.as_deref(),
        Some("shop.example.de")
    );
    assert_eq!(
        rec.auth_results.spf,
        vec![SpfAuthResult {
            domain: Some("relay.example.net".to_owned()),
            scope: Some(SpfScope::Helo),
            result: SpfResult::None,
            human_result: None,
        }]
    );
    assert_eq!(rec.auth_results.dkim[0].result, DkimResult::Pass);
    assert_eq!(rec.auth_results.dkim[0].selector, None);
    assert_eq!(r.xml_namespace, None, "targetNamespace is not an xmlns");
}

#[test]
fn bel_control_characters_in_reason_comment_are_dropped_with_a_warning() {
    // D3 (Yahoo): two raw 0x07 bytes inside <comment>.
    let raw = fixture("d03-bel-in-comment.xml");
    assert!(raw.contains(&0x07), "fixture must hold raw BEL bytes");
    let r = aggregate_report(&raw, None);
    assert_eq!(r.org_name, "Yahoo");
    assert_eq!(r.policy_published.p, Some(PolicyAction::Reject));
    assert_eq!(r.records.len(), 1);
    assert_eq!(
        r.records[0].policy_evaluated.reasons,
        vec![PolicyOverrideReason {
            kind: OverrideType::LocalPolicy,
            comment: Some(
                "arc=pass as[1].d=lists.example.net as[1].s=arc-2024 ams[1].d=lists.example.net"
                    .to_owned()
            ),
        }]
    );
    assert_warning(&r.warnings, "control characters removed from values");
}

#[test]
fn kddi_broken_closing_tags_are_repaired_and_the_values_kept() {
    // D4: `<report_id>…/report_id>` and the same breakage in a record's <count>.
    let r = aggregate_report(&fixture("d04-broken-close-tag.xml"), None);
    assert_eq!(r.report_id.as_str(), "kddi-20240507-0001");
    assert_eq!(r.org_name, "kddi.example");
    assert_eq!(r.begin.timestamp(), 1_714_953_600);
    assert_eq!(r.end.timestamp(), 1_715_039_999);
    assert_eq!(r.policy_domain.as_str(), "example.jp");
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].count, 3);
    assert_eq!(r.message_count, 3);
    assert_eq!(
        r.records[0].policy_evaluated.disposition,
        Some(Disposition::None)
    );
    assert_warning(
        &r.warnings,
        "<report_id> was not closed properly; value recovered",
    );
    assert_warning(
        &r.warnings,
        "<count> was not closed properly; value recovered",
    );
}

#[test]
fn hardfail_spf_result_maps_to_fail_and_empty_reason_type_to_other() {
    // D5
    let r = aggregate_report(&fixture("d05-hardfail-empty-reason.xml"), None);
    assert_eq!(r.report_id.as_str(), "smallhost-77125");
    let rec = &r.records[0];
    assert_eq!(rec.count, 5);
    assert_eq!(rec.policy_evaluated.disposition, Some(Disposition::Reject));
    assert_eq!(
        rec.auth_results.spf,
        vec![SpfAuthResult {
            domain: Some("example.net".to_owned()),
            scope: Some(SpfScope::Mfrom),
            result: SpfResult::Fail,
            human_result: None,
        }]
    );
    assert_eq!(
        rec.policy_evaluated.reasons,
        vec![PolicyOverrideReason {
            kind: OverrideType::OtherReason,
            comment: None,
        }]
    );
    assert_warning(&r.warnings, "\"hardfail\" read as \"fail\"");
}

#[test]
fn windows_1252_bytes_are_decoded_instead_of_failing_the_report() {
    // D6: 0xE9 (é) and 0x91/0x92 (curly quotes) in a document that claims UTF-8.
    let raw = fixture("d06-cp1252-bytes.xml");
    assert!(
        std::str::from_utf8(&raw).is_err(),
        "fixture must not be UTF-8"
    );
    let r = aggregate_report(&raw, None);
    assert_eq!(r.org_name, "Messagerie R\u{e9}gionale");
    assert_eq!(
        r.extra_contact_info.as_deref(),
        Some("\u{2018}support\u{2019} desk")
    );
    assert_eq!(r.report_id.as_str(), "reg-2024-05-07");
    assert_eq!(r.policy_domain.as_str(), "example.fr");
    assert_eq!(
        r.records[0].auth_results.dkim[0].selector.as_deref(),
        Some("s2024")
    );
    assert_warning(
        &r.warnings,
        "document was not valid UTF-8; decoded as Windows-1252",
    );
}

#[test]
fn unescaped_angle_brackets_and_ampersands_in_values_are_kept_as_text() {
    // D6: `<email>Name <addr></email>`, bare `&` in a URL, `a < b` in human_result.
    let r = aggregate_report(&fixture("d06-unescaped-lt-amp.xml"), None);
    assert_eq!(r.org_name, "Example Mail & Co");
    assert_eq!(
        r.email.as_deref(),
        Some("DMARC Reports <dmarc-noreply@mail.example>")
    );
    assert_eq!(
        r.extra_contact_info.as_deref(),
        Some("https://mail.example/dmarc?lang=en&ref=report")
    );
    assert_eq!(r.report_id.as_str(), "mail-example-99812");
    assert_eq!(r.message_count, 6);
    assert_eq!(
        r.records[0].auth_results.dkim[0].human_result.as_deref(),
        Some("1024-bit key; signature ok if a < b")
    );
    assert_warning(&r.warnings, "unescaped '<' in <email> value kept as text");
    assert_warning(
        &r.warnings,
        "unescaped '<' in <human_result> value kept as text",
    );
    assert_warning(&r.warnings, "unknown XML entities kept as literal text");
}

#[test]
fn mixed_and_upper_case_enum_words_are_normalised_with_warnings() {
    // D7
    let r = aggregate_report(&fixture("d07-mixed-case-enums.xml"), None);
    assert_eq!(
        r.policy_domain.as_str(),
        "example.com",
        "domain is lower-cased"
    );
    assert_eq!(r.policy_published.domain, "example.com");
    assert_eq!(r.policy_published.adkim, Some(Alignment::Strict));
    assert_eq!(r.policy_published.aspf, Some(Alignment::Relaxed));
    assert_eq!(r.policy_published.p, Some(PolicyAction::Quarantine));
    assert_eq!(r.policy_published.sp, Some(PolicyAction::Reject));
    let rec = &r.records[0];
    assert_eq!(rec.count, 12);
    assert_eq!(
        rec.policy_evaluated.disposition,
        Some(Disposition::Quarantine)
    );
    assert_eq!(rec.policy_evaluated.dkim, Some(DmarcResult::Pass));
    assert_eq!(rec.policy_evaluated.spf, Some(DmarcResult::Fail));
    assert_eq!(rec.auth_results.dkim[0].result, DkimResult::Pass);
    assert_eq!(rec.auth_results.spf[0].scope, Some(SpfScope::Mfrom));
    assert_eq!(rec.auth_results.spf[0].result, SpfResult::SoftFail);
    assert_warning(
        &r.warnings,
        "<p> value \"Quarantine\" read as \"quarantine\"",
    );
    assert_warning(&r.warnings, "<adkim> value \"S\" read as \"s\"");
    assert_warning(&r.warnings, "\"SoftFail\" read as \"softfail\"");
}

#[test]
fn old_draft_result_words_unknown_and_error_map_to_temperror_and_permerror() {
    // D8: the pre-RFC layout (no <version>, no <envelope_from>) with old result words.
    let r = aggregate_report(&fixture("d08-old-draft-words.xml"), None);
    assert_eq!(r.version, None);
    assert_eq!(r.org_name, "legacy-mta.example");
    assert_eq!(r.report_id.as_str(), "4451901277314455120");
    assert_eq!(r.begin.timestamp(), 1_336_176_000);
    assert_eq!(r.end.timestamp(), 1_336_262_399);
    assert_eq!(
        r.extra_contact_info.as_deref(),
        Some("http://legacy-mta.example/dmarc/help")
    );
    assert_eq!(r.records.len(), 2);
    assert_eq!(r.message_count, 3);
    let first = &r.records[0];
    assert_eq!(first.identifiers.envelope_from, None);
    assert_eq!(
        first.auth_results.dkim,
        vec![DkimAuthResult {
            domain: Some("example.com".to_owned()),
            selector: None,
            result: DkimResult::TempError,
            human_result: None,
        }]
    );
    assert_eq!(first.auth_results.spf[0].result, SpfResult::PermError);
    let second = &r.records[1];
    assert_eq!(second.auth_results.dkim[0].result, DkimResult::PermError);
    assert_eq!(second.auth_results.spf[0].result, SpfResult::TempError);
    assert_warning(&r.warnings, "\"unknown\" read as \"temperror\"");
    assert_warning(&r.warnings, "\"error\" read as \"permerror\"");
}

#[test]
fn rfc9990_report_in_the_dmarc_2_0_namespace_keeps_its_new_fields() {
    // D9 (GMX / WEB.DE style): default namespace, generator, discovery_method, testing,
    // np, no pct, a top-level <extension>, SPF result `policy`.
    let r = aggregate_report(&fixture("d09-rfc9990-namespace.xml"), None);
    assert_eq!(
        r.xml_namespace.as_deref(),
        Some("urn:ietf:params:xml:ns:dmarc-2.0")
    );
    assert_eq!(r.version.as_deref(), Some("1.0"));
    assert_eq!(r.org_name, "GMX-style Mailservice");
    assert_eq!(r.report_id.as_str(), "5e2f0c8a9b1d4e7fa3c6b8d0e1f2a3b4");
    assert_eq!(r.generator.as_deref(), Some("mailservice-dmarc 3.2"));
    let p = &r.policy_published;
    assert_eq!(p.discovery_method, Some(DiscoveryMethod::Treewalk));
    assert_eq!(p.testing, Some(false));
    assert_eq!(p.np, Some(PolicyAction::Reject));
    assert_eq!(p.sp, Some(PolicyAction::Quarantine));
    assert_eq!(p.aspf, Some(Alignment::Strict));
    assert_eq!(p.pct, None);
    assert_eq!(
        r.extensions,
        vec![
            "<ms:note xmlns:ms=\"https://mailservice.example/dmarc-ext\">batch 7</ms:note>"
                .to_owned()
        ]
    );
    assert_eq!(r.records.len(), 1);
    let rec = &r.records[0];
    assert_eq!(rec.source_ip.to_string(), "2001:db8:1::25");
    assert_eq!(rec.count, 9);
    assert_eq!(rec.identifiers.envelope_to.as_deref(), Some("example.de"));
    assert_eq!(
        rec.identifiers.envelope_from.as_deref(),
        Some("bounces.example.de")
    );
    assert_eq!(
        rec.auth_results.spf,
        vec![SpfAuthResult {
            domain: Some("bounces.example.de".to_owned()),
            scope: Some(SpfScope::Mfrom),
            result: SpfResult::Policy,
            human_result: Some("sender not permitted by local policy".to_owned()),
        }]
    );
    assert_clean(&r.warnings);
}

#[test]
fn rfc9990_report_with_prefixed_elements_is_read_by_local_name() {
    // D9: a namespace-unaware parser reports "Missing report_metadata" for this layout.
    let r = aggregate_report(&fixture("d09-rfc9990-prefixed.xml"), None);
    assert_eq!(r.org_name, "Prefixed Reporter");
    assert_eq!(r.report_id.as_str(), "pfx-2024-05-09");
    assert_eq!(r.policy_domain.as_str(), "example.at");
    assert_eq!(r.version.as_deref(), Some("1.0"));
    assert_eq!(
        r.xml_namespace.as_deref(),
        Some("urn:ietf:params:xml:ns:dmarc-2.0"),
        "the namespace bound to the feedback element's prefix"
    );
    assert_eq!(
        r.policy_published.discovery_method,
        Some(DiscoveryMethod::Psl)
    );
    assert_eq!(r.policy_published.testing, Some(true));
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.message_count, 2);
    assert_eq!(
        r.records[0].policy_evaluated.reasons,
        vec![PolicyOverrideReason {
            kind: OverrideType::PolicyTestMode,
            comment: Some("t=y".to_owned()),
        }]
    );
    assert_clean(&r.warnings);
}

#[test]
fn disposition_pass_from_rfc9990_is_a_known_value() {
    // D10
    let r = aggregate_report(&fixture("d10-disposition-pass.xml"), None);
    assert_eq!(r.records.len(), 2);
    assert_eq!(
        r.records[0].policy_evaluated.disposition,
        Some(Disposition::Pass)
    );
    assert_eq!(
        r.records[1].policy_evaluated.disposition,
        Some(Disposition::Reject)
    );
    assert_eq!(r.message_count, 43);
    assert_clean(&r.warnings);
}

#[test]
fn google_np_element_and_reordered_dkim_children_are_read() {
    // D11 (np) and D16 (domain, result, selector order).
    let r = aggregate_report(&fixture("d11-d16-google-np-child-order.xml"), None);
    assert_eq!(r.org_name, "google.com");
    assert_eq!(r.report_id.as_str(), "4812345678901234567");
    assert_eq!(r.policy_published.np, Some(PolicyAction::Reject));
    assert_eq!(r.policy_published.pct, Some(100));
    assert_eq!(r.message_count, 17);
    assert_eq!(
        r.records[0].auth_results.dkim,
        vec![
            DkimAuthResult {
                domain: Some("example.ca".to_owned()),
                selector: Some("google".to_owned()),
                result: DkimResult::Pass,
                human_result: None,
            },
            DkimAuthResult {
                domain: Some("esp-bounces.example".to_owned()),
                selector: Some("s1".to_owned()),
                result: DkimResult::Pass,
                human_result: None,
            },
        ]
    );
    assert_eq!(r.records[0].auth_results.spf[0].scope, None);
    assert_clean(&r.warnings);
}

#[test]
fn unused_namespace_declarations_and_schema_location_are_harmless() {
    // D12 (AOL, Outlook.com)
    let r = aggregate_report(&fixture("d12-unused-namespaces.xml"), None);
    assert_eq!(r.org_name, "AOL");
    assert_eq!(r.report_id.as_str(), "aol_1715472000_8812");
    assert_eq!(r.policy_domain.as_str(), "example.org");
    assert_eq!(r.xml_namespace, None, "only prefixed declarations");
    assert_eq!(r.records.len(), 1);
    assert_clean(&r.warnings);
}

#[test]
fn yahoo_trailing_tabs_missing_envelope_from_and_spf_scope_are_tolerated() {
    // D13
    let raw = fixture("d13-yahoo-trailing-tabs.xml");
    assert!(raw.windows(2).any(|w| w == b"\t\n"));
    let r = aggregate_report(&raw, None);
    assert_eq!(r.org_name, "Yahoo");
    assert_eq!(r.report_id.as_str(), "1715558400.204471");
    assert_eq!(r.policy_domain.as_str(), "example.co.uk");
    let rec = &r.records[0];
    assert_eq!(rec.count, 7);
    assert_eq!(
        rec.identifiers.header_from.as_deref(),
        Some("example.co.uk")
    );
    assert_eq!(rec.identifiers.envelope_from, None);
    assert_eq!(rec.auth_results.spf[0].scope, None);
    assert_eq!(rec.auth_results.spf[0].result, SpfResult::Pass);
    assert_eq!(rec.auth_results.dkim[0].selector.as_deref(), Some("y2024"));
    assert_clean(&r.warnings);
}

#[test]
fn mail_ru_single_line_report_with_single_quoted_declaration_is_read() {
    // D14: one line, `<?xml version='1.0' …?>`, auth_results with only <spf>.
    let r = aggregate_report(&fixture("d14-mailru-single-line.xml"), None);
    assert_eq!(r.org_name, "Mail.Ru");
    assert_eq!(r.report_id.as_str(), "20240512-1a2b3c4d@mail.example");
    assert_eq!(r.end.timestamp() - r.begin.timestamp(), 86_400);
    assert_eq!(source_ips(&r), ["192.0.2.11", "192.0.2.12"]);
    assert_eq!(r.message_count, 3);
    for rec in &r.records {
        assert!(rec.auth_results.dkim.is_empty());
        assert_eq!(rec.auth_results.spf.len(), 1);
    }
    assert_eq!(r.records[1].auth_results.spf[0].result, SpfResult::SoftFail);
    assert_clean(&r.warnings);
}

#[test]
fn outlook_records_split_per_envelope_to_stay_separate() {
    // D15: the same IP three times, one record per envelope_to; <fo>; end = begin + 86400.
    let r = aggregate_report(&fixture("d15-outlook-envelope-to-split.xml"), None);
    assert_eq!(r.org_name, "Enterprise Outlook");
    assert_eq!(r.end.timestamp() - r.begin.timestamp(), 86_400);
    assert_eq!(r.policy_published.fo.as_deref(), Some("1"));
    assert_eq!(r.records.len(), 3);
    assert!(
        r.records
            .iter()
            .all(|rec| rec.source_ip.to_string() == "192.0.2.50")
    );
    let split: Vec<(Option<&str>, u64)> = r
        .records
        .iter()
        .map(|rec| (rec.identifiers.envelope_to.as_deref(), rec.count))
        .collect();
    assert_eq!(
        split,
        [
            (Some("live.example"), 3),
            (Some("outlook.example"), 2),
            (Some("hotmail.example"), 1)
        ]
    );
    assert_eq!(r.message_count, 6);
    assert_clean(&r.warnings);
}

#[test]
fn empty_auth_results_and_empty_identifier_values_become_absent_not_errors() {
    // D17: `<auth_results></auth_results>`, `<auth_results/>`, empty dkim domain and
    // selector, SPF result without a domain, empty envelope_from.
    let r = aggregate_report(&fixture("d17-empty-auth-results.xml"), None);
    assert_eq!(r.records.len(), 3);
    assert_eq!(r.message_count, 6);
    let [first, second, third] = &r.records[..] else {
        panic!("three records expected");
    };
    assert!(first.auth_results.dkim.is_empty() && first.auth_results.spf.is_empty());
    assert!(third.auth_results.dkim.is_empty() && third.auth_results.spf.is_empty());
    assert_eq!(second.identifiers.envelope_from, None);
    assert_eq!(
        second.auth_results.dkim,
        vec![DkimAuthResult {
            domain: None,
            selector: None,
            result: DkimResult::None,
            human_result: None,
        }]
    );
    assert_eq!(
        second.auth_results.spf,
        vec![SpfAuthResult {
            domain: None,
            scope: None,
            result: SpfResult::Pass,
            human_result: None,
        }]
    );
    assert_clean(&r.warnings);
}

#[test]
fn null_reverse_path_record_has_no_envelope_from_and_a_helo_scope() {
    // D18 (Fastmail, Mail::DMARC)
    let r = aggregate_report(&fixture("d18-null-reverse-path-helo.xml"), None);
    assert_eq!(r.org_name, "Fastmail Pty Ltd");
    assert_eq!(r.report_id.as_str(), "102775391");
    let rec = &r.records[0];
    assert_eq!(rec.identifiers.envelope_from, None);
    assert_eq!(
        rec.auth_results.spf,
        vec![SpfAuthResult {
            domain: Some("mx1.example.com".to_owned()),
            scope: Some(SpfScope::Helo),
            result: SpfResult::Pass,
            human_result: None,
        }]
    );
    assert_clean(&r.warnings);
}

#[test]
fn a_report_id_resent_with_another_date_range_parses_as_two_distinct_reports() {
    // D19: the parser must not merge or reject them; de-duplication is the caller's job
    // and needs the date range in its key.
    let day1 = aggregate_report(&fixture("d19-resent-id-day-1.xml"), None);
    let day2 = aggregate_report(&fixture("d19-resent-id-day-2.xml"), None);
    assert_eq!(day1.report_id, day2.report_id);
    assert_eq!(day1.report_id.as_str(), "3f9a0c1e5b7d2468ace013579bdf2468");
    assert_eq!(day1.begin.timestamp(), 1_715_817_600);
    assert_eq!(day2.begin.timestamp(), 1_715_904_000);
    assert_eq!(day1.end.timestamp(), 1_715_903_999);
    assert_eq!(day2.end.timestamp(), 1_715_990_399);
    assert_eq!((day1.message_count, day2.message_count), (1, 2));
}

#[test]
fn exact_duplicates_parse_identically_and_shared_id_schemes_differ_by_reporter() {
    // D20: the same report delivered twice (two emails) parses to the same content, so
    // a content hash can recognise it. D21: two reporters using the `domain.begin.end`
    // id scheme produce the same report_id; only the reporter tells them apart.
    let xml = fixture_text("pkg-report.xml")
        .replace("pkg-2024-05-24-001", "example.net.1716508800.1716595199");
    let deliver = |org: &str| {
        let doc = xml.replace("Packaging Test Reporter", org);
        let email = Email::new("dmarc@reporter.example", "Report Domain: example.net")
            .with_attachment("application/gzip", REPORT_NAME, &gzip(doc.as_bytes()));
        let mut r = aggregate_report(&email, None);
        let message_id = r.submitter.message_id.take();
        (r, message_id)
    };
    let (first, first_id) = deliver("Reporter One");
    let (again, again_id) = deliver("Reporter One");
    assert_ne!(first_id, again_id, "two distinct emails");
    assert_eq!(first, again, "identical content apart from the Message-ID");
    let (other, _) = deliver("Reporter Two");
    assert_eq!(other.report_id, first.report_id);
    assert_eq!(other.begin, first.begin);
    assert_ne!(other.org_name, first.org_name);
}

#[test]
fn sliding_non_midnight_date_ranges_are_kept_exactly() {
    // D22: a 48-hour range starting at an arbitrary second.
    let r = aggregate_report(&fixture("d22-sliding-range.xml"), None);
    assert_eq!(r.begin.timestamp(), 1_715_727_556);
    assert_eq!(r.end.timestamp(), 1_715_900_356);
    assert_eq!(r.end.timestamp() - r.begin.timestamp(), 48 * 3600);
    assert_eq!(r.report_id.as_str(), "smallbiz.example:1715900356");
    assert_eq!(r.message_count, 11);
    assert_clean(&r.warnings);
}

#[test]
fn one_record_per_message_reports_with_many_count_one_records_are_read_whole() {
    // D23 (OpenDMARC before its 2026 fix): 20 000 records of count 1, gzip-compressed.
    const N: usize = 20_000;
    let doc = AggregateXml::with_records(N);
    let r = aggregate_report(
        &gzip(doc.to_xml().as_bytes()),
        Some("opendmarc.example!example.com!1714521600!1714607999.xml.gz"),
    );
    assert_eq!(r.records.len(), N);
    assert_eq!(r.message_count, N as u64);
    assert!(r.records.iter().all(|rec| rec.count == 1));
    let ips = source_ips(&r);
    assert_eq!(ips[0], "10.0.0.0");
    assert_eq!(ips[N - 1], doc.records[N - 1].source_ip);
    let distinct: std::collections::BTreeSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), N);
    assert_clean(&r.warnings);
}

#[test]
fn subject_encoded_words_in_many_charsets_never_break_parsing() {
    // D35: the Subject is only a submitter hint; odd encodings must not lose the report.
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let utf8_subject = "Report Domain: пример.example Submitter: mail.example";
    let cases: Vec<(String, Option<String>)> = vec![
        (
            format!("=?UTF-8?B?{}?=", b64(utf8_subject)),
            Some(utf8_subject.to_owned()),
        ),
        (
            "=?ISO-8859-1?Q?Rapport_DMARC_pour_exempl=E9.fr?=".to_owned(),
            Some("Rapport DMARC pour exempl\u{e9}.fr".to_owned()),
        ),
        (
            "=?utf-8?q?Report_Domain:_example.com?= =?utf-8?q?_Submitter:_google.com?=".to_owned(),
            Some("Report Domain: example.com Submitter: google.com".to_owned()),
        ),
        // Invalid base64, unknown charset, truncated encoded word, raw 8-bit text.
        ("=?UTF-8?B?@@@not-base64@@@?=".to_owned(), None),
        ("=?x-no-such-charset?Q?abc?=".to_owned(), None),
        ("=?UTF-8?B?UmVwb3J0".to_owned(), None),
        ("=?Shift_JIS?B?gXmDZYNYg2eBeg==?=".to_owned(), None),
    ];
    let xml = fixture("pkg-report.xml");
    for (subject, expected) in cases {
        let email = Email::new("dmarc@packaging.example", &subject).with_attachment(
            "application/gzip",
            "packaging.example!example.net!1716508800!1716595199.xml.gz",
            &gzip(&xml),
        );
        let parsed = parse_ok(&email, None);
        let [Report::DmarcAggregate(r)] = &parsed.reports[..] else {
            panic!("subject {subject:?}: expected one aggregate report");
        };
        assert_eq!(r.report_id.as_str(), "pkg-2024-05-24-001", "{subject}");
        if let Some(expected) = expected {
            assert_eq!(
                r.submitter.subject.as_deref(),
                Some(expected.as_str()),
                "{subject}"
            );
        }
    }
}

// =======================================================================================
// Aggregate report packaging (§5.3 and D25–D34)
// =======================================================================================

fn assert_pkg_report(r: &sealwatch_model::AggregateReport) {
    assert_eq!(r.org_name, "Packaging Test Reporter");
    assert_eq!(r.report_id.as_str(), "pkg-2024-05-24-001");
    assert_eq!(r.begin.timestamp(), 1_716_508_800);
    assert_eq!(r.end.timestamp(), 1_716_595_199);
    assert_eq!(r.policy_domain.as_str(), "example.net");
    assert_eq!(source_ips(r), ["192.0.2.77"]);
    assert_eq!(r.message_count, 77);
}

#[test]
fn mimecast_gzip_with_trailing_crlf_uses_the_data_before_the_garbage() {
    // D25 as actually seen: a valid gzip member followed by "\r\n".
    let mut gz = gzip(&fixture("d25-mimecast.xml"));
    gz.extend_from_slice(b"\r\n");
    let email = Email::new(
        "no-reply@au-1.mimecastreport.example",
        "Report domain: example.id.au Submitter: mimecast.org Report-ID: 157a5fe30ec76f4bc0d8bccfc96c118a",
    )
    .body(Part::attachment(
        "application/gzip",
        "mimecast.org!example.id.au!1715904000!1715990399!157a5fe30ec76f4bc0d8bccfc96c118a.xml.gz",
        &gz,
    ));
    let r = aggregate_report(&email, None);
    assert_eq!(r.org_name, "Mimecast");
    assert_eq!(r.report_id.as_str(), "157a5fe30ec76f4bc0d8bccfc96c118a");
    assert_eq!(r.policy_domain.as_str(), "example.id.au");
    assert_eq!(r.message_count, 25);
    assert_warning(&r.warnings, "gzip stream damaged");
    assert_warning(&r.warnings, "used the data before the damage");
}

#[test]
fn gzip_with_trailing_garbage_bytes_keeps_the_report() {
    let mut gz = gzip(&fixture("pkg-report.xml"));
    gz.extend_from_slice(b"\x00\x00\x00GARBAGE AFTER THE MEMBER\xff\xfe");
    let r = aggregate_report(&gz, Some("report.xml.gz"));
    assert_pkg_report(&r);
    assert_warning(&r.warnings, "gzip stream damaged");
}

#[test]
fn raw_deflate_body_behind_a_broken_gzip_header_is_inflated() {
    // D25 (Mimecast "weird gzip"): a gzip header the gzip reader rejects (reserved flag
    // bits set), followed by a raw deflate stream and no trailer.
    let mut weird = gzip_header(0xE0);
    weird.extend(raw_deflate(&fixture("d25-mimecast.xml")));
    let r = aggregate_report(
        &weird,
        Some("mimecast.org!example.id.au!1715904000!1715990399.xml.gz"),
    );
    assert_eq!(r.org_name, "Mimecast");
    assert_eq!(r.message_count, 25);
    assert_warning(&r.warnings, "read its body as raw deflate");
}

#[test]
fn zlib_stream_behind_a_gzip_header_is_inflated() {
    // D25 (parsedmarc#429 "needs raw zlib"): gzip header, then a zlib stream.
    let mut weird = gzip_header(0x00);
    weird.extend(zlib(&fixture("d25-mimecast.xml")));
    let r = aggregate_report(&weird, None);
    assert_eq!(r.report_id.as_str(), "157a5fe30ec76f4bc0d8bccfc96c118a");
    assert_warning(&r.warnings, "read its body as zlib");
}

#[test]
fn bare_zlib_stream_is_detected_by_its_magic() {
    let r = aggregate_report(&zlib(&fixture("pkg-report.xml")), Some("report.xml.z"));
    assert_pkg_report(&r);
    assert_clean(&r.warnings);
}

#[test]
fn amazon_ses_octet_stream_attachment_with_brace_subject_is_read() {
    // D26
    let subject = "Dmarc Aggregate Report Domain: {email.example.com} Submitter: {Amazon SES} \
                   Date: {2024-05-18} Report-ID: {5b8e7c1f-3d2a-4e6b-9f10-2c3d4e5f6a7b}";
    let name = "amazonses.com!email.example.com!1715990400!1716076800.xml.gz";
    let email = Email::new("postmaster@amazonses.com", subject).with_attachment(
        "application/octet-stream",
        name,
        &gzip(&fixture("d26-amazonses.xml")),
    );
    let r = aggregate_report(&email, None);
    assert_eq!(r.org_name, "Amazon SES");
    assert_eq!(r.report_id.as_str(), "5b8e7c1f-3d2a-4e6b-9f10-2c3d4e5f6a7b");
    assert_eq!(r.policy_domain.as_str(), "email.example.com");
    assert_eq!(r.message_count, 26);
    assert_eq!(r.submitter.subject.as_deref(), Some(subject));
    assert_eq!(
        r.submitter.from.as_deref(),
        Some("postmaster@amazonses.com")
    );
    assert_eq!(r.submitter.filename.as_deref(), Some(name));
    assert_clean(&r.warnings);
}

#[test]
fn application_x_gzip_attachment_is_read() {
    // D27
    let email = Email::new(
        "dmarchelp@yahooinc.com",
        "Report Domain: example.co.uk Submitter: yahoo.com Report-ID: <1716076800.771001>",
    )
    .with_attachment(
        "application/x-gzip",
        "yahoo.com!example.co.uk!1715990400!1716076799.xml.gz",
        &gzip(&fixture("d27-yahoo-x-gzip.xml")),
    );
    let r = aggregate_report(&email, None);
    assert_eq!(r.org_name, "Yahoo");
    assert_eq!(r.report_id.as_str(), "1716076800.771001");
    assert_eq!(r.message_count, 27);
    assert_eq!(
        r.submitter
            .message_id
            .as_deref()
            .map(|m| m.ends_with("@sealwatch.test")),
        Some(true)
    );
}

#[test]
fn uncompressed_xml_attachment_is_read() {
    // D28
    let name = "centerasecurity.example!dstdomain.example.fr!1716076800!1716163200.xml";
    let email = Email::new("dmarc@centerasecurity.example", "DMARC report").with_attachment(
        "text/xml",
        name,
        &fixture("d28-plain-xml.xml"),
    );
    let r = aggregate_report(&email, None);
    assert_eq!(r.org_name, "centerasecurity.example");
    assert_eq!(r.policy_domain.as_str(), "dstdomain.example.fr");
    assert_eq!(r.message_count, 28);
    assert_eq!(r.submitter.filename.as_deref(), Some(name));
}

#[test]
fn google_zip_and_seznam_xml_zip_attachments_are_unpacked() {
    // D29
    let google = Email::new(
        "noreply-dmarc-support@google.com",
        "Report domain: example.ca Submitter: google.com Report-ID: 11223344556677889900",
    )
    .with_attachment(
        "application/zip",
        "google.com!example.ca!1716163200!1716249599.zip",
        &zip(&[(
            "google.com!example.ca!1716163200!1716249599.xml",
            &fixture("d29-google-zip.xml"),
        )]),
    );
    let g = aggregate_report(&google, None);
    assert_eq!(g.report_id.as_str(), "11223344556677889900");
    assert_eq!(g.policy_domain.as_str(), "example.ca");
    assert_eq!(g.message_count, 29);
    assert_eq!(
        g.submitter.filename.as_deref(),
        Some("google.com!example.ca!1716163200!1716249599.xml"),
        "the member name, not the archive name"
    );

    let seznam = Email::new("dmarc@seznam.example", "Report Domain: example.cz").with_attachment(
        "application/x-zip-compressed",
        "seznam.cz!example.cz!1716163200!1716249600.xml.zip",
        &zip(&[(
            "seznam.cz!example.cz!1716163200!1716249600.xml",
            &fixture("d29-seznam-xml-zip.xml"),
        )]),
    );
    let s = aggregate_report(&seznam, None);
    assert_eq!(s.org_name, "Seznam.cz a.s.");
    assert_eq!(s.report_id.as_str(), "seznam-1716163200-29");
    assert_eq!(s.message_count, 129);
}

#[test]
fn zip_mislabelled_as_gzip_is_sniffed_by_content() {
    // GMX (mail-dmarc#247): a zip archive sent as application/gzip with a .gz name.
    let email = Email::new("noreply@gmx.example", "Report Domain: example.net").with_attachment(
        "application/gzip",
        "gmx.net!example.net!1716508800!1716595199.xml.gz",
        &zip(&[("report.xml", &fixture("pkg-report.xml"))]),
    );
    assert_pkg_report(&aggregate_report(&email, None));
}

#[test]
fn trustwave_content_type_header_typo_on_the_attachment_is_tolerated() {
    // D30: `ContentType:` instead of `Content-Type:` on the attachment part.
    let gz = gzip(&fixture("d30-trustwave-typo.xml"));
    let email = Email::new("dmarc@seg.example", "DMARC Aggregate Report").body(Part::multipart(
        "mixed",
        vec![
            Part::text("Report attached."),
            Part::base64(
                &[
                    "ContentType: application/gzip; name=\"seg.example!example.nl!1716249600!1716854400!3204.xml.gz\"",
                    "Content-Disposition: attachment; filename=\"seg.example!example.nl!1716249600!1716854400!3204.xml.gz\"",
                ],
                &gz,
            ),
        ],
    ));
    let r = aggregate_report(&email, None);
    assert_eq!(r.org_name, "Trustwave SEG");
    assert_eq!(r.report_id.as_str(), "3204");
    assert_eq!(r.end.timestamp() - r.begin.timestamp(), 7 * 86_400);
    assert_eq!(r.message_count, 30);
}

#[test]
fn trustwave_content_type_typo_on_a_single_part_message_is_tolerated() {
    // D30 on the top-level header of a message whose whole body is the report.
    let email = Email::new("dmarc@seg.example", "DMARC Aggregate Report").body(Part::base64(
        &[
            "ContentType: application/gzip",
            "Content-Disposition: attachment; filename=\"seg.example!example.nl!1716249600!1716854400!3204.xml.gz\"",
        ],
        &gzip(&fixture("d30-trustwave-typo.xml")),
    ));
    let r = aggregate_report(&email, None);
    assert_eq!(r.report_id.as_str(), "3204");
    assert_eq!(r.message_count, 30);
}

#[test]
fn report_inside_a_forwarded_message_rfc822_is_found() {
    // D31: a Google zip report forwarded by Office 365 as an attached message.
    let google = Email::new(
        "noreply-dmarc-support@google.com",
        "Report domain: example.org Submitter: google.com Report-ID: 99887766554433221100",
    )
    .with_attachment(
        "application/zip",
        "google.com!example.org!1716336000!1716422399.zip",
        &zip(&[(
            "google.com!example.org!1716336000!1716422399.xml",
            &fixture("d31-google-forwarded.xml"),
        )]),
    );
    let forward = Email::new(
        "admin@example.org",
        "FW: Report domain: example.org Submitter: google.com Report-ID: 99887766554433221100",
    )
    .body(Part::multipart(
        "mixed",
        vec![
            Part::text("FYI, forwarding the DMARC report.\r\n\r\n-----Original Message-----"),
            Part::message(&google),
        ],
    ));
    let r = aggregate_report(&forward, None);
    assert_eq!(r.report_id.as_str(), "99887766554433221100");
    assert_eq!(r.policy_domain.as_str(), "example.org");
    assert_eq!(r.message_count, 31);
    assert_eq!(
        r.submitter.from.as_deref(),
        Some("noreply-dmarc-support@google.com"),
        "the submitter is the reporter of the forwarded message"
    );

    // Forwarded twice (a forward of the forward) still finds it.
    let twice = Email::new("boss@example.org", "FW: FW: DMARC")
        .body(Part::multipart("mixed", vec![Part::message(&forward)]));
    assert_eq!(aggregate_report(&twice, None).message_count, 31);
}

#[test]
fn google_lowercase_subject_with_unbracketed_report_id_is_kept_verbatim() {
    // D32: metadata comes from the XML; the subject is only kept.
    let subject = "Report domain: example.com Submitter: google.com Report-ID: 949348866075514174";
    let email = Email::new("noreply-dmarc-support@google.com", subject).with_attachment(
        "application/zip",
        "google.com!example.com!1716422400!1716508799.zip",
        &zip(&[(
            "google.com!example.com!1716422400!1716508799.xml",
            &fixture("d32-google-lowercase-subject.xml"),
        )]),
    );
    let r = aggregate_report(&email, None);
    assert_eq!(r.report_id.as_str(), "949348866075514174");
    assert_eq!(r.submitter.subject.as_deref(), Some(subject));
    assert_eq!(r.message_count, 32);
}

#[test]
fn gateway_banner_html_alternative_and_footer_parts_are_not_failures() {
    // D33: "External Email" banner in a multipart/alternative, a scan footer part, and
    // Authentication-Results-Original headers added by a corporate gateway.
    let parsed = parse_ok(&fixture("d33-gateway-banner.eml"), None);
    let Report::DmarcAggregate(r) = sealwatch_tests::only_report(&parsed) else {
        panic!("expected an aggregate report");
    };
    assert_eq!(r.org_name, "google.com");
    assert_eq!(r.report_id.as_str(), "13572468013572468013");
    assert_eq!(r.policy_domain.as_str(), "corp.example");
    assert_eq!(r.message_count, 14);
    assert_eq!(
        r.submitter.subject.as_deref(),
        Some(
            "[EXTERNAL] Report domain: corp.example Submitter: google.com Report-ID: 13572468013572468013"
        )
    );
    assert_eq!(
        r.submitter.filename.as_deref(),
        Some("google.com!corp.example!1716681600!1716767999.xml")
    );
    assert_clean(&r.warnings);
}

#[test]
fn report_wrapped_by_a_mailing_list_is_found_with_the_original_submitter() {
    // D34: list software wraps the original as message/rfc822 and adds a footer part.
    let r = aggregate_report(&fixture("d34-mailing-list-wrapped.eml"), None);
    assert_eq!(r.org_name, "Listed Reporter");
    assert_eq!(r.report_id.as_str(), "listed-20240528-04");
    assert_eq!(r.policy_domain.as_str(), "club.example");
    assert_eq!(r.message_count, 34);
    assert_eq!(r.submitter.from.as_deref(), Some("dmarc@listed.example"));
    assert_eq!(
        r.submitter.message_id.as_deref(),
        Some("listed-20240528-04@listed.example")
    );
}

#[test]
fn attachment_without_any_content_type_is_sniffed() {
    let gz = gzip(&fixture("pkg-report.xml"));
    let email = Email::new("dmarc@packaging.example", "Report").body(Part::multipart(
        "mixed",
        vec![
            Part::text("Report attached."),
            Part::base64(
                &["Content-Disposition: attachment; filename=\"report.xml.gz\""],
                &gz,
            ),
        ],
    ));
    let r = aggregate_report(&email, None);
    assert_pkg_report(&r);
    assert_eq!(r.submitter.filename.as_deref(), Some("report.xml.gz"));
}

#[test]
fn rfc2231_continued_filename_is_reassembled() {
    let r = aggregate_report(&fixture("pkg-rfc2231-filename.eml"), None);
    assert_pkg_report(&r);
    assert_eq!(
        r.submitter.filename.as_deref(),
        Some("continuation.example!example.net!1716508800!1716595199!0001.xml")
    );
    assert_eq!(
        r.submitter.from.as_deref(),
        Some("dmarc-noreply@continuation.example")
    );
}

#[test]
fn rfc2231_continued_filename_fills_a_missing_policy_domain() {
    // The report lacks <policy_published><domain>; the reassembled, percent-encoded
    // file name `receiver!policy-domain!begin!end.xml.gz` supplies it.
    let xml = fixture_text("pkg-report.xml").replace("<domain>example.net</domain>", "");
    let email = Email::new("dmarc@packaging.example", "Report").body(Part::multipart(
        "mixed",
        vec![Part::base64(
            &[
                "Content-Type: application/gzip",
                "Content-Disposition: attachment;\r\n filename*0*=UTF-8''packaging.example%21;\r\n filename*1*=example.net%211716508800%21;\r\n filename*2=\"1716595199.xml.gz\"",
            ],
            &gzip(xml.as_bytes()),
        )],
    ));
    let r = aggregate_report(&email, None);
    assert_eq!(
        r.submitter.filename.as_deref(),
        Some("packaging.example!example.net!1716508800!1716595199.xml.gz")
    );
    assert_eq!(r.policy_domain.as_str(), "example.net");
    assert_warning(
        &r.warnings,
        "no <policy_published><domain>; taken from the file name",
    );
}

#[test]
fn report_inside_a_multipart_alternative_container_is_found() {
    // rspamd#1793 / mail-dmarc#146: the gzip sits inside multipart/alternative.
    let email = Email::new("dmarc@packaging.example", "Report").body(Part::multipart(
        "alternative",
        vec![
            Part::text("Aggregate report"),
            Part::raw(
                &["Content-Type: text/html; charset=utf-8"],
                "<html><body><p>Aggregate report</p></body></html>",
            ),
            Part::attachment(
                "application/gzip",
                "packaging.example!example.net!1716508800!1716595199.xml.gz",
                &gzip(&fixture("pkg-report.xml")),
            ),
        ],
    ));
    assert_pkg_report(&aggregate_report(&email, None));
}

#[test]
fn quoted_printable_xml_attachment_is_decoded() {
    let r = aggregate_report(&fixture("pkg-qp-xml-attachment.eml"), None);
    assert_eq!(
        r.org_name,
        "Soci\u{e9}t\u{e9} G\u{e9}n\u{e9}rale de Messagerie"
    );
    assert_eq!(r.report_id.as_str(), "sgm-qp-20240525");
    assert_eq!(r.policy_domain.as_str(), "example.fr");
    assert_eq!(r.policy_published.pct, Some(50));
    assert_eq!(r.message_count, 8);
    assert_eq!(
        r.records[0].policy_evaluated.disposition,
        Some(Disposition::Quarantine)
    );
    assert_clean(&r.warnings);
}

#[test]
fn zip_with_a_report_a_readme_and_macos_junk_yields_only_the_report() {
    let xml = fixture("pkg-report.xml");
    let archive = zip(&[
        (
            "README.txt",
            b"This archive contains your DMARC aggregate report.\n",
        ),
        (
            "__MACOSX/._report.xml",
            b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X",
        ),
        ("report.xml", &xml),
        ("empty-dir/", b""),
    ]);
    let parsed = parse_ok(
        &archive,
        Some("packaging.example!example.net!1716508800!1716595199.zip"),
    );
    let Report::DmarcAggregate(r) = sealwatch_tests::only_report(&parsed) else {
        panic!("expected an aggregate report");
    };
    assert_pkg_report(r);
    assert_eq!(r.submitter.filename.as_deref(), Some("report.xml"));
}

#[test]
fn zip_with_two_reports_yields_both() {
    let archive = zip(&[
        ("a.xml", &fixture("pkg-report.xml")),
        ("b.xml.gz", &gzip(&fixture("d29-seznam-xml-zip.xml"))),
    ]);
    let parsed = parse_ok(&archive, None);
    assert!(parsed.failures.is_empty(), "{:?}", parsed.failures);
    let ids: Vec<&str> = aggregates(&parsed)
        .iter()
        .map(|r| r.report_id.as_str())
        .collect();
    assert_eq!(ids, ["pkg-2024-05-24-001", "seznam-1716163200-29"]);
}

#[test]
fn double_gzip_is_unwrapped_layer_by_layer() {
    let r = aggregate_report(
        &gzip(&gzip(&fixture("pkg-report.xml"))),
        Some("report.xml.gz.gz"),
    );
    assert_pkg_report(&r);
    assert_clean(&r.warnings);
}

#[test]
fn base64_text_without_a_transfer_encoding_is_decoded_with_a_warning() {
    // A gateway dropped the Content-Transfer-Encoding header but kept the base64 body.
    let gz = gzip(&fixture("pkg-report.xml"));
    let email = Email::new("dmarc@packaging.example", "Report").body(Part::multipart(
        "mixed",
        vec![Part::raw(
            &[
                "Content-Type: application/gzip; name=\"report.xml.gz\"",
                "Content-Disposition: attachment; filename=\"report.xml.gz\"",
            ],
            base64_lines(&gz),
        )],
    ));
    let r = aggregate_report(&email, None);
    assert_pkg_report(&r);
    assert_warning(
        &r.warnings,
        "payload was base64 text without a transfer encoding; decoded",
    );
}

#[test]
fn utf16_report_with_byte_order_mark_is_decoded() {
    let text = fixture_text("pkg-report.xml");
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let r = aggregate_report(&utf16, None);
    assert_pkg_report(&r);
    assert_warning(&r.warnings, "document was UTF-16; decoded");
}

#[test]
fn bare_files_take_the_file_name_as_a_hint_only() {
    // The name says example.org, the report says example.net: the report wins.
    let r = aggregate_report(
        &fixture("pkg-report.xml"),
        Some("/backfill/other.example!example.org!1!2.xml"),
    );
    assert_pkg_report(&r);
    assert_eq!(
        r.submitter.filename.as_deref(),
        Some("other.example!example.org!1!2.xml")
    );
}

// =======================================================================================
// DMARC failure reports (ARF and D36)
// =======================================================================================

#[test]
fn arf_auth_failure_report_fields_are_read() {
    let f = failure_report(&fixture("arf-auth-failure.eml"), None);
    assert_eq!(f.format, FailureFormat::Arf);
    assert_eq!(f.org_name.as_deref(), Some("receiver.example"));
    assert_eq!(f.report_id.as_deref(), Some("arf-0001@receiver.example"));
    assert_eq!(f.feedback_type.as_deref(), Some("auth-failure"));
    assert_eq!(f.user_agent.as_deref(), Some("ReceiverFeedback/2.1"));
    assert_eq!(f.original_mail_from.as_deref(), Some("<ceo@example.com>"));
    assert_eq!(
        f.original_rcpt_to.as_deref(),
        Some("<accounts@receiver.example>")
    );
    assert_eq!(opt_utc(&f.begin).as_deref(), Some("2024-05-30T09:58:11Z"));
    assert_eq!(f.begin, f.end);
    assert_eq!(
        f.source_ip.as_ref().map(ToString::to_string).as_deref(),
        Some("198.51.100.200")
    );
    assert_eq!(
        f.reported_domain.as_ref().map(|d| d.as_str()),
        Some("example.com")
    );
    assert_eq!(
        f.authentication_results,
        vec![
            "mx.receiver.example; dkim=fail (signature verification failed) header.d=example.com; \
             spf=fail smtp.mailfrom=example.com; dmarc=fail header.from=example.com"
                .to_owned()
        ]
    );
    assert_eq!(f.auth_failure.as_deref(), Some("dmarc"));
    assert_eq!(f.dkim_domain.as_deref(), Some("example.com"));
    assert_eq!(f.dkim_selector.as_deref(), Some("s2024"));
    assert_eq!(f.delivery_result.as_deref(), Some("reject"));
    assert_eq!(f.incidents, 3);
    assert_eq!(
        f.fields.get("version").map(Vec::as_slice),
        Some(&["1".to_owned()][..])
    );
    assert_clean(&f.warnings);
}

#[test]
fn plain_text_gateway_failure_notice_without_arf_part_is_a_failure_report() {
    // D36 (Exim / antispam cloud): no message/feedback-report part, and an
    // Auto-Submitted header that must not turn it into an "auto-reply".
    let f = failure_report(&fixture("d36-plain-text-failure.eml"), None);
    assert_eq!(f.format, FailureFormat::PlainText);
    assert_eq!(f.feedback_type.as_deref(), Some("auth-failure"));
    assert_eq!(
        f.reported_domain.as_ref().map(|d| d.as_str()),
        Some("example.com")
    );
    assert_eq!(
        f.source_ip.as_ref().map(ToString::to_string).as_deref(),
        Some("198.51.100.36")
    );
    assert_eq!(opt_utc(&f.begin).as_deref(), Some("2024-05-29T06:29:41Z"));
    assert_eq!(f.delivery_result.as_deref(), Some("Reject"));
    assert_eq!(f.org_name.as_deref(), Some("gate1.filtercloud.example"));
    assert_eq!(
        f.report_id.as_deref(),
        Some("E1sCfail-000036-AB@gate1.filtercloud.example")
    );
    assert_eq!(f.incidents, 1);
    assert_warning(
        &f.warnings,
        "plain-text failure notice without a machine-readable part",
    );
}

// =======================================================================================
// SMTP TLS reports (§6.2)
// =======================================================================================

#[test]
fn rfc8460_shaped_report_with_string_mx_host_is_read_field_by_field() {
    let r = tls_report(&fixture("t00-rfc8460-shape.json"), None);
    assert_eq!(r.org_name, "Company-X");
    assert_eq!(r.report_id.as_str(), "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    assert_eq!(utc(&r.begin), "2024-06-01T00:00:00Z");
    assert_eq!(utc(&r.end), "2024-06-01T23:59:59Z");
    assert_eq!(
        r.contact_info.as_deref(),
        Some("sts-reporting@company-x.example")
    );
    assert_eq!(r.policies.len(), 1);
    let p = &r.policies[0];
    assert_eq!(p.policy_type, TlsPolicyType::Sts);
    assert_eq!(p.sts_mode(), Some("testing"));
    assert_eq!(p.policy_strings.len(), 4);
    assert_eq!(
        p.policy_domain.as_ref().map(|d| d.as_str()),
        Some("company-y.example")
    );
    assert_eq!(p.mx_hosts, ["*.mail.company-y.example"]);
    assert_eq!((p.successful_sessions, p.failed_sessions), (5326, 303));
    assert_eq!((r.successful_sessions, r.failed_sessions), (5326, 303));
    let [expired, starttls, validation] = &p.failure_details[..] else {
        panic!("three failure details expected");
    };
    assert_eq!(expired.result_type, TlsResultType::CertificateExpired);
    assert_eq!(
        expired
            .sending_mta_ip
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("2001:db8:abcd:12::1")
    );
    assert_eq!(
        expired.receiving_mx_hostname.as_deref(),
        Some("mx1.mail.company-y.example")
    );
    assert_eq!(expired.receiving_ip, None);
    assert_eq!(expired.failed_sessions, 100);
    assert_eq!(starttls.result_type, TlsResultType::StarttlsNotSupported);
    assert_eq!(
        starttls
            .receiving_ip
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("203.0.113.56")
    );
    assert_eq!(starttls.failed_sessions, 200);
    assert!(
        starttls
            .additional_information
            .as_deref()
            .is_some_and(|u| u.ends_with("#StarttlsNotSupported"))
    );
    assert_eq!(validation.result_type, TlsResultType::ValidationFailure);
    assert_eq!(
        validation.failure_reason_code.as_deref(),
        Some("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED")
    );
    assert_eq!(validation.failed_sessions, 3);
    assert_clean(&r.warnings);
}

#[test]
fn google_mx_host_array_and_absent_failure_details_are_accepted() {
    // T1 (mx-host is an array), T3 (no failure-details key), T12 (date_domain report id).
    let r = tls_report(&fixture("t01-t03-google-mx-host-array.json"), None);
    assert_eq!(r.org_name, "Google Inc.");
    assert_eq!(r.report_id.as_str(), "2024-06-02T00:00:00Z_example.ca");
    let p = &r.policies[0];
    assert_eq!(p.mx_hosts, ["mx1.example.ca", "mx2.example.ca"]);
    assert_eq!(p.sts_mode(), Some("enforce"));
    assert!(p.failure_details.is_empty());
    assert_eq!((p.successful_sessions, p.failed_sessions), (412, 0));
    assert_clean(&r.warnings);
}

#[test]
fn mx_prefix_on_mx_host_entries_is_stripped_with_a_warning() {
    // T2
    let r = tls_report(&fixture("t02-mx-prefix.json"), None);
    let p = &r.policies[0];
    assert_eq!(p.mx_hosts, ["mail.example.org", "backup.example.org"]);
    assert_eq!(
        p.failure_details[0].receiving_mx_hostname.as_deref(),
        Some("backup.example.org")
    );
    assert_eq!(
        p.failure_details[0].result_type,
        TlsResultType::CertificateHostMismatch
    );
    assert_eq!((r.successful_sessions, r.failed_sessions), (3, 1));
    assert_warning(&r.warnings, "\"mx: \" prefix removed from mx-host");
}

#[test]
fn no_policy_found_without_mx_host_or_policy_string_is_accepted() {
    // T4 (Microsoft), T12 (`digits+domain` report id).
    let r = tls_report(&fixture("t04-no-policy-found-bare.json"), None);
    assert_eq!(r.report_id.as_str(), "133620480000000000+example.net");
    let p = &r.policies[0];
    assert_eq!(p.policy_type, TlsPolicyType::NoPolicyFound);
    assert!(p.policy_strings.is_empty());
    assert!(p.mx_hosts.is_empty());
    assert_eq!(p.sts_mode(), None);
    assert_eq!(
        p.policy_domain.as_ref().map(|d| d.as_str()),
        Some("example.net")
    );
    assert_eq!(p.successful_sessions, 58);
    assert_clean(&r.warnings);
}

#[test]
fn double_encoded_tlsa_policy_string_and_ip_less_failure_details_are_read() {
    // T5 (one policy-string element holding a JSON array), T6 (failure details with only
    // result-type and count), T12 (`digits+` id), T18 (DANE: the MX host is the domain).
    let r = tls_report(&fixture("t05-t06-microsoft-tlsa-double-encoded.json"), None);
    assert_eq!(r.report_id.as_str(), "133621344000000000+");
    let p = &r.policies[0];
    assert_eq!(p.policy_type, TlsPolicyType::Tlsa);
    assert_eq!(
        p.policy_strings,
        [
            "3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
            "3 1 1 8F3B6C2D1E0A99887766554433221100FFEEDDCCBBAA99887766554433221100"
        ]
    );
    assert_eq!(
        p.policy_domain.as_ref().map(|d| d.as_str()),
        Some("mx.example.se")
    );
    let kinds: Vec<(&TlsResultType, u64)> = p
        .failure_details
        .iter()
        .map(|d| (&d.result_type, d.failed_sessions))
        .collect();
    assert_eq!(
        kinds,
        [
            (&TlsResultType::TlsaInvalid, 3),
            (&TlsResultType::DnssecInvalid, 1)
        ]
    );
    for d in &p.failure_details {
        assert_eq!(d.sending_mta_ip, None);
        assert_eq!(d.receiving_mx_hostname, None);
        assert_eq!(d.receiving_ip, None);
    }
    assert_warning(
        &r.warnings,
        "policy-string held a JSON-encoded array; decoded",
    );
}

#[test]
fn null_contact_info_empty_arrays_and_next_day_midnight_end_are_accepted() {
    // T7, T8, T10
    let r = tls_report(&fixture("t07-t08-t10-egressif-null-contact.json"), None);
    assert_eq!(r.contact_info, None);
    assert_eq!(utc(&r.begin), "2024-06-06T00:00:00Z");
    assert_eq!(utc(&r.end), "2024-06-07T00:00:00Z");
    let p = &r.policies[0];
    assert!(p.policy_strings.is_empty());
    assert!(p.mx_hosts.is_empty());
    assert!(p.failure_details.is_empty());
    assert_eq!(p.successful_sessions, 9);
    assert_clean(&r.warnings);
}

#[test]
fn missing_policy_domain_is_taken_from_the_tls_report_domain_header() {
    // T9 (Postfix + tlsrpt-reporter, no-policy-found without policy-domain).
    let json = fixture("t09-postfix-no-policy-domain.json");
    let email = Email::new(
        "noreply-tlsrpt@sender.example",
        "Report Domain: example.com Submitter: mail.sender.example Report-ID: <2024-06-07T00:00:00Z_mail.sender.example_0042>",
    )
    .header("TLS-Report-Domain: example.com")
    .header("TLS-Report-Submitter: mail.sender.example")
    .body(Part::multipart(
        "report; report-type=tlsrpt",
        vec![
            Part::text("This is an aggregate TLS report from mail.sender.example"),
            Part::attachment("application/tlsrpt+gzip", "report.json.gz", &gzip(&json)),
        ],
    ));
    let r = tls_report(&email, None);
    assert_eq!(
        r.policies[0].policy_domain.as_ref().map(|d| d.as_str()),
        Some("example.com")
    );
    assert_eq!(
        r.submitter.tls_report_domain.as_deref(),
        Some("example.com")
    );
    assert_eq!(
        r.submitter.tls_report_submitter.as_deref(),
        Some("mail.sender.example")
    );
    assert_warning(
        &r.warnings,
        "policy 1: no policy-domain; taken from the TLS-Report-Domain header",
    );
}

#[test]
fn missing_policy_domain_is_taken_from_the_file_name_of_a_bare_file() {
    // T9 without an email: the RFC 8460 file name carries the policy domain.
    let r = tls_report(
        &fixture("t09-postfix-no-policy-domain.json"),
        Some("mail.sender.example!example.com!1717718400!1717804799!0042.json"),
    );
    assert_eq!(
        r.policies[0].policy_domain.as_ref().map(|d| d.as_str()),
        Some("example.com")
    );
    assert_warning(
        &r.warnings,
        "policy 1: no policy-domain; taken from the file name",
    );
    // Without any hint the domain stays unknown rather than invented.
    let bare = tls_report(&fixture("t09-postfix-no-policy-domain.json"), None);
    assert_eq!(bare.policies[0].policy_domain, None);
}

#[test]
fn failure_detail_counts_may_exceed_the_summary_failure_count() {
    // T11 (Mail.ru): result types overlap, so Σ details (2) > total failures (1).
    // T6: details without addresses. T10: end at next-day midnight. T12: UUID@domain id.
    let r = tls_report(&fixture("t11-t06-mailru-overlapping-counts.json"), None);
    assert_eq!(
        r.report_id.as_str(),
        "0b7e4f1c-92d5-4c3a-8e61-5a2f9d3b7c10@mail.example"
    );
    assert_eq!(utc(&r.end), "2024-06-09T00:00:00Z");
    let p = &r.policies[0];
    assert_eq!(p.mx_hosts, ["mx.example.ru"]);
    assert_eq!(p.failed_sessions, 1);
    assert_eq!(r.failed_sessions, 1, "the summary is authoritative");
    let detail_sum: u64 = p.failure_details.iter().map(|d| d.failed_sessions).sum();
    assert_eq!(detail_sum, 2, "details are kept as written");
    assert_eq!(
        p.failure_details[1].result_type,
        TlsResultType::CertificateNotTrusted
    );
    assert_clean(&r.warnings);
}

#[test]
fn report_id_oddities_are_kept_as_written() {
    // T12: Microsoft `digits+` and `digits+domain`, Google date_domain, UUID@domain, and
    // a bracketed id (brackets are not part of the id).
    let template = fixture_text("t12-report-id-template.json");
    for (raw, expected) in [
        ("133712345678901234+", "133712345678901234+"),
        (
            "133712345678901234+example.com",
            "133712345678901234+example.com",
        ),
        (
            "2024-06-09T00:00:00Z_example.com",
            "2024-06-09T00:00:00Z_example.com",
        ),
        (
            "0b7e4f1c-92d5-4c3a-8e61-5a2f9d3b7c10@mail.example",
            "0b7e4f1c-92d5-4c3a-8e61-5a2f9d3b7c10@mail.example",
        ),
        (
            "<2024.06.09T00.00.00Z+example.com@google.com>",
            "2024.06.09T00.00.00Z+example.com@google.com",
        ),
    ] {
        let json = template.replace("{{REPORT_ID}}", raw);
        let r = tls_report(json.as_bytes(), None);
        assert_eq!(r.report_id.as_str(), expected);
    }
}

#[test]
fn microsoft_subject_report_id_without_brackets_is_kept_verbatim() {
    // T13
    let subject = "Report Domain: example.net Submitter: microsoft.com Report-ID: 133620480000000000+example.net";
    let name = "microsoft.com!example.net!1717459200!1717545599!133620480000000000.json.gz";
    let email = Email::new("tlsrpt-noreply@microsoft.com", subject)
        .header("TLS-Report-Domain: example.net")
        .header("TLS-Report-Submitter: microsoft.com")
        .body(Part::multipart(
            "report; report-type=tlsrpt",
            vec![
                Part::text("This is an aggregate TLS report from microsoft.com"),
                Part::attachment(
                    "application/tlsrpt+gzip",
                    name,
                    &gzip(&fixture("t04-no-policy-found-bare.json")),
                ),
            ],
        ));
    let r = tls_report(&email, None);
    assert_eq!(r.report_id.as_str(), "133620480000000000+example.net");
    assert_eq!(r.submitter.subject.as_deref(), Some(subject));
    assert_eq!(r.submitter.filename.as_deref(), Some(name));
    assert_eq!(
        r.submitter.tls_report_submitter.as_deref(),
        Some("microsoft.com")
    );
    assert_eq!(
        r.submitter.from.as_deref(),
        Some("tlsrpt-noreply@microsoft.com")
    );
}

#[test]
fn tlsrpt_gzip_attachment_holding_plain_json_is_read() {
    // T14: declared application/tlsrpt+gzip, actually uncompressed JSON.
    let email = Email::new(
        "noreply-smtp-tls-reporting@google.com",
        "Report Domain: example.ca",
    )
    .header("TLS-Report-Domain: example.ca")
    .header("TLS-Report-Submitter: google.com")
    .body(Part::multipart(
        "report; report-type=tlsrpt",
        vec![
            Part::text("This is an aggregate TLS report from google.com"),
            Part::attachment(
                "application/tlsrpt+gzip",
                "google.com!example.ca!1717286400!1717372799!001.json.gz",
                &fixture("t01-t03-google-mx-host-array.json"),
            ),
        ],
    ));
    let r = tls_report(&email, None);
    assert_eq!(r.org_name, "Google Inc.");
    assert_eq!(r.policies[0].mx_hosts, ["mx1.example.ca", "mx2.example.ca"]);
    assert_eq!(r.successful_sessions, 412);
    assert_clean(&r.warnings);
}

#[test]
fn zipped_tls_report_is_unpacked() {
    // T15: application/tlsrpt+zip
    let archive = zip(&[(
        "tiny-mta.example!example.org!1717372800!1717459199.json",
        &fixture("t02-mx-prefix.json"),
    )]);
    let email = Email::new("tlsrpt@tiny-mta.example", "Report Domain: example.org")
        .header("TLS-Report-Domain: example.org")
        .with_attachment(
            "application/tlsrpt+zip",
            "tiny-mta.example!example.org!1717372800!1717459199.zip",
            &archive,
        );
    let r = tls_report(&email, None);
    assert_eq!(r.report_id.as_str(), "tiny-mta-20240603");
    assert_eq!(
        r.policies[0].mx_hosts,
        ["mail.example.org", "backup.example.org"]
    );
}

#[test]
fn sloppy_base64_in_a_tls_report_attachment_is_still_decoded() {
    // T16: a strict base64 decoder broke Google TLS reports; here: no padding, odd line
    // widths, LF-only line ends and trailing spaces on lines.
    // Trailing spaces in the JSON are harmless; add them until the gzip length is not a
    // multiple of 3, so that standard base64 would end in `=` padding.
    let mut json = fixture("t01-t03-google-mx-host-array.json");
    let mut gz = gzip(&json);
    while gz.len().is_multiple_of(3) {
        json.push(b' ');
        gz = gzip(&json);
    }
    let unpadded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, &gz);
    assert_ne!(unpadded.len() % 4, 0, "padding must be missing");
    let mut body = String::new();
    for (i, chunk) in unpadded.as_bytes().chunks(57).enumerate() {
        body.push_str(std::str::from_utf8(chunk).expect("ASCII"));
        body.push_str(if i % 2 == 0 { " \n" } else { "\n" });
    }
    let email = Email::new(
        "noreply-smtp-tls-reporting@google.com",
        "Report Domain: example.ca",
    )
    .body(Part::multipart(
        "report; report-type=tlsrpt",
        vec![Part::raw(
            &[
                "Content-Type: application/tlsrpt+gzip; name=\"google.json.gz\"",
                "Content-Disposition: attachment; filename=\"google.json.gz\"",
                "Content-Transfer-Encoding: base64",
            ],
            body,
        )],
    ));
    let r = tls_report(&email, None);
    assert_eq!(r.org_name, "Google Inc.");
    assert_eq!(r.successful_sessions, 412);
}

#[test]
fn empty_policies_array_is_a_report_with_no_sessions() {
    // T17
    let r = tls_report(&fixture("t17-empty-policies.json"), None);
    assert_eq!(r.org_name, "Quiet Sender");
    assert_eq!(r.report_id.as_str(), "quiet-20240610");
    assert!(r.policies.is_empty());
    assert_eq!((r.successful_sessions, r.failed_sessions), (0, 0));
}

#[test]
fn dane_report_uses_the_mx_host_as_policy_domain() {
    // T18 (Postfix DANE): tlsa policy whose policy-domain is the MX host, with a HELO.
    let r = tls_report(&fixture("t18-dane-mx-policy-domain.json"), None);
    let p = &r.policies[0];
    assert_eq!(p.policy_type, TlsPolicyType::Tlsa);
    assert_eq!(
        p.policy_domain.as_ref().map(|d| d.as_str()),
        Some("mx1.example.com")
    );
    assert_eq!(p.policy_strings.len(), 2);
    assert!(p.policy_strings[1].starts_with("2 1 1 "));
    assert!(p.mx_hosts.is_empty());
    let d = &p.failure_details[0];
    assert_eq!(d.result_type, TlsResultType::TlsaInvalid);
    assert_eq!(
        d.receiving_mx_helo.as_deref(),
        Some("mx1.example.com ESMTP")
    );
    assert_eq!(
        d.receiving_ip.as_ref().map(ToString::to_string).as_deref(),
        Some("198.51.100.180")
    );
    assert_eq!(
        d.sending_mta_ip
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("192.0.2.180")
    );
    assert_eq!((p.successful_sessions, p.failed_sessions), (77, 2));
    assert_clean(&r.warnings);
}

#[test]
fn unknown_result_types_are_kept_verbatim_and_known_ones_normalised() {
    // T20
    let r = tls_report(&fixture("t20-unknown-result-type.json"), None);
    let types: Vec<&TlsResultType> = r.policies[0]
        .failure_details
        .iter()
        .map(|d| &d.result_type)
        .collect();
    assert_eq!(
        types,
        [
            &TlsResultType::Other("certificate-name-mismatch".to_owned()),
            &TlsResultType::Other("tls-version-invalid".to_owned()),
            &TlsResultType::StarttlsNotSupported,
        ]
    );
    assert_warning(
        &r.warnings,
        "unknown result-type \"certificate-name-mismatch\" kept",
    );
    assert_warning(
        &r.warnings,
        "unknown result-type \"tls-version-invalid\" kept",
    );
    assert_warning(
        &r.warnings,
        "result-type normalised to \"starttls-not-supported\"",
    );
}

#[test]
fn unreadable_date_range_is_an_error_not_epoch_zero() {
    // T21: mail-auth falls back to 1970; a wrong date must not be stored silently.
    let err = parse_err(&fixture("t21-invalid-datetime.json"), None);
    match &err {
        ParseError::TlsInvalidField { field, detail } => {
            assert_eq!(*field, "start-datetime");
            assert!(detail.contains("yesterday at midnight"), "{detail}");
        }
        other => panic!("expected TlsInvalidField, got {other:?}"),
    }
    assert_eq!(err.code(), "tlsrpt-invalid-field");
}

#[test]
fn near_rfc3339_date_times_are_repaired_with_warnings() {
    // T21, lenient side: a date without a time, and a space-separated date-time without
    // a zone (UTC assumed).
    let r = tls_report(&fixture("t21-lenient-datetime.json"), None);
    assert_eq!(utc(&r.begin), "2024-06-14T00:00:00Z");
    assert_eq!(utc(&r.end), "2024-06-14T23:59:59Z");
    assert_eq!(r.policies[0].sts_mode(), Some("none"));
    assert_eq!(r.successful_sessions, 12, "count written as a string");
    assert_warning(
        &r.warnings,
        "start-datetime \"2024-06-14\" was a date without a time",
    );
    assert_warning(
        &r.warnings,
        "end-datetime \"2024-06-14 23:59:59\" had no time zone; UTC assumed",
    );
    assert_no_warning(&r.warnings, "taken as 0");
}
