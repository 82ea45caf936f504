//! Conformance over the shared corpus of real report files (`../shared/corpus`, see its
//! PROVENANCE.md): every file is classified below with values read out of the file itself,
//! and the parser must agree. A new corpus file that is not in the table fails the test.
//!
//! The corpus lives outside the repository. Set `SEALWATCH_CORPUS` to point elsewhere; CI
//! sets `SEALWATCH_REQUIRE_CORPUS=1` so a missing corpus fails instead of passing vacuously.

use std::path::{Path, PathBuf};

use sealwatch_model::Report;
use sealwatch_parser::Parser;

#[derive(Debug)]
enum Expect {
    Aggregate {
        org: &'static str,
        id: &'static str,
        begin: i64,
        end: i64,
        domain: &'static str,
        records: usize,
        messages: u64,
    },
    Tls {
        org: &'static str,
        id: &'static str,
        begin: &'static str,
        end: &'static str,
        policies: usize,
        ok: u64,
        failed: u64,
    },
    Failure {
        feedback_type: &'static str,
        domain: Option<&'static str>,
        ip: Option<&'static str>,
    },
    Error(&'static str),
}

use Expect::{Aggregate, Error, Failure, Tls};

/// Values read from the corpus files (XML elements, JSON keys, feedback-report fields).
/// Where the parser repairs a file the expectation says what the repair must give.
fn table() -> Vec<(&'static str, Expect)> {
    vec![
        ("PROVENANCE.md", Error("not-a-report")),
        ("parsedmarc/empty.xml", Error("empty")),
        // Empty <org_name>: the reporter is named after the <email> domain.
        (
            "parsedmarc/aggregate/!example.com!1538204542!1538463818.xml",
            Aggregate {
                org: "accurateplastics.com",
                id: "example.com:1538463741",
                begin: 1538413632,
                end: 1538413632,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/!large-example.com!1711897200!1711983600.xml",
            Aggregate {
                org: "accurateplastics.com",
                id: "example.com:1711897200",
                begin: 1711897200,
                end: 1711983600,
                domain: "example.com",
                records: 2286,
                messages: 2286,
            },
        ),
        (
            "parsedmarc/aggregate/Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml",
            Aggregate {
                org: "google.com",
                id: "949348866075514174",
                begin: 1549929600,
                end: 1550015999,
                domain: "borschow.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/addisonfoods.com!example.com!1536105600!1536191999.xml",
            Aggregate {
                org: "addisonfoods.com",
                id: "3ceb5548498640beaeb47327e202b0b9",
                begin: 1536105600,
                end: 1536191999,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/empty_reason.xml",
            Aggregate {
                org: "example.org",
                id: "20240125141224705995",
                begin: 1706159544,
                end: 1706185733,
                domain: "example.com",
                records: 1,
                messages: 2,
            },
        ),
        (
            "parsedmarc/aggregate/estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip",
            Aggregate {
                org: "XYZ Corporation",
                id: "2940",
                begin: 1536853302,
                end: 1536939702,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/example.net!example.com!1529366400!1529452799.xml",
            Aggregate {
                org: "example.net",
                id: "b043f0e264cf4ea995e93765242f6dfb",
                begin: 1529366400,
                end: 1529452799,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz",
            Aggregate {
                org: "FastMail Pty Ltd",
                id: "102675056",
                begin: 1516060800,
                end: 1516147199,
                domain: "indemed.com",
                records: 1,
                messages: 1,
            },
        ),
        // A stray unclosed <xs:schema> before <feedback>.
        (
            "parsedmarc/aggregate/ikea.com!example.de!1538690400!1538776800.xml",
            Aggregate {
                org: "ikea.com",
                id: "aggr_report_2018_10_05_5bc7e9b4f3e8a",
                begin: 1538690400,
                end: 1538776800,
                domain: "example.de",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/invalid_utf_8.xml",
            Aggregate {
                org: "accurateplastics.com",
                id: "example.com:1538463741",
                begin: 1538413632,
                end: 1538413632,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        // Unescaped '<' inside <email> and <header_from>.
        (
            "parsedmarc/aggregate/invalid_xml.xml",
            Aggregate {
                org: "veeam.com",
                id: "sonexushealth.com:1530233361",
                begin: 1530133200,
                end: 1530219600,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/mimecast-weird-gzip.eml",
            Aggregate {
                org: "Mimecast",
                id: "157a5fe30ec76f4bc0d8bccfc96c118a167a1280fee7c7465af5115e73082e5e",
                begin: 1693353600,
                end: 1693439999,
                domain: "ab.id.au",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/old_draft_from_wiki.xml",
            Aggregate {
                org: "acme.com",
                id: "9391651994964116463",
                begin: 1335571200,
                end: 1335657599,
                domain: "example.com",
                records: 1,
                messages: 2,
            },
        ),
        (
            "parsedmarc/aggregate/protection.outlook.com!example.com!1711756800!1711843200.xml",
            Aggregate {
                org: "Outlook.com",
                id: "cfeafefe4129445e8c81018bd9177197",
                begin: 1711756800,
                end: 1711843200,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml",
            Aggregate {
                org: "example.net",
                id: "dmarcbis-test-report-001",
                begin: 1700000000,
                end: 1700086399,
                domain: "example.com",
                records: 2,
                messages: 7,
            },
        ),
        (
            "parsedmarc/aggregate/rfc9990-sample.xml",
            Aggregate {
                org: "Sample Reporter",
                id: "3v98abbp8ya9n3va8yr8oa3ya",
                begin: 302832000,
                end: 302918399,
                domain: "example.com",
                records: 1,
                messages: 123,
            },
        ),
        (
            "parsedmarc/aggregate/twilight.eml",
            Aggregate {
                org: "google.com",
                id: "1627703331531660819",
                begin: 1549756800,
                end: 1549843199,
                domain: "twlnet.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate/usssa.com!example.com!1538784000!1538870399.xml",
            Aggregate {
                org: "usssa.com",
                id: "8953b4d4a4ee4218b6ac0e2cb2667ee1",
                begin: 1538784000,
                end: 1538870399,
                domain: "example.com",
                records: 2,
                messages: 2,
            },
        ),
        (
            "parsedmarc/aggregate/veeam.com!example.com!1530133200!1530219600.xml",
            Aggregate {
                org: "veeam.com",
                id: "sonexushealth.com:1530233361",
                begin: 1530133200,
                end: 1530219600,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/aggregate_invalid/report_with_upper_cased_pass.xml",
            Aggregate {
                org: "example.com",
                id: "aggr_report_example.com_20191202_1638",
                begin: 1574955300,
                end: 1575304683,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "parsedmarc/extract_report/changed-input.xml",
            Aggregate {
                org: "fred.com",
                id: "11038226378739404135",
                begin: 1718236800,
                end: 1718323199,
                domain: "example.com",
                records: 20,
                messages: 3047,
            },
        ),
        (
            "parsedmarc/extract_report/nice-input.xml",
            Aggregate {
                org: "google.com",
                id: "11038226378739404135",
                begin: 1718236800,
                end: 1718323199,
                domain: "example.com",
                records: 20,
                messages: 3047,
            },
        ),
        (
            "parsedmarc/extract_report/nice-input.xml.gz",
            Aggregate {
                org: "google.com",
                id: "11038226378739404135",
                begin: 1718236800,
                end: 1718323199,
                domain: "example.com",
                records: 20,
                messages: 3047,
            },
        ),
        (
            "parsedmarc/extract_report/nice-input.xml.zip",
            Aggregate {
                org: "google.com",
                id: "11038226378739404135",
                begin: 1718236800,
                end: 1718323199,
                domain: "example.com",
                records: 20,
                messages: 3047,
            },
        ),
        (
            "parsedmarc/failure/DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("domain.de"),
                ip: Some("10.10.10.10"),
            },
        ),
        // The feedback-report part is base64: Source-IP 167.89.69.24, Reported-Domain cardinal.com.
        (
            "parsedmarc/failure/[Netease DMARC Failure Report] Rent Reminder.eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("cardinal.com"),
                ip: Some("167.89.69.24"),
            },
        ),
        (
            "parsedmarc/failure/dmarc_ruf_report_linkedin.crlf.eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("example.com"),
                ip: Some("10.10.10.10"),
            },
        ),
        (
            "parsedmarc/failure/dmarc_ruf_report_linkedin.eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("example.com"),
                ip: Some("10.10.10.10"),
            },
        ),
        // No machine-readable part: "Sender Domain: example.com", "Sender IP Address: 203.0.113.68".
        (
            "parsedmarc/failure/exim_plain_text_only_no_arf_part.eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("example.com"),
                ip: Some("203.0.113.68"),
            },
        ),
        (
            "parsedmarc/smtp_tls/google.com_smtp_tls_report.eml",
            Tls {
                org: "Google Inc.",
                id: "2024-09-03T00:00:00Z_cardinalhealth.ca",
                begin: "2024-09-03T00:00:00Z",
                end: "2024-09-03T23:59:59Z",
                policies: 1,
                ok: 48,
                failed: 0,
            },
        ),
        (
            "parsedmarc/smtp_tls/mail.ru.json",
            Tls {
                org: "Mail.ru",
                id: "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru",
                begin: "2024-02-22T00:00:00Z",
                end: "2024-02-23T00:00:00Z",
                policies: 1,
                ok: 0,
                failed: 1,
            },
        ),
        (
            "parsedmarc/smtp_tls/rfc8460.json",
            Tls {
                org: "Company-X",
                id: "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
                begin: "2016-04-01T00:00:00Z",
                end: "2016-04-01T23:59:59Z",
                policies: 1,
                ok: 5326,
                failed: 303,
            },
        ),
        (
            "parsedmarc/smtp_tls/smtp_tls.json",
            Tls {
                org: "Example Inc.",
                id: "2024-01-09T00:00:00Z_example.com",
                begin: "2024-01-09T00:00:00Z",
                end: "2024-01-09T23:59:59Z",
                policies: 1,
                ok: 0,
                failed: 3,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/001.eml",
            Failure {
                feedback_type: "abuse",
                domain: None,
                ip: None,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/002.eml",
            Failure {
                feedback_type: "abuse",
                domain: Some("example.net"),
                ip: Some("192.0.2.1"),
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/003.eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("example.net"),
                ip: Some("192.0.2.1"),
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/004.eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("interpublication.org"),
                ip: Some("148.163.85.135"),
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/005.eml",
            Failure {
                feedback_type: "auth-failure",
                domain: Some("a.sender.example"),
                ip: Some("192.0.2.1"),
            },
        ),
        // mail-auth's expected-output JSON files are not reports.
        (
            "stalwartlabs_mail-auth/resources/arf/001.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/002.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/003.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/004.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/arf/005.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/001.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/002.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/003.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/004.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/005.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/100.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/101.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/102.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/103.json",
            Error("not-a-report"),
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/104.json",
            Error("not-a-report"),
        ),
        // Unknown elements inside <date_range>, <policy_published> and record extensions.
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/001.xml",
            Aggregate {
                org: "Sample Reporter",
                id: "3v98abbp8ya9n3va8yr8oa3ya",
                begin: 161212415,
                end: 161221511,
                domain: "example.com",
                records: 1,
                messages: 123,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/002.xml",
            Aggregate {
                org: "google.com",
                id: "2122885654478337555",
                begin: 1661558400,
                end: 1661644799,
                domain: "example.org",
                records: 1,
                messages: 2,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/003.xml",
            Aggregate {
                org: "Fastmail Pty Ltd",
                id: "758848224",
                begin: 1667347200,
                end: 1667433599,
                domain: "stalw.art",
                records: 4,
                messages: 9,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/004.xml",
            Aggregate {
                org: "Sample Reporter",
                id: "3v98abbp8ya9n3va8yr8oa3ya",
                begin: 302832000,
                end: 302918399,
                domain: "example.com",
                records: 1,
                messages: 123,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/005.xml",
            Aggregate {
                org: "Legacy Reporter",
                id: "legacy-1",
                begin: 100,
                end: 200,
                domain: "example.com",
                records: 1,
                messages: 1,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/100.eml",
            Aggregate {
                org: "google.com",
                id: "5264580628977113351",
                begin: 1669507200,
                end: 1669593599,
                domain: "stalw.art",
                records: 1,
                messages: 1,
            },
        ),
        // <org_name>&quot;backschues.NET</org_name>: the entity is decoded.
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/101.eml",
            Aggregate {
                org: "\"backschues.NET",
                id: "stalw.art.1667948400.1668034800",
                begin: 1667948400,
                end: 1668034800,
                domain: "stalw.art",
                records: 1,
                messages: 1,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/102.eml",
            Aggregate {
                org: "Mail.Ru",
                id: "28551467700969547611667865600",
                begin: 1667865600,
                end: 1667952000,
                domain: "stalw.art",
                records: 1,
                messages: 1,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/103.eml",
            Aggregate {
                org: "Outlook.com",
                id: "725cbfbe133940149987cfc528387235",
                begin: 1666483200,
                end: 1666569600,
                domain: "stalw.art",
                records: 1,
                messages: 1,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/dmarc-feedback/104.eml",
            Aggregate {
                org: "AMAZON-SES",
                id: "6b06c366-0631-4ca0-8337-f5aecf137918",
                begin: 1663545600,
                end: 1663632000,
                domain: "stalw.art",
                records: 1,
                messages: 1,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/tlsrpt/rpt01.eml",
            Tls {
                org: "Company-X",
                id: "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
                begin: "2016-04-01T00:00:00Z",
                end: "2016-04-01T23:59:59Z",
                policies: 1,
                ok: 5326,
                failed: 303,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/tlsrpt/rpt01.json",
            Tls {
                org: "Company-X",
                id: "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
                begin: "2016-04-01T00:00:00Z",
                end: "2016-04-01T23:59:59Z",
                policies: 1,
                ok: 5326,
                failed: 303,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/tlsrpt/rpt02.eml",
            Tls {
                org: "Google Inc.",
                id: "2020-01-01T00:00:00Z_example.com",
                begin: "2020-01-01T00:00:00Z",
                end: "2020-01-07T23:59:59Z",
                policies: 1,
                ok: 23,
                failed: 1,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/tlsrpt/rpt02.json",
            Tls {
                org: "Google Inc.",
                id: "2020-01-01T00:00:00Z_example.com",
                begin: "2020-01-01T00:00:00Z",
                end: "2020-01-07T23:59:59Z",
                policies: 1,
                ok: 23,
                failed: 1,
            },
        ),
        (
            "stalwartlabs_mail-auth/resources/tlsrpt/rpt03.json",
            Tls {
                org: "Google Inc.",
                id: "2019-04-14T00:00:00Z_example.org",
                begin: "2019-04-14T00:00:00Z",
                end: "2019-04-14T23:59:59Z",
                policies: 2,
                ok: 2,
                failed: 0,
            },
        ),
        (
            "tierpod_dmarc-report-converter/pkg/dmarc/testdata/test.xml",
            Aggregate {
                org: "Test Inc.",
                id: "1.id.0",
                begin: 1524182400,
                end: 1524268799,
                domain: "test.net",
                records: 2,
                messages: 7,
            },
        ),
        (
            "tierpod_dmarc-report-converter/pkg/dmarc/testdata/test.xml.gz",
            Aggregate {
                org: "Test Inc.",
                id: "1.id.0",
                begin: 1524182400,
                end: 1524268799,
                domain: "test.net",
                records: 2,
                messages: 7,
            },
        ),
        (
            "tierpod_dmarc-report-converter/pkg/dmarc/testdata/test.xml.gz.gz",
            Aggregate {
                org: "Test Inc.",
                id: "1.id.0",
                begin: 1524182400,
                end: 1524268799,
                domain: "test.net",
                records: 2,
                messages: 7,
            },
        ),
        (
            "tierpod_dmarc-report-converter/pkg/dmarc/testdata/test.xml.zip",
            Aggregate {
                org: "Test Inc.",
                id: "1.id.0",
                begin: 1524182400,
                end: 1524268799,
                domain: "test.net",
                records: 2,
                messages: 7,
            },
        ),
        (
            "tierpod_dmarc-report-converter/pkg/dmarc/testdata/test2.xml",
            Aggregate {
                org: "Test Inc.",
                id: "1.id.0",
                begin: 1508846302,
                end: 1603540702,
                domain: "test.net",
                records: 2,
                messages: 12,
            },
        ),
        // Its only record has an empty <source_ip/>: dropped with a warning, report kept.
        (
            "tierpod_dmarc-report-converter/pkg/dmarc/testdata/test_empty.xml",
            Aggregate {
                org: "Test Inc.",
                id: "1.id.0",
                begin: 1524182400,
                end: 1524268799,
                domain: "test.net",
                records: 0,
                messages: 0,
            },
        ),
    ]
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SEALWATCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var_os("SEALWATCH_REQUIRE_CORPUS").is_some() {
        panic!(
            "corpus not found at {} (SEALWATCH_REQUIRE_CORPUS is set)",
            dir.display()
        );
    } else {
        eprintln!(
            "corpus not found at {}; conformance not checked",
            dir.display()
        );
        None
    }
}

fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus directory is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

fn check(path: &str, bytes: &[u8], expect: &Expect) -> Result<(), String> {
    let parser = Parser::default();
    let name = Path::new(path).file_name().and_then(|n| n.to_str());
    let parsed = parser.parse(bytes, name);
    let report = match (expect, parsed) {
        (Error(code), Err(e)) => {
            return if e.code() == *code {
                Ok(())
            } else {
                Err(format!("expected error {code}, got {} ({e})", e.code()))
            };
        }
        (Error(code), Ok(p)) => {
            return Err(format!(
                "expected error {code}, got {} reports",
                p.reports.len()
            ));
        }
        (_, Err(e)) => return Err(format!("expected a report, got error {} ({e})", e.code())),
        (_, Ok(p)) => {
            if !p.failures.is_empty() {
                return Err(format!("unexpected part failures: {:?}", p.failures));
            }
            if p.reports.len() != 1 {
                return Err(format!("expected 1 report, got {}", p.reports.len()));
            }
            p.reports.into_iter().next().ok_or("no report")?
        }
    };
    let eq = |what: &str, got: String, want: String| -> Result<(), String> {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what}: got {got:?}, want {want:?}"))
        }
    };
    match (expect, &report) {
        (
            Aggregate {
                org,
                id,
                begin,
                end,
                domain,
                records,
                messages,
            },
            Report::DmarcAggregate(r),
        ) => {
            eq("org_name", r.org_name.clone(), org.to_string())?;
            eq("report_id", r.report_id.to_string(), id.to_string())?;
            eq("begin", r.begin.timestamp().to_string(), begin.to_string())?;
            eq("end", r.end.timestamp().to_string(), end.to_string())?;
            eq(
                "policy_domain",
                r.policy_domain.to_string(),
                domain.to_string(),
            )?;
            eq("records", r.records.len().to_string(), records.to_string())?;
            eq(
                "message_count",
                r.message_count.to_string(),
                messages.to_string(),
            )?;
            let sum: u64 = r.records.iter().map(|x| x.count).sum();
            eq(
                "sum of record counts",
                sum.to_string(),
                messages.to_string(),
            )
        }
        (
            Tls {
                org,
                id,
                begin,
                end,
                policies,
                ok,
                failed,
            },
            Report::TlsRpt(r),
        ) => {
            eq("org_name", r.org_name.clone(), org.to_string())?;
            eq("report_id", r.report_id.to_string(), id.to_string())?;
            eq(
                "begin",
                r.begin.to_rfc3339_opts(chrono_secs(), true),
                begin.to_string(),
            )?;
            eq(
                "end",
                r.end.to_rfc3339_opts(chrono_secs(), true),
                end.to_string(),
            )?;
            eq(
                "policies",
                r.policies.len().to_string(),
                policies.to_string(),
            )?;
            eq(
                "successful_sessions",
                r.successful_sessions.to_string(),
                ok.to_string(),
            )?;
            eq(
                "failed_sessions",
                r.failed_sessions.to_string(),
                failed.to_string(),
            )
        }
        (
            Failure {
                feedback_type,
                domain,
                ip,
            },
            Report::DmarcFailure(r),
        ) => {
            eq(
                "feedback_type",
                format!("{:?}", r.feedback_type.as_deref()),
                format!("{:?}", Some(*feedback_type)),
            )?;
            eq(
                "reported_domain",
                format!("{:?}", r.reported_domain.as_ref().map(|d| d.to_string())),
                format!("{:?}", domain.map(str::to_owned)),
            )?;
            eq(
                "source_ip",
                format!("{:?}", r.source_ip.as_ref().map(|i| i.to_string())),
                format!("{:?}", ip.map(str::to_owned)),
            )
        }
        (want, got) => Err(format!(
            "expected {want:?}, got a {} report",
            got.kind().as_str()
        )),
    }
}

fn chrono_secs() -> chrono::SecondsFormat {
    chrono::SecondsFormat::Secs
}

#[test]
fn every_corpus_file_parses_to_the_values_read_from_it() {
    let Some(root) = corpus_dir() else { return };
    let table = table();
    let mut problems = Vec::new();
    let on_disk = files(&root);
    for rel in &on_disk {
        let Some((_, expect)) = table.iter().find(|(p, _)| p == rel) else {
            problems.push(format!("{rel}: not classified in the conformance table"));
            continue;
        };
        let bytes = std::fs::read(root.join(rel)).expect("corpus file is readable");
        if let Err(why) = check(rel, &bytes, expect) {
            problems.push(format!("{rel}: {why}"));
        }
    }
    for (p, _) in &table {
        if !on_disk.iter().any(|f| f == p) {
            problems.push(format!("{p}: in the table but missing from the corpus"));
        }
    }
    assert!(
        problems.is_empty(),
        "conformance failures:\n{}",
        problems.join("\n")
    );
    assert!(
        on_disk.len() >= 70,
        "corpus unexpectedly small: {} files",
        on_disk.len()
    );
}

#[test]
fn repaired_corpus_reports_say_what_was_repaired() {
    let Some(root) = corpus_dir() else { return };
    let parser = Parser::default();
    let cases = [
        ("parsedmarc/aggregate/invalid_xml.xml", "unescaped '<'"),
        ("parsedmarc/aggregate/invalid_utf_8.xml", "Windows-1252"),
        (
            "parsedmarc/aggregate/!example.com!1538204542!1538463818.xml",
            "empty <org_name>",
        ),
        (
            "parsedmarc/aggregate_invalid/report_with_upper_cased_pass.xml",
            "read as \"pass\"",
        ),
        ("parsedmarc/aggregate/mimecast-weird-gzip.eml", "gzip"),
        (
            "tierpod_dmarc-report-converter/pkg/dmarc/testdata/test_empty.xml",
            "no <source_ip>",
        ),
        (
            "stalwartlabs_mail-auth/resources/tlsrpt/rpt03.json",
            "unknown policy-type",
        ),
    ];
    for (rel, needle) in cases {
        let bytes = std::fs::read(root.join(rel)).expect("corpus file is readable");
        let parsed = parser.parse(&bytes, Some(rel)).expect("parses");
        let warnings = parsed.reports[0].warnings();
        assert!(
            warnings.iter().any(|w| w.contains(needle)),
            "{rel}: no warning containing {needle:?} in {warnings:?}"
        );
    }
}

#[test]
fn rfc9990_fields_are_read_from_the_corpus() {
    let Some(root) = corpus_dir() else { return };
    let bytes =
        std::fs::read(root.join("parsedmarc/aggregate/rfc9990-sample.xml")).expect("readable");
    let parsed = Parser::default().parse(&bytes, None).expect("parses");
    let Report::DmarcAggregate(r) = &parsed.reports[0] else {
        panic!("not aggregate")
    };
    // Read from the file: xmlns, <np>none</np>, <testing>n</testing>,
    // <discovery_method>treewalk</discovery_method>, <generator>, disposition pass.
    assert_eq!(
        r.xml_namespace.as_deref(),
        Some("urn:ietf:params:xml:ns:dmarc-2.0")
    );
    assert_eq!(
        r.policy_published.np.as_ref().map(|p| p.as_str()),
        Some("none")
    );
    assert_eq!(r.policy_published.testing, Some(false));
    assert_eq!(
        r.policy_published
            .discovery_method
            .as_ref()
            .map(|d| d.as_str()),
        Some("treewalk")
    );
    assert_eq!(
        r.generator.as_deref(),
        Some("Example DMARC Aggregate Reporter v1.2")
    );
    assert_eq!(
        r.records[0]
            .policy_evaluated
            .disposition
            .as_ref()
            .map(|d| d.as_str()),
        Some("pass")
    );
    assert_eq!(
        r.records[0].auth_results.dkim[0].selector.as_deref(),
        Some("abc123")
    );
}
