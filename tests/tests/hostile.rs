//! Non-reports and hostile inputs: each must end in the precise [`ParseError`], or parse
//! without ever expanding, inflating or recursing past the [`Limits`].

use sealwatch_tests::{
    AggregateXml, Email, Limits, ParseError, Part, Truncation, aggregate_report, assert_warning,
    fixture, fixture_text, gzip, gzip_of_zeros, parse_err, parse_err_with, parse_ok_with,
    source_ips, zip, zip_stored,
};

const REPORT_NAME: &str = "packaging.example!example.net!1716508800!1716595199.xml.gz";

fn small_limits() -> Limits {
    Limits {
        max_decompressed_bytes: 4 << 20,
        ..Limits::default()
    }
}

// =======================================================================================
// Not reports
// =======================================================================================

#[test]
fn an_empty_file_is_rejected_as_empty() {
    assert_eq!(parse_err(b"", None), ParseError::Empty);
    assert_eq!(parse_err(b"", None).code(), "empty");
    assert_eq!(
        parse_err(b" \r\n\t\n ", Some("blank.xml")),
        ParseError::Empty
    );
    assert_eq!(parse_err(b"\xEF\xBB\xBF\n", None), ParseError::Empty);
}

#[test]
fn a_gzip_of_nothing_is_rejected_as_empty() {
    assert_eq!(parse_err(&gzip(b""), Some("x.xml.gz")), ParseError::Empty);
}

#[test]
fn a_bounce_is_recognised_as_a_delivery_status_notification() {
    let err = parse_err(&fixture("nr-bounce-dsn.eml"), None);
    assert_eq!(err, ParseError::Bounce);
    assert_eq!(err.code(), "bounce");
    assert!(err.is_not_a_report());
}

#[test]
fn an_out_of_office_auto_reply_is_recognised() {
    let err = parse_err(&fixture("nr-auto-reply.eml"), None);
    assert_eq!(err, ParseError::AutoReply);
    assert_eq!(err.code(), "auto-reply");
}

#[test]
fn spam_with_a_pdf_attachment_is_not_a_report_and_names_its_subject() {
    let err = parse_err(&fixture("nr-spam-pdf.eml"), None);
    match &err {
        ParseError::NotAReport(why) => assert!(
            why.contains("Your invoice #88231 is overdue"),
            "reason should quote the subject: {why}"
        ),
        other => panic!("expected NotAReport, got {other:?}"),
    }
    assert_eq!(err.code(), "not-a-report");
}

#[test]
fn an_html_only_newsletter_is_not_a_report() {
    match parse_err(&fixture("nr-html-only.eml"), None) {
        ParseError::NotAReport(why) => assert!(why.contains("Our summer sale starts now"), "{why}"),
        other => panic!("expected NotAReport, got {other:?}"),
    }
}

#[test]
fn random_binary_is_not_a_report() {
    let noise: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    match parse_err(&noise, Some("blob.bin")) {
        ParseError::NotAReport(why) => assert!(why.starts_with("unrecognised content"), "{why}"),
        other => panic!("expected NotAReport, got {other:?}"),
    }
}

#[test]
fn an_xml_document_that_is_not_a_dmarc_report_is_named_by_its_root() {
    let rss = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>\
                <item><title>Hello</title></item></channel></rss>";
    match parse_err(rss, None) {
        ParseError::NotDmarcXml(why) => assert!(why.contains("<rss>"), "{why}"),
        other => panic!("expected NotDmarcXml, got {other:?}"),
    }
}

#[test]
fn json_that_is_not_a_tls_report_is_not_a_report() {
    let err = parse_err(br#"{"hello": "world", "items": [1, 2, 3]}"#, None);
    assert!(matches!(err, ParseError::NotAReport(_)), "{err:?}");
}

#[test]
fn broken_json_is_invalid_json() {
    let err = parse_err(br#"{"organization-name": "x", "policies": [}"#, None);
    assert!(matches!(err, ParseError::InvalidJson(_)), "{err:?}");
    assert_eq!(err.code(), "invalid-json");
}

#[test]
fn json_cut_short_is_truncated_not_invalid() {
    let cut = br#"{"organization-name": "x", "policies": ["#;
    let err = parse_err(cut, None);
    assert_eq!(
        err,
        ParseError::Truncated {
            what: Truncation::Json,
            bytes: cut.len() as u64
        }
    );
    assert_eq!(err.code(), "truncated");
}

#[test]
fn a_tls_report_without_report_id_names_the_missing_field() {
    let json =
        fixture_text("t17-empty-policies.json").replace(r#""report-id": "quiet-20240610","#, "");
    assert_eq!(
        parse_err(json.as_bytes(), None),
        ParseError::TlsMissingField("report-id")
    );
}

#[test]
fn an_aggregate_report_without_report_id_names_the_missing_field() {
    let xml =
        fixture_text("pkg-report.xml").replace("<report_id>pkg-2024-05-24-001</report_id>", "");
    let err = parse_err(xml.as_bytes(), None);
    assert_eq!(err, ParseError::MissingField("report_metadata/report_id"));
    assert_eq!(err.code(), "dmarc-missing-field");
}

#[test]
fn an_aggregate_report_with_an_impossible_policy_domain_names_the_field() {
    let xml = fixture_text("pkg-report.xml").replace(
        "<domain>example.net</domain>",
        "<domain>exa mple..net</domain>",
    );
    match parse_err(xml.as_bytes(), None) {
        ParseError::InvalidField { field, detail } => {
            assert_eq!(field, "policy_published/domain");
            assert!(detail.contains("exa mple..net"), "{detail}");
        }
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

#[test]
fn corrupt_gzip_and_zip_are_corrupt_compression() {
    let mut gz = gzip(&fixture("pkg-report.xml"));
    for b in gz.iter_mut().skip(10) {
        *b = 0xAA;
    }
    match parse_err(&gz, None) {
        ParseError::CorruptCompression { format, .. } => assert_eq!(format, "gzip"),
        other => panic!("expected CorruptCompression, got {other:?}"),
    }
    let mut fake_zip = b"PK\x03\x04".to_vec();
    fake_zip.extend(std::iter::repeat_n(0xAA_u8, 200));
    match parse_err(&fake_zip, None) {
        ParseError::CorruptCompression { format, .. } => assert_eq!(format, "zip"),
        other => panic!("expected CorruptCompression, got {other:?}"),
    }
}

#[test]
fn a_zip_holding_only_a_readme_is_not_a_report() {
    let archive = zip(&[("README.txt", b"Nothing to see here.\n")]);
    let err = parse_err(&archive, Some("reports.zip"));
    assert!(matches!(err, ParseError::NotAReport(_)), "{err:?}");
}

// =======================================================================================
// Bombs and limits
// =======================================================================================

#[test]
fn the_bomb_builder_makes_a_valid_gzip_of_zeros() {
    // The helper below builds bombs without compressing a gigabyte; check that what it
    // builds is a well-formed gzip (CRC and size verified by the decoder) of zeros only.
    let bomb = gzip_of_zeros(8 << 20);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bomb[..]), &mut out)
        .expect("valid gzip");
    assert_eq!(out.len(), 8 << 20);
    assert!(out.iter().all(|&b| b == 0));
    assert!(
        bomb.len() < 64 << 10,
        "8 MiB of zeros is {} bytes",
        bomb.len()
    );
}

#[test]
fn a_gigabyte_gzip_bomb_stops_at_the_decompression_limit() {
    // 1 GiB of zeros compresses to about a megabyte; the default limit is 128 MiB.
    let bomb = gzip_of_zeros(1 << 30);
    assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
    let err = parse_err(&bomb, Some("bomb.xml.gz"));
    assert_eq!(
        err,
        ParseError::DecompressedTooLarge {
            limit: Limits::default().max_decompressed_bytes
        }
    );
    assert_eq!(err.code(), "decompression-limit");
}

#[test]
fn a_gzip_bomb_attached_to_an_email_fails_the_whole_email() {
    let bomb = gzip_of_zeros(64 << 20);
    let email = Email::new("attacker@attacker.example", "Report Domain: example.net")
        .with_attachment("application/gzip", REPORT_NAME, &bomb);
    assert_eq!(
        parse_err_with(&small_limits(), &email, None),
        ParseError::DecompressedTooLarge { limit: 4 << 20 }
    );
}

#[test]
fn the_decompression_budget_is_shared_by_all_parts_of_one_input() {
    // Each member alone fits the 4 MiB budget, together they do not.
    let three_mib = gzip_of_zeros(3 << 20);
    let archive = zip_stored(&[("a.xml.gz", &three_mib), ("b.xml.gz", &three_mib)]);
    assert_eq!(
        parse_err_with(&small_limits(), &archive, None),
        ParseError::DecompressedTooLarge { limit: 4 << 20 }
    );
}

#[test]
fn a_zip_bomb_member_is_refused_before_inflating() {
    let zeros = vec![0u8; 32 << 20];
    let archive = zip(&[("bomb.xml", &zeros)]);
    assert!(archive.len() < 1 << 20);
    assert_eq!(
        parse_err_with(&small_limits(), &archive, Some("bomb.zip")),
        ParseError::DecompressedTooLarge { limit: 4 << 20 }
    );
}

#[test]
fn a_zip_bomb_without_central_directory_is_still_bounded() {
    // Cutting the central directory forces the member-by-member reader, which cannot
    // trust any declared size.
    let zeros = vec![0u8; 32 << 20];
    let mut archive = zip(&[("bomb.xml", &zeros)]);
    let central = archive
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("central directory");
    archive.truncate(central);
    assert_eq!(
        parse_err_with(&small_limits(), &archive, Some("bomb.zip")),
        ParseError::DecompressedTooLarge { limit: 4 << 20 }
    );
}

#[test]
fn a_zip_with_too_many_members_is_refused() {
    let names: Vec<String> = (0..65).map(|i| format!("r{i}.xml")).collect();
    let xml = fixture("pkg-report.xml");
    let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &xml[..])).collect();
    let err = parse_err(&zip(&members), None);
    assert_eq!(err, ParseError::TooManyZipMembers { limit: 64 });
    assert_eq!(err.code(), "zip-too-many-members");
}

#[test]
fn nested_archives_stop_at_the_compression_layer_limit() {
    let xml = fixture("pkg-report.xml");
    // Four layers are allowed …
    let four = gzip(&gzip(&gzip(&gzip(&xml))));
    assert_eq!(aggregate_report(&four, None).message_count, 77);
    // … five are not, whether gzip or zip.
    let five_gz = gzip(&four);
    assert_eq!(
        parse_err(&five_gz, None),
        ParseError::CompressionTooDeep { limit: 4 }
    );
    let mut nested = zip(&[("r.xml", &xml)]);
    for i in 0..4 {
        nested = zip(&[(&format!("layer{i}.zip"), &nested)]);
    }
    let err = parse_err(&nested, None);
    assert_eq!(err, ParseError::CompressionTooDeep { limit: 4 });
    assert_eq!(err.code(), "compression-too-deep");
}

#[test]
fn an_oversized_input_is_refused_before_parsing() {
    let limits = Limits {
        max_input_bytes: 1024,
        ..Limits::default()
    };
    let xml = fixture("pkg-report.xml");
    assert!(xml.len() > 1024);
    assert_eq!(
        parse_err_with(&limits, &xml, None),
        ParseError::InputTooLarge {
            size: xml.len() as u64,
            limit: 1024
        }
    );
}

#[test]
fn too_many_records_are_refused_at_the_limit() {
    let limits = Limits {
        max_records: 10,
        ..Limits::default()
    };
    let ok = AggregateXml::with_records(10).to_xml();
    let parsed = parse_ok_with(&limits, ok.as_bytes(), None);
    assert_eq!(parsed.reports.len(), 1);
    let over = AggregateXml::with_records(11).to_xml();
    let err = parse_err_with(&limits, over.as_bytes(), None);
    assert_eq!(err, ParseError::TooManyRecords { limit: 10 });
    assert_eq!(err.code(), "too-many-records");
}

#[test]
fn many_empty_records_do_not_multiply_warnings_without_bound() {
    // 100 000 `<record/>` elements, each dropped: the warnings stay few and the parse
    // finishes (a warning per record, de-duplicated by linear search, would be quadratic).
    let mut xml = fixture_text("pkg-report.xml");
    let at = xml.find("</feedback>").expect("closing tag");
    xml.insert_str(at, &"<record/>".repeat(100_000));
    let r = aggregate_report(xml.as_bytes(), None);
    assert_eq!(r.records.len(), 1, "the one real record survives");
    assert_eq!(r.message_count, 77);
    assert!(r.warnings.len() <= 100, "{} warnings", r.warnings.len());
    assert_warning(&r.warnings, "record 2 dropped: no <source_ip>");
    assert_warning(&r.warnings, "more warnings");
}

// =======================================================================================
// MIME structure limits
// =======================================================================================

fn report_attachment() -> Part {
    Part::attachment(
        "application/gzip",
        REPORT_NAME,
        &gzip(&fixture("pkg-report.xml")),
    )
}

#[test]
fn ten_levels_of_nested_multipart_fail_as_mime_too_deep() {
    let mut body = report_attachment();
    for _ in 0..10 {
        body = Part::multipart("mixed", vec![Part::text("level"), body]);
    }
    let email = Email::new("attacker@attacker.example", "deep").body(body);
    let err = parse_err(&email, None);
    assert_eq!(err, ParseError::MimeTooDeep { limit: 8 });
    assert_eq!(err.code(), "mime-too-deep");
}

#[test]
fn nesting_within_the_limit_still_finds_the_report() {
    let mut body = report_attachment();
    for _ in 0..3 {
        body = Part::multipart("mixed", vec![Part::text("level"), body]);
    }
    let email = Email::new("dmarc@packaging.example", "shallow").body(body);
    assert_eq!(aggregate_report(&email, None).message_count, 77);
}

#[test]
fn ten_levels_of_forwarded_messages_fail_as_mime_too_deep() {
    let mut message = Email::new("dmarc@packaging.example", "level 0").body(Part::multipart(
        "mixed",
        vec![Part::text("report"), report_attachment()],
    ));
    for level in 1..=10 {
        message = Email::new("fwd@example.net", &format!("FW: level {level}"))
            .body(Part::multipart("mixed", vec![Part::message(&message)]));
    }
    assert_eq!(
        parse_err(&message, None),
        ParseError::MimeTooDeep { limit: 8 }
    );
}

#[test]
fn thousands_of_nested_multiparts_are_refused_without_overflowing_the_stack() {
    let mut body = Part::text("bottom");
    for _ in 0..5_000 {
        body = Part::multipart("mixed", vec![body]);
    }
    let email = Email::new("attacker@attacker.example", "very deep").body(body);
    assert_eq!(
        parse_err(&email, None),
        ParseError::MimeTooDeep { limit: 8 }
    );
}

#[test]
fn thousands_of_nested_forwarded_messages_are_refused_without_overflowing_the_stack() {
    let mut message = Email::new("dmarc@packaging.example", "bottom").body(report_attachment());
    for level in 1..=3_000 {
        message =
            Email::new("fwd@example.net", &format!("FW: {level}")).body(Part::message(&message));
    }
    assert_eq!(
        parse_err(&message, None),
        ParseError::MimeTooDeep { limit: 8 }
    );
}

#[test]
fn too_many_attachments_are_refused() {
    let xml = fixture("pkg-report.xml");
    let parts: Vec<Part> = (0..65)
        .map(|i| Part::attachment("text/xml", &format!("r{i}.xml"), &xml))
        .collect();
    let email =
        Email::new("attacker@attacker.example", "many").body(Part::multipart("mixed", parts));
    let err = parse_err(&email, None);
    assert_eq!(err, ParseError::TooManyAttachments { limit: 64 });
    assert_eq!(err.code(), "too-many-attachments");

    let limits = Limits {
        max_attachments: 3,
        ..Limits::default()
    };
    let parts: Vec<Part> = (0..4)
        .map(|i| Part::attachment("text/xml", &format!("r{i}.xml"), &xml))
        .collect();
    let email =
        Email::new("attacker@attacker.example", "four").body(Part::multipart("mixed", parts));
    assert_eq!(
        parse_err_with(&limits, &email, None),
        ParseError::TooManyAttachments { limit: 3 }
    );
}

// =======================================================================================
// XML attacks and damage
// =======================================================================================

#[test]
fn billion_laughs_entities_are_never_expanded() {
    let r = aggregate_report(&fixture("hostile-billion-laughs.xml"), None);
    // The entity reference stays as six literal characters; an expanding parser would
    // produce 3 × 10⁹ bytes here.
    assert_eq!(r.org_name, "&lol9;");
    assert_eq!(r.report_id.as_str(), "lol-&lol9;");
    assert_eq!(r.records.len(), 1);
    assert_eq!(source_ips(&r), ["192.0.2.67"]);
    assert_warning(
        &r.warnings,
        "DOCTYPE or declaration ignored (entities are never expanded)",
    );
    assert_warning(&r.warnings, "unknown XML entities kept as literal text");
}

#[test]
fn external_entities_are_never_resolved() {
    // XXE: SYSTEM entities pointing at a local file and a remote DTD.
    let r = aggregate_report(&fixture("hostile-xxe.xml"), None);
    assert_eq!(r.org_name, "&xxe;");
    assert_eq!(r.extra_contact_info.as_deref(), Some("&remote;"));
    assert_eq!(r.report_id.as_str(), "xxe-probe-1");
    assert_eq!(
        r.records[0].auth_results.spf[0].domain.as_deref(),
        Some("&xxe;")
    );
    assert_warning(
        &r.warnings,
        "DOCTYPE or declaration ignored (entities are never expanded)",
    );
}

#[test]
fn a_truncated_report_is_an_error_not_the_records_before_the_cut() {
    let input = fixture("hostile-truncated.xml");
    let err = parse_err(&input, None);
    assert_eq!(
        err,
        ParseError::Truncated {
            what: Truncation::Xml,
            bytes: input.len() as u64
        }
    );
    assert_eq!(err.code(), "truncated");
    assert_eq!(
        err.to_string(),
        format!(
            "the XML document ends early after {} of its bytes: the report is incomplete",
            input.len()
        )
    );
}

#[test]
fn a_truncated_gzip_is_an_error_not_the_records_before_the_cut() {
    let full = gzip(&fixture("hostile-truncated.xml"));
    // Drop the 8-byte trailer and the end of the deflate stream.
    let cut = &full[..full.len() - 12];
    let err = parse_err(cut, Some("cut.xml.gz"));
    assert_eq!(
        err,
        ParseError::Truncated {
            what: Truncation::Gzip,
            bytes: cut.len() as u64
        }
    );
    // The whole report, cut only at the end of its gzip trailer, is just as incomplete.
    let whole = gzip(&fixture("pkg-report.xml"));
    let err = parse_err(&whole[..whole.len() - 1], Some("report.xml.gz"));
    assert_eq!(err.code(), "truncated", "{err}");
}

#[test]
fn a_damaged_record_in_the_middle_does_not_lose_the_others() {
    let r = aggregate_report(&fixture("hostile-damaged-record.xml"), None);
    assert_eq!(r.org_name, "Damaged Record Mail");
    assert_eq!(r.report_id.as_str(), "damaged-20240601");
    assert_eq!(source_ips(&r), ["192.0.2.1", "192.0.2.4"]);
    assert_eq!(r.message_count, 10 + 40);
    assert_warning(&r.warnings, "record 2 dropped: invalid <count> \"twenty\"");
    assert_warning(&r.warnings, "record 3 dropped: no <source_ip>");
}

#[test]
fn a_zip_with_a_readme_and_a_broken_report_reports_the_broken_report() {
    // The readme is set aside; the real failure is what the caller must see.
    let broken =
        fixture_text("pkg-report.xml").replace("<report_id>pkg-2024-05-24-001</report_id>", "");
    let archive = zip(&[
        ("README.txt", b"Your report is attached.\n"),
        ("report.xml", broken.as_bytes()),
    ]);
    assert_eq!(
        parse_err(&archive, None),
        ParseError::MissingField("report_metadata/report_id")
    );
}

#[test]
fn a_zip_holding_the_unused_placeholder_is_a_placeholder() {
    let archive = zip(&[("report.xml", b"unused")]);
    assert_eq!(
        parse_err(&archive, None),
        ParseError::Placeholder("unused".to_owned())
    );
}
