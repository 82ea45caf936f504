//! Shared helpers of the fuzz targets: the invariants every parse must satisfy, the small
//! limits that make bombs and limit paths reachable with tiny inputs, and the container
//! builders `parse_structured` wraps fuzz input in.

use std::io::Write as _;

use base64::Engine as _;
use sealwatch_model::Report;
use sealwatch_parser::{Limits, ParseError, Parser};

/// A file name in the `receiver!policy-domain!begin!end.ext` form, so the file-name
/// fallbacks (`org_name`, `policy_published/domain`) are exercised.
pub const REPORT_NAME: &str = "receiver.example!example.com!1700000000!1700086399";

/// Limits small enough that fuzz-sized inputs hit every one of them: decompression
/// bombs (1 MiB), record counts, MIME depth, attachments, compression layers, zip members.
pub fn small_limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 20,
        max_records: 64,
        max_mime_depth: 3,
        max_attachments: 4,
        max_compression_layers: 2,
        max_zip_members: 4,
    }
}

/// Parses `input` and asserts the parser's output contract. Panics (= a fuzz finding) when
/// an invariant does not hold; the parser itself must never panic.
pub fn check(parser: &Parser, input: &[u8], name: Option<&str>) {
    let limits = parser.limits();
    match parser.parse(input, name) {
        Ok(parsed) => {
            assert!(
                !parsed.reports.is_empty(),
                "Ok(Parsed) without reports (failures: {:?})",
                parsed.failures
            );
            for report in &parsed.reports {
                check_report(report, limits);
            }
            for failure in &parsed.failures {
                assert!(!failure.part.is_empty(), "failure without a part label");
                check_error(&failure.error);
            }
        }
        Err(e) => check_error(&e),
    }
}

fn check_error(e: &ParseError) {
    let code = e.code();
    assert!(!code.is_empty(), "empty reason code for {e:?}");
    assert!(
        code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
        "reason code {code:?} is not kebab-case"
    );
    assert!(!e.to_string().is_empty(), "empty message for {e:?}");
}

fn check_report(report: &Report, limits: &Limits) {
    let json = serde_json::to_string(report)
        .unwrap_or_else(|e| panic!("report does not serialize to JSON: {e}\n{report:?}"));
    let value: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("JSON does not re-parse: {e}"));
    assert_eq!(
        value.get("kind").and_then(|k| k.as_str()),
        Some(report.kind().as_str()),
        "serialized kind tag"
    );
    // Warnings are de-duplicated and capped per report (50 distinct + an "omitted" line),
    // plus at most one per container layer.
    assert!(
        report.warnings().len() <= 51 + limits.max_compression_layers + 2,
        "{} warnings: not bounded",
        report.warnings().len()
    );
    match report {
        Report::DmarcAggregate(a) => {
            assert!(
                a.records.len() <= limits.max_records,
                "record limit ignored"
            );
            assert!(a.begin <= a.end, "date range not ordered");
            assert!(!a.org_name.is_empty(), "empty org_name");
        }
        Report::TlsRpt(t) => {
            assert!(t.begin <= t.end, "date range not ordered");
            assert!(!t.org_name.is_empty(), "empty organization-name");
        }
        Report::DmarcFailure(_) => {}
    }
}

/// Stack of the thread each parse runs on: an eighth of the 2 MiB a tokio blocking thread
/// has (where `sealwatch` parses mail), so that recursion growing with the input overflows
/// with fuzz-sized inputs instead of only with megabytes.
pub const PARSE_STACK: usize = 256 << 10;

/// Runs `f` on a thread with a [`PARSE_STACK`] stack. A panic there still aborts the
/// process (libfuzzer-sys's panic hook); a stack overflow is reported as a crash too when
/// [`install_overflow_handler`] ran.
pub fn on_small_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, || {
                let _alt = AltStack::new();
                f()
            })
            .expect("spawn parse thread")
            .join()
            .expect("parse thread panicked")
    })
}

/// Makes a stack overflow a crash libFuzzer reports and saves. The fuzz targets use
/// libFuzzer's `main`, so Rust's own overflow handler is not installed, and libFuzzer's
/// SIGSEGV handler cannot run on the exhausted stack: the process just died, without the
/// input. This handler runs on the parse thread's alternate stack ([`AltStack`]) and turns
/// the SIGSEGV into an abort, which libFuzzer handles (it saves the input). Call it from
/// the target's `init` (before libFuzzer installs its handlers, which then keep
/// `SA_ONSTACK` and pass SIGSEGV on to this one). Does nothing when a handler exists
/// already (AddressSanitizer's).
pub fn install_overflow_handler() {
    extern "C" fn on_segv(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
        const MSG: &[u8] =
            b"\n==sealwatch-fuzz== SIGSEGV (stack overflow?) in the parse thread: aborting\n";
        // SAFETY: async-signal-safe calls only.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::abort();
        }
    }
    // SAFETY: plain sigaction calls with a zeroed, then filled, struct.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut current) != 0
            || current.sa_sigaction != libc::SIG_DFL
        {
            return;
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_segv;
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
    }
}

/// An alternate signal stack for the current thread, removed on drop.
struct AltStack {
    _memory: Vec<u8>,
}

impl AltStack {
    const SIZE: usize = 64 << 10;

    fn new() -> Self {
        let mut memory = vec![0u8; Self::SIZE];
        let stack = libc::stack_t {
            ss_sp: memory.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: Self::SIZE,
        };
        // SAFETY: the memory outlives the registration (disabled in `drop`).
        unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) };
        AltStack { _memory: memory }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disables this thread's alternate stack before its memory is freed.
        unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
    }
}

/// Runs `check` with the default limits, and again with [`small_limits`] and `name`, on a
/// small stack.
pub fn check_both(input: &[u8], name: Option<&str>) {
    on_small_stack(|| {
        check(&Parser::default(), input, name);
        check(&Parser::new(small_limits()), input, name);
    });
}

// ---------------------------------------------------------------------------------------
// Container builders (infallible: they write to memory).
// ---------------------------------------------------------------------------------------

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

/// A zip archive with one member per `(name, data)`.
pub fn zip(members: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in members {
        w.start_file(*name, options).expect("in-memory zip");
        w.write_all(data).expect("in-memory zip");
    }
    w.finish().expect("in-memory zip").into_inner()
}

/// Base64 in 76-character lines, as mail clients write it.
pub fn base64_lines(data: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// Quoted-printable with soft line breaks.
pub fn quoted_printable(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 3 / 2);
    let mut col = 0;
    for &b in data {
        let plain = (b' '..=b'~').contains(&b) && b != b'=';
        let width = if plain { 1 } else { 3 };
        if col + width > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if plain {
            out.push(b);
        } else {
            out.extend_from_slice(format!("={b:02X}").as_bytes());
        }
        col += width;
    }
    out
}

const BOUNDARY: &str = "=_sealwatch_fuzz_boundary";

fn headers(subject: &str, content_type: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: DMARC Reports <noreply-dmarc@receiver.example>\r\n\
         To: rua@example.com\r\n\
         Subject: {subject}\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
         Message-ID: <fuzz.1700000000@receiver.example>\r\n\
         {extra}\
         MIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes()
}

/// One MIME part: headers, blank line, body.
pub struct Part<'a> {
    pub headers: String,
    pub body: &'a [u8],
}

/// A `multipart/<subtype>` email with a human-readable first part followed by `parts`.
pub fn email(
    subject: &str,
    subtype_params: &str,
    extra_headers: &str,
    parts: &[Part<'_>],
) -> Vec<u8> {
    let mut out = headers(
        subject,
        &format!("multipart/{subtype_params}; boundary=\"{BOUNDARY}\""),
        extra_headers,
    );
    out.extend_from_slice(
        format!(
            "This is a multi-part message in MIME format.\r\n\r\n--{BOUNDARY}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             This is a report for example.com.\r\n"
        )
        .as_bytes(),
    );
    for part in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n{}\r\n\r\n", part.headers).as_bytes());
        out.extend_from_slice(part.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// An attachment part carrying `data` base64-encoded.
pub fn base64_attachment(content_type: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    (
        format!(
            "Content-Type: {content_type}; name=\"{filename}\"\r\n\
             Content-Disposition: attachment; filename=\"{filename}\"\r\n\
             Content-Transfer-Encoding: base64"
        ),
        base64_lines(data).into_bytes(),
    )
}

/// A single-part email whose body is `body` with the given content headers.
pub fn single_part_email(subject: &str, content_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "From: DMARC Reports <noreply-dmarc@receiver.example>\r\n\
         To: rua@example.com\r\n\
         Subject: {subject}\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
         Message-ID: <fuzz.1700000000@receiver.example>\r\n\
         MIME-Version: 1.0\r\n\
         {content_headers}\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Number of wrappers [`wrap`] knows.
pub const WRAPPERS: u8 = 16;

/// Wraps `payload` in container number `which % WRAPPERS` and returns the bytes plus the
/// name hint to parse them with.
pub fn wrap(which: u8, payload: &[u8]) -> (Vec<u8>, Option<String>) {
    let xml_gz = format!("{REPORT_NAME}.xml.gz");
    let agg_subject = "Report Domain: example.com Submitter: receiver.example Report-ID: <fuzz>";
    match which % WRAPPERS {
        // Bare containers, as a backfill directory holds them.
        0 => (gzip(payload), Some(xml_gz)),
        1 => (
            zip(&[(&format!("{REPORT_NAME}.xml"), payload)], true),
            Some(format!("{REPORT_NAME}.zip")),
        ),
        2 => {
            // Several stored members, split at NUL bytes; junk members included.
            let pieces: Vec<&[u8]> = payload.split(|&b| b == 0).take(6).collect();
            let names = [
                "a.xml",
                "__MACOSX/._a.xml",
                "dir/b.json",
                "c.xml.gz",
                "readme.txt",
                "d",
            ];
            let members: Vec<(&str, &[u8])> =
                names.iter().copied().zip(pieces.iter().copied()).collect();
            (zip(&members, false), None)
        }
        3 => (zlib(payload), None),
        4 => (gzip(&gzip(payload)), Some(xml_gz)),
        // Emails.
        5 => {
            let (h, body) = base64_attachment("application/octet-stream", "report.bin", payload);
            (
                email(
                    agg_subject,
                    "mixed",
                    "",
                    &[Part {
                        headers: h,
                        body: &body,
                    }],
                ),
                None,
            )
        }
        6 => {
            let (h, body) = base64_attachment("application/gzip", &xml_gz, &gzip(payload));
            (
                email(
                    agg_subject,
                    "mixed",
                    "",
                    &[Part {
                        headers: h,
                        body: &body,
                    }],
                ),
                None,
            )
        }
        7 => {
            let z = zip(&[(&format!("{REPORT_NAME}.xml"), payload)], true);
            let (h, body) = base64_attachment("application/zip", &format!("{REPORT_NAME}.zip"), &z);
            (
                email(
                    agg_subject,
                    "mixed",
                    "",
                    &[Part {
                        headers: h,
                        body: &body,
                    }],
                ),
                None,
            )
        }
        8 => {
            // A report email forwarded as message/rfc822.
            let (h, body) = base64_attachment("application/gzip", &xml_gz, &gzip(payload));
            let inner = email(
                agg_subject,
                "mixed",
                "",
                &[Part {
                    headers: h,
                    body: &body,
                }],
            );
            let fwd = Part {
                headers: "Content-Type: message/rfc822\r\nContent-Disposition: inline".to_owned(),
                body: &inner,
            };
            (email("Fwd: DMARC report", "mixed", "", &[fwd]), None)
        }
        9 => {
            // RFC 8460 TLS report email.
            let name =
                "receiver.example!example.com!2023-11-14T00:00:00Z!2023-11-14T23:59:59Z!1.json.gz";
            let (h, body) = base64_attachment("application/tlsrpt+gzip", name, &gzip(payload));
            let extra =
                "TLS-Report-Domain: example.com\r\nTLS-Report-Submitter: receiver.example\r\n";
            (
                email(
                    "Report Domain: example.com Submitter: receiver.example Report-ID: <1>",
                    "report; report-type=\"tlsrpt\"",
                    extra,
                    &[Part {
                        headers: h,
                        body: &body,
                    }],
                ),
                None,
            )
        }
        10 => {
            // RFC 5965 / 6591 failure report: payload is the feedback-report part.
            let fb = Part {
                headers: "Content-Type: message/feedback-report".to_owned(),
                body: payload,
            };
            let orig = Part {
                headers: "Content-Type: text/rfc822-headers".to_owned(),
                body: b"From: someone@example.com\r\nSubject: hello\r\n",
            };
            (
                email(
                    "FW: DMARC failure report for example.com",
                    "report; report-type=feedback-report",
                    "",
                    &[fb, orig],
                ),
                None,
            )
        }
        11 => (
            // Plain-text failure notice: payload is the body.
            single_part_email(
                "DMARC failure report for example.com",
                "Content-Type: text/plain; charset=utf-8",
                payload,
            ),
            None,
        ),
        12 => {
            let qp = quoted_printable(payload);
            let part = Part {
                headers: format!(
                    "Content-Type: text/xml; charset=utf-8; name=\"{REPORT_NAME}.xml\"\r\n\
                     Content-Disposition: attachment; filename=\"{REPORT_NAME}.xml\"\r\n\
                     Content-Transfer-Encoding: quoted-printable"
                ),
                body: &qp,
            };
            (email(agg_subject, "mixed", "", &[part]), None)
        }
        14 | 15 => {
            // The payload is an email, forwarded as message/rfc822: 7bit as RFC 2046 wants,
            // or base64 as some gateways send it (mail-parser decodes and parses those).
            let (cte, body) = if which % WRAPPERS == 14 {
                ("7bit", payload.to_vec())
            } else {
                ("base64", base64_lines(payload).into_bytes())
            };
            let fwd = Part {
                headers: format!(
                    "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: {cte}"
                ),
                body: &body,
            };
            (email("Fwd: report", "mixed", "", &[fwd]), None)
        }
        _ => (
            // Binary mislabelled as text: the parser must go back to the raw bytes.
            single_part_email(
                agg_subject,
                "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64",
                base64_lines(&gzip(payload)).as_bytes(),
            ),
            None,
        ),
    }
}
