//! Reports cut short: a container or document that ends before its end is
//! `ParseError::Truncated`, never a report of what came before the cut; a complete one
//! followed by stray bytes still parses. Parts declared as gzip that hold raw deflate or
//! zlib are read. Every input is built here in code.

use std::io::Write;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use sealwatch_model::{AggregateReport, Report, TlsReport};
use sealwatch_parser::{ParseError, Parsed, Parser, Truncation};

const RECORDS: usize = 50;

/// An aggregate report of [`RECORDS`] records, one message each.
fn report_xml() -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata>\
         <org_name>cut.example</org_name><email>dmarc@cut.example</email>\
         <report_id>cut-1</report_id><date_range><begin>1700000000</begin>\
         <end>1700086399</end></date_range></report_metadata>\n<policy_published>\
         <domain>example.com</domain><p>none</p></policy_published>\n",
    );
    for i in 0..RECORDS {
        xml.push_str(&format!(
            "<record><row><source_ip>192.0.2.{i}</source_ip><count>1</count>\
             <policy_evaluated><disposition>none</disposition><dkim>pass</dkim>\
             <spf>pass</spf></policy_evaluated></row><identifiers>\
             <header_from>example.com</header_from></identifiers><auth_results><spf>\
             <domain>example.com</domain><result>pass</result></spf></auth_results></record>\n"
        ));
    }
    xml.push_str("</feedback>\n");
    xml
}

fn tls_json() -> String {
    r#"{"organization-name": "Cut Inc.", "report-id": "tls-cut-1",
        "date-range": {"start-datetime": "2024-01-01T00:00:00Z",
                       "end-datetime": "2024-01-01T23:59:59Z"},
        "contact-info": "tlsrpt@cut.example",
        "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com",
                                 "mx-host": ["mx.example.com"]},
                      "summary": {"total-successful-session-count": 10,
                                  "total-failure-session-count": 0}}]}"#
        .to_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("zlib to memory");
    enc.finish().expect("zlib to memory")
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("deflate to memory");
    enc.finish().expect("deflate to memory")
}

fn zip(name: &str, data: &[u8], method: zip::CompressionMethod) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(false);
    writer.start_file(name, options).expect("zip member");
    writer.write_all(data).expect("zip member data");
    writer.finish().expect("zip archive").into_inner()
}

/// A zlib stream with a 16 KiB window: a valid header the content sniffer does not know.
fn zlib_small_window(data: &[u8]) -> Vec<u8> {
    let mut z = zlib(data);
    z[0] = 0x68;
    z[1] = 0x05; // (0x68 * 256 + 0x05) is a multiple of 31
    z
}

/// A report email with one base64 attachment.
fn email(content_type: &str, filename: &str, attachment: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    let mut body = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        body.push_str("\r\n");
    }
    format!(
        "From: noreply-dmarc@cut.example\r\nTo: dmarc@example.com\r\n\
         Subject: Report Domain: example.com Submitter: cut.example Report-ID: cut-1\r\n\
         Message-ID: <cut-1@cut.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain\r\n\r\nThis is a report.\r\n--b1\r\n\
         Content-Type: {content_type}; name=\"{filename}\"\r\n\
         Content-Disposition: attachment; filename=\"{filename}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}--b1--\r\n"
    )
    .into_bytes()
}

fn parse_err(input: &[u8], name: Option<&str>) -> ParseError {
    match Parser::default().parse(input, name) {
        Ok(parsed) => panic!(
            "expected an error, got {} reports: {:?}",
            parsed.reports.len(),
            parsed
                .reports
                .iter()
                .map(|r| r.warnings().to_vec())
                .collect::<Vec<_>>()
        ),
        Err(e) => e,
    }
}

fn parse_ok(input: &[u8], name: Option<&str>) -> Parsed {
    Parser::default()
        .parse(input, name)
        .unwrap_or_else(|e| panic!("expected a report, got {e} [{}]", e.code()))
}

fn aggregate(input: &[u8], name: Option<&str>) -> AggregateReport {
    let parsed = parse_ok(input, name);
    assert!(parsed.failures.is_empty(), "{:?}", parsed.failures);
    match parsed.reports.into_iter().next() {
        Some(Report::DmarcAggregate(a)) => a,
        other => panic!("not an aggregate report: {other:?}"),
    }
}

fn tls(input: &[u8], name: Option<&str>) -> TlsReport {
    match parse_ok(input, name).reports.into_iter().next() {
        Some(Report::TlsRpt(t)) => t,
        other => panic!("not a TLS report: {other:?}"),
    }
}

fn assert_truncated(err: &ParseError, what: Truncation) {
    match err {
        ParseError::Truncated { what: got, .. } => assert_eq!(*got, what, "{err}"),
        other => panic!("expected a truncated {what}, got {other:?}"),
    }
    assert_eq!(err.code(), "truncated");
}

#[test]
fn a_gzip_stream_cut_short_is_truncated_not_a_partial_report() {
    let full = gzip(report_xml().as_bytes());
    let cut = &full[..full.len() / 3];
    let err = parse_err(
        cut,
        Some("cut.example!example.com!1700000000!1700086399.xml.gz"),
    );
    assert_eq!(
        err,
        ParseError::Truncated {
            what: Truncation::Gzip,
            bytes: cut.len() as u64
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the gzip stream ends early after {} of its bytes: the report is incomplete",
            cut.len()
        )
    );
    assert_eq!(err.code(), "truncated");
}

#[test]
fn a_gzip_stream_without_its_trailer_is_truncated() {
    let full = gzip(report_xml().as_bytes());
    // Only the CRC and size are missing: every record is there, but nothing proves it.
    let err = parse_err(&full[..full.len() - 8], None);
    assert_truncated(&err, Truncation::Gzip);
}

#[test]
fn a_gzip_attachment_cut_short_in_an_email_is_truncated() {
    let full = gzip(report_xml().as_bytes());
    let input = email("application/gzip", "report.xml.gz", &full[..full.len() / 2]);
    assert_truncated(&parse_err(&input, None), Truncation::Gzip);
}

#[test]
fn a_complete_gzip_member_followed_by_stray_bytes_still_parses() {
    let mut gz = gzip(report_xml().as_bytes());
    gz.extend_from_slice(b"\r\n");
    let r = aggregate(&gz, Some("report.xml.gz"));
    assert_eq!(r.records.len(), RECORDS);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("used the data before the damage")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_second_gzip_member_cut_short_is_truncated() {
    let xml = report_xml();
    let (head, tail) = xml.split_at(xml.len() / 2);
    let mut gz = gzip(head.as_bytes());
    let second = gzip(tail.as_bytes());
    gz.extend_from_slice(&second[..second.len() / 2]);
    assert_truncated(&parse_err(&gz, None), Truncation::Gzip);
    // Both members whole: one report.
    let mut whole = gzip(head.as_bytes());
    whole.extend_from_slice(&second);
    assert_eq!(aggregate(&whole, None).records.len(), RECORDS);
}

#[test]
fn garbage_behind_a_gzip_header_is_corrupt_not_truncated() {
    let err = parse_err(b"\x1f\x8b\x08\x00garbage", Some("r.xml.gz"));
    assert_eq!(err.code(), "corrupt-compression", "{err}");
}

#[test]
fn a_deflated_zip_member_cut_short_is_truncated() {
    let archive = zip(
        "report.xml",
        report_xml().as_bytes(),
        zip::CompressionMethod::Deflated,
    );
    // The cut takes the central directory and half of the member's data.
    let err = parse_err(&archive[..archive.len() / 2], Some("report.zip"));
    assert_truncated(&err, Truncation::ZipMember);
    assert!(
        err.to_string()
            .starts_with("the zip member ends early after"),
        "{err}"
    );
}

#[test]
fn a_stored_zip_member_cut_short_is_truncated() {
    let archive = zip(
        "report.xml",
        report_xml().as_bytes(),
        zip::CompressionMethod::Stored,
    );
    let err = parse_err(&archive[..archive.len() / 2], Some("report.zip"));
    assert_truncated(&err, Truncation::ZipMember);
}

#[test]
fn a_zlib_stream_cut_short_is_truncated() {
    let full = zlib(report_xml().as_bytes());
    let err = parse_err(&full[..full.len() / 2], None);
    assert_truncated(&err, Truncation::Zlib);
}

#[test]
fn an_xml_document_cut_mid_record_is_truncated() {
    let xml = report_xml();
    let at = xml.match_indices("<record>").nth(7).expect("8 records").0 + 40;
    let cut = &xml[..at];
    assert!(!cut.contains("</feedback>"));
    let err = parse_err(cut.as_bytes(), None);
    assert_eq!(
        err,
        ParseError::Truncated {
            what: Truncation::Xml,
            bytes: at as u64
        }
    );
    assert_eq!(
        err.to_string(),
        format!("the XML document ends early after {at} of its bytes: the report is incomplete")
    );
}

#[test]
fn an_xml_document_cut_between_records_is_truncated() {
    let xml = report_xml();
    // Every record before the cut is whole; only the closing `</feedback>` is missing.
    let at = xml.match_indices("</record>").nth(6).expect("7 records").0 + "</record>".len();
    assert_truncated(&parse_err(&xml.as_bytes()[..at], None), Truncation::Xml);
    let at = xml.rfind("</feedback>").expect("closed");
    assert_truncated(
        &parse_err(&xml.as_bytes()[..at + "</feedback".len()], None),
        Truncation::Xml,
    );
}

#[test]
fn an_xml_document_with_trailing_garbage_still_parses() {
    let mut xml = report_xml();
    xml.push_str("\0\0\0<!-- stray bytes after the report <feed");
    let r = aggregate(xml.as_bytes(), None);
    assert_eq!(r.records.len(), RECORDS);
}

#[test]
fn a_tls_report_cut_short_is_truncated() {
    let json = tls_json();
    for at in [1, json.len() / 3, json.len() - 1] {
        let err = parse_err(&json.as_bytes()[..at], None);
        assert_eq!(
            err,
            ParseError::Truncated {
                what: Truncation::Json,
                bytes: at as u64
            },
            "cut at {at}"
        );
    }
    let gz = gzip(json.as_bytes());
    assert_truncated(
        &parse_err(&gz[..gz.len() - 8], Some("r.json.gz")),
        Truncation::Gzip,
    );
    // Data after a complete document is not a cut.
    let t = tls(format!("{json}\n\0\0").as_bytes(), None);
    assert_eq!(t.successful_sessions, 10);
}

#[test]
fn a_gz_named_file_of_raw_deflate_is_read() {
    let body = raw_deflate(report_xml().as_bytes());
    let r = aggregate(&body, Some("report.xml.gz"));
    assert_eq!(r.records.len(), RECORDS);
    assert!(
        r.warnings
            .iter()
            .any(|w| w == "declared as gzip but has no gzip header; read as raw deflate"),
        "{:?}",
        r.warnings
    );
    // Without the declaration the same bytes are not a report.
    assert_eq!(parse_err(&body, None).code(), "not-a-report");
}

#[test]
fn a_gzip_attachment_of_raw_deflate_or_zlib_is_read() {
    for (content_type, body, reading) in [
        (
            "application/gzip",
            raw_deflate(report_xml().as_bytes()),
            "raw deflate",
        ),
        (
            "application/x-gzip",
            zlib_small_window(report_xml().as_bytes()),
            "zlib",
        ),
    ] {
        let input = email(content_type, "report.xml", &body);
        let r = aggregate(&input, None);
        assert_eq!(r.records.len(), RECORDS, "{content_type}");
        let expected = format!("declared as gzip but has no gzip header; read as {reading}");
        assert!(
            r.warnings.contains(&expected),
            "{content_type}: {:?}",
            r.warnings
        );
    }
    let t = tls(
        &email(
            "application/tlsrpt+gzip",
            "report.json.gz",
            &raw_deflate(tls_json().as_bytes()),
        ),
        None,
    );
    assert_eq!(t.successful_sessions, 10);
}

#[test]
fn a_gz_named_file_of_raw_deflate_cut_short_is_truncated() {
    let body = raw_deflate(report_xml().as_bytes());
    let err = parse_err(&body[..body.len() / 2], Some("report.xml.gz"));
    assert_truncated(&err, Truncation::Deflate);
}

#[test]
fn a_gz_named_file_that_is_neither_keeps_its_own_error() {
    assert_eq!(
        parse_err(b"\x00\x01\x02 not compressed at all", Some("report.xml.gz")).code(),
        "not-a-report"
    );
    // Plain XML under a `.gz` name is read as XML.
    assert_eq!(
        aggregate(report_xml().as_bytes(), Some("report.xml.gz"))
            .records
            .len(),
        RECORDS
    );
}

/// Every cut point of a small report, plain and gzip'd: a cut never yields a report; from
/// the first report element on, a cut XML document is `Truncated`, and a cut gzip stream is
/// `Truncated` once it has produced the start of the document.
#[test]
fn no_cut_of_a_report_is_ever_a_report() {
    let xml = report_xml()
        .split("<record>")
        .take(4)
        .collect::<Vec<_>>()
        .join("<record>")
        + "</feedback>\n";
    let whole = aggregate(xml.as_bytes(), None);
    assert_eq!(whole.records.len(), 3);
    let first_element =
        xml.find("<report_metadata>").expect("metadata") + "<report_metadata>".len();
    let closed = xml.rfind("</feedback>").expect("closed") + "</feedback>".len();
    for cut in 0..xml.len() {
        let outcome = Parser::default().parse(&xml.as_bytes()[..cut], None);
        match outcome {
            Ok(parsed) => {
                assert!(cut >= closed, "cut at {cut} parsed");
                assert_eq!(parsed.reports.len(), 1);
            }
            Err(e) if cut >= first_element && cut < closed => assert_truncated(&e, Truncation::Xml),
            Err(e) => assert!(cut < first_element, "cut at {cut}: {e}"),
        }
    }
    let gz = gzip(xml.as_bytes());
    let mut truncated = 0;
    for cut in 0..gz.len() {
        match Parser::default().parse(&gz[..cut], None) {
            Ok(_) => panic!("gzip cut at {cut} of {} parsed", gz.len()),
            Err(ParseError::Truncated {
                what: Truncation::Gzip,
                bytes,
            }) => {
                assert_eq!(bytes, cut as u64);
                truncated += 1;
            }
            // Too short to be gzip, or too short to have produced anything.
            Err(e) => assert!(
                cut < 2 || matches!(e, ParseError::CorruptCompression { .. }),
                "gzip cut at {cut}: {e:?}"
            ),
        }
    }
    assert!(truncated > gz.len() / 2, "{truncated} of {}", gz.len());
}
