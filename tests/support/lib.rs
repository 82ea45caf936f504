//! Shared helpers for the workspace tests.
//!
//! * fixtures: [`fixture`] / [`fixture_text`] read the hand-written files under
//!   `tests/fixtures/quirks/`;
//! * packaging: [`gzip`], [`zlib`], [`raw_deflate`], [`zip`] and friends build the binary
//!   wrappers at test time, so the repository holds only readable text;
//! * email: [`Part`] and [`Email`] build RFC 5322 / MIME messages;
//! * parsing: [`parse_ok`], [`parse_err`] and the `*_report` helpers run the real
//!   [`Parser`] and fail with a readable message when the outcome is not the expected one;
//! * generation: [`AggregateXml`] writes a valid aggregate report with escaped values, for
//!   the many-record and property tests.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
pub use sealwatch_model::{AggregateReport, FailureReport, Report, TlsReport};
pub use sealwatch_parser::{Limits, ParseError, Parsed, Parser, PartFailure, Truncation};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// Path of a file under `tests/fixtures/quirks/`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("quirks")
        .join(name)
}

/// Bytes of a fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// Text of a UTF-8 fixture file.
pub fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap_or_else(|e| panic!("fixture {name} is not UTF-8: {e}"))
}

// ---------------------------------------------------------------------------------------
// Compression and archives
// ---------------------------------------------------------------------------------------

/// A standard single-member gzip stream.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

/// A zlib (RFC 1950) stream.
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("zlib to memory");
    enc.finish().expect("zlib to memory")
}

/// A raw deflate (RFC 1951) stream without any header.
pub fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("deflate to memory");
    enc.finish().expect("deflate to memory")
}

/// A 10-byte gzip member header with the given flag byte and no optional fields.
pub fn gzip_header(flags: u8) -> Vec<u8> {
    vec![0x1f, 0x8b, 0x08, flags, 0, 0, 0, 0, 0x00, 0xff]
}

/// A valid single-member gzip stream of `total` zero bytes (a multiple of 1 MiB): a
/// decompression bomb of about 1 KiB per MiB.
///
/// One MiB of zeros is deflated with a full flush, which byte-aligns the output and resets
/// the compressor, so the compressed block can simply be repeated; the CRC-32 of the whole
/// is combined from the CRC of one block. A 1 GiB bomb is built in milliseconds instead of
/// streaming a gigabyte through the encoder.
pub fn gzip_of_zeros(total: u64) -> Vec<u8> {
    const CHUNK: u64 = 1 << 20;
    assert_eq!(total % CHUNK, 0, "total must be a multiple of 1 MiB");
    let zeros = vec![0u8; CHUNK as usize];
    let mut deflate = Compress::new(Compression::best(), false);
    let block = deflate_all(&mut deflate, &zeros, FlushCompress::Full);
    let tail = deflate_all(&mut deflate, &[], FlushCompress::Finish);
    let mut chunk_crc = Crc::new();
    chunk_crc.update(&zeros);
    let chunks = total / CHUNK;
    let mut crc = Crc::new();
    for _ in 0..chunks {
        crc.combine(&chunk_crc);
    }
    let mut out = gzip_header(0);
    out.reserve(block.len() * chunks as usize + tail.len() + 8);
    for _ in 0..chunks {
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&tail);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out
}

/// Runs `input` through the compressor with `flush`, returning everything it wrote.
fn deflate_all(c: &mut Compress, input: &[u8], flush: FlushCompress) -> Vec<u8> {
    let start = c.total_in();
    let mut out = Vec::with_capacity(64 << 10);
    loop {
        if out.len() == out.capacity() {
            out.reserve(64 << 10);
        }
        let consumed = (c.total_in() - start) as usize;
        let status = c
            .compress_vec(&input[consumed..], &mut out, flush)
            .expect("deflate to memory");
        let consumed = (c.total_in() - start) as usize;
        // Done when the stream ended, or all input is in and the flush left room to spare.
        if status == Status::StreamEnd || (consumed == input.len() && out.len() < out.capacity()) {
            return out;
        }
    }
}

/// A zip archive whose members are deflated.
pub fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(members, zip::CompressionMethod::Deflated)
}

/// A zip archive whose members are stored uncompressed.
pub fn zip_stored(members: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(members, zip::CompressionMethod::Stored)
}

fn zip_with(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(false);
    for (name, data) in members {
        writer.start_file(*name, options).expect("zip member");
        writer.write_all(data).expect("zip member data");
    }
    writer.finish().expect("zip archive").into_inner()
}

/// Standard base64, wrapped at 76 columns with CRLF as MIME requires.
pub fn base64_lines(data: &[u8]) -> String {
    base64_wrapped(data, 76)
}

/// Standard base64 wrapped at `width` columns (CRLF line ends).
pub fn base64_wrapped(data: &[u8], width: usize) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / width * 2 + 2);
    for chunk in encoded.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// Quoted-printable encoding (RFC 2045 §6.7) with soft line breaks before 76 columns.
pub fn quoted_printable(data: &[u8]) -> String {
    let mut out = String::new();
    let mut col = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            out.push_str("\r\n");
            col = 0;
            continue;
        }
        if b == b'\r' && data.get(i + 1) == Some(&b'\n') {
            continue;
        }
        let at_line_end = matches!(data.get(i + 1), None | Some(b'\r' | b'\n'));
        let literal =
            ((33..=126).contains(&b) && b != b'=') || ((b == b' ' || b == b'\t') && !at_line_end);
        let piece = if literal {
            char::from(b).to_string()
        } else {
            format!("={b:02X}")
        };
        if col + piece.len() > 75 {
            out.push_str("=\r\n");
            col = 0;
        }
        out.push_str(&piece);
        col += piece.len();
    }
    out
}

// ---------------------------------------------------------------------------------------
// MIME email builder
// ---------------------------------------------------------------------------------------

static BOUNDARY: AtomicUsize = AtomicUsize::new(0);

fn boundary() -> String {
    format!(
        "=_sealwatch_test_{}",
        BOUNDARY.fetch_add(1, Ordering::Relaxed)
    )
}

/// One MIME entity: header lines and an already-encoded body.
#[derive(Debug, Clone)]
pub struct Part {
    headers: Vec<String>,
    body: Vec<u8>,
}

impl Part {
    /// An entity with raw header lines (`"Content-Type: text/plain"`) and a raw body.
    pub fn raw(headers: &[&str], body: impl Into<Vec<u8>>) -> Self {
        Part {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            body: body.into(),
        }
    }

    /// A `text/plain` part.
    pub fn text(body: &str) -> Self {
        Part::raw(&["Content-Type: text/plain; charset=utf-8"], body)
    }

    /// An attachment with the given content type and file name, base64-encoded.
    pub fn attachment(content_type: &str, filename: &str, data: &[u8]) -> Self {
        Part::raw(
            &[
                &format!("Content-Type: {content_type}; name=\"{filename}\""),
                &format!("Content-Disposition: attachment; filename=\"{filename}\""),
                "Content-Transfer-Encoding: base64",
            ],
            base64_lines(data),
        )
    }

    /// A base64 body with arbitrary header lines (a `Content-Transfer-Encoding: base64`
    /// line is added).
    pub fn base64(headers: &[&str], data: &[u8]) -> Self {
        let mut p = Part::raw(headers, base64_lines(data));
        p.headers
            .push("Content-Transfer-Encoding: base64".to_owned());
        p
    }

    /// A multipart entity (`subtype` = `mixed`, `alternative`, `report; report-type=…`).
    pub fn multipart(subtype: &str, parts: Vec<Part>) -> Self {
        let b = boundary();
        let mut body = Vec::new();
        body.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
        for part in parts {
            body.extend_from_slice(format!("\r\n--{b}\r\n").as_bytes());
            body.extend_from_slice(&part.to_bytes());
        }
        body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        let (sub, params) = match subtype.split_once(';') {
            Some((s, p)) => (s.trim(), format!("; {}", p.trim())),
            None => (subtype.trim(), String::new()),
        };
        Part {
            headers: vec![format!(
                "Content-Type: multipart/{sub}; boundary=\"{b}\"{params}"
            )],
            body,
        }
    }

    /// A `message/rfc822` part wrapping a whole message.
    pub fn message(inner: &[u8]) -> Self {
        Part::raw(
            &[
                "Content-Type: message/rfc822",
                "Content-Disposition: inline",
            ],
            inner.to_vec(),
        )
    }

    /// Adds a header line.
    pub fn header(mut self, line: &str) -> Self {
        self.headers.push(line.to_owned());
        self
    }

    /// The entity as bytes: header lines, a blank line, the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for h in &self.headers {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A whole email: top-level header lines plus one body entity.
#[derive(Debug, Clone)]
pub struct Email {
    headers: Vec<String>,
}

impl Email {
    /// An email with the usual report-email headers.
    pub fn new(from: &str, subject: &str) -> Self {
        Email {
            headers: vec![
                format!("From: {from}"),
                "To: dmarc-reports@example.com".to_owned(),
                format!("Subject: {subject}"),
                "Date: Tue, 07 May 2024 09:15:00 +0000".to_owned(),
                format!(
                    "Message-ID: <test-{}@sealwatch.test>",
                    BOUNDARY.fetch_add(1, Ordering::Relaxed)
                ),
                "MIME-Version: 1.0".to_owned(),
            ],
        }
    }

    /// Adds a header line.
    pub fn header(mut self, line: &str) -> Self {
        self.headers.push(line.to_owned());
        self
    }

    /// The message with `body` as its root entity.
    pub fn body(&self, body: Part) -> Vec<u8> {
        let mut out = Vec::new();
        for h in self.headers.iter().chain(&body.headers) {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body.body);
        out
    }

    /// The usual aggregate report email: a text part and one attachment.
    pub fn with_attachment(&self, content_type: &str, filename: &str, data: &[u8]) -> Vec<u8> {
        self.body(Part::multipart(
            "mixed",
            vec![
                Part::text("This is a DMARC aggregate report."),
                Part::attachment(content_type, filename, data),
            ],
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Parsing helpers
// ---------------------------------------------------------------------------------------

/// Parses with default limits and expects at least one report.
#[track_caller]
pub fn parse_ok(input: &[u8], name: Option<&str>) -> Parsed {
    parse_ok_with(&Limits::default(), input, name)
}

/// Parses with the given limits and expects at least one report.
#[track_caller]
pub fn parse_ok_with(limits: &Limits, input: &[u8], name: Option<&str>) -> Parsed {
    match Parser::new(limits.clone()).parse(input, name) {
        Ok(parsed) => parsed,
        Err(e) => panic!("expected a report, got error [{}]: {e}", e.code()),
    }
}

/// Parses with default limits and expects an error.
#[track_caller]
pub fn parse_err(input: &[u8], name: Option<&str>) -> ParseError {
    parse_err_with(&Limits::default(), input, name)
}

/// Parses with the given limits and expects an error.
#[track_caller]
pub fn parse_err_with(limits: &Limits, input: &[u8], name: Option<&str>) -> ParseError {
    match Parser::new(limits.clone()).parse(input, name) {
        Ok(parsed) => panic!(
            "expected an error, got {} report(s) and failures {:?}",
            parsed.reports.len(),
            parsed.failures
        ),
        Err(e) => e,
    }
}

/// The single report of a parse, which must have no failed parts.
#[track_caller]
pub fn only_report(parsed: &Parsed) -> &Report {
    assert!(
        parsed.failures.is_empty(),
        "unexpected failed parts: {:?}",
        parsed.failures
    );
    assert_eq!(
        parsed.reports.len(),
        1,
        "expected exactly one report, got {:?}",
        parsed.reports.iter().map(Report::kind).collect::<Vec<_>>()
    );
    &parsed.reports[0]
}

/// The single aggregate report of an input.
#[track_caller]
pub fn aggregate_report(input: &[u8], name: Option<&str>) -> AggregateReport {
    match only_report(&parse_ok(input, name)) {
        Report::DmarcAggregate(r) => r.clone(),
        other => panic!("expected a DMARC aggregate report, got {:?}", other.kind()),
    }
}

/// The single TLS report of an input.
#[track_caller]
pub fn tls_report(input: &[u8], name: Option<&str>) -> TlsReport {
    match only_report(&parse_ok(input, name)) {
        Report::TlsRpt(r) => r.clone(),
        other => panic!("expected a TLS report, got {:?}", other.kind()),
    }
}

/// The single failure report of an input.
#[track_caller]
pub fn failure_report(input: &[u8], name: Option<&str>) -> FailureReport {
    match only_report(&parse_ok(input, name)) {
        Report::DmarcFailure(r) => r.clone(),
        other => panic!("expected a DMARC failure report, got {:?}", other.kind()),
    }
}

/// The aggregate reports of a parse, in order.
pub fn aggregates(parsed: &Parsed) -> Vec<&AggregateReport> {
    parsed
        .reports
        .iter()
        .filter_map(|r| match r {
            Report::DmarcAggregate(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// Asserts that some warning contains `needle`.
#[track_caller]
pub fn assert_warning(warnings: &[String], needle: &str) {
    assert!(
        warnings.iter().any(|w| w.contains(needle)),
        "no warning contains {needle:?}; warnings: {warnings:#?}"
    );
}

/// Asserts that no warning contains `needle`.
#[track_caller]
pub fn assert_no_warning(warnings: &[String], needle: &str) {
    assert!(
        !warnings.iter().any(|w| w.contains(needle)),
        "unexpected warning containing {needle:?}; warnings: {warnings:#?}"
    );
}

/// Asserts that a parse repaired nothing.
#[track_caller]
pub fn assert_clean(warnings: &[String]) {
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:#?}");
}

/// Source IPs of an aggregate report's records, as text.
pub fn source_ips(report: &AggregateReport) -> Vec<String> {
    report
        .records
        .iter()
        .map(|r| r.source_ip.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Aggregate report generator
// ---------------------------------------------------------------------------------------

/// Escapes text for an XML element value.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// One generated `<record>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordXml {
    pub source_ip: String,
    pub count: u64,
    pub header_from: String,
}

/// A valid RFC 7489 aggregate report, written with every value escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateXml {
    pub org_name: String,
    pub email: String,
    pub report_id: String,
    pub begin: i64,
    pub end: i64,
    pub domain: String,
    pub records: Vec<RecordXml>,
}

impl AggregateXml {
    /// A report with `n` records of count 1 from distinct addresses in 10.0.0.0/8.
    pub fn with_records(n: usize) -> Self {
        AggregateXml {
            org_name: "Generator Org".to_owned(),
            email: "dmarc@generator.example".to_owned(),
            report_id: "generated-1".to_owned(),
            begin: 1_714_521_600,
            end: 1_714_607_999,
            domain: "example.com".to_owned(),
            records: (0..n)
                .map(|i| RecordXml {
                    source_ip: format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff),
                    count: 1,
                    header_from: "example.com".to_owned(),
                })
                .collect(),
        }
    }

    /// The report document.
    pub fn to_xml(&self) -> String {
        let mut x = String::new();
        let _ = write!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n  \
             <report_metadata>\n    <org_name>{}</org_name>\n    <email>{}</email>\n    \
             <report_id>{}</report_id>\n    <date_range><begin>{}</begin><end>{}</end></date_range>\n  \
             </report_metadata>\n  <policy_published>\n    <domain>{}</domain>\n    <adkim>r</adkim>\n    \
             <aspf>r</aspf>\n    <p>none</p>\n    <pct>100</pct>\n  </policy_published>\n",
            xml_escape(&self.org_name),
            xml_escape(&self.email),
            xml_escape(&self.report_id),
            self.begin,
            self.end,
            xml_escape(&self.domain),
        );
        for r in &self.records {
            let _ = write!(
                x,
                "  <record>\n    <row>\n      <source_ip>{}</source_ip>\n      <count>{}</count>\n      \
                 <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>\n    \
                 </row>\n    <identifiers><header_from>{}</header_from></identifiers>\n    \
                 <auth_results><spf><domain>{}</domain><result>pass</result></spf></auth_results>\n  </record>\n",
                xml_escape(&r.source_ip),
                r.count,
                xml_escape(&r.header_from),
                xml_escape(&r.header_from),
            );
        }
        x.push_str("</feedback>\n");
        x
    }
}
