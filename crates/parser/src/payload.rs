//! Content sniffing and bounded decompression: decides what a byte slice is and hands it
//! to the right reader. Every report leaves through [`Run::emit`], which applies the
//! field and row limits of `caps`.
//!
//! A compressed stream that stops before its end is [`ParseError::Truncated`] once what it
//! produced looks like the start of a report; a stream that is damaged after a complete
//! end (trailing bytes) keeps the data before the damage, with a warning.

use std::io::{self, Cursor, Read};

use base64::Engine as _;
use flate2::read::{DeflateDecoder, ZlibDecoder};
use sealwatch_model::{Report, Submitter};

use crate::error::{ParseError, Truncation};
use crate::hints::Hints;
use crate::{Limits, Parsed, PartFailure, arf, caps, dmarc, email, tlsrpt};

/// State of one top-level parse: limits and the budgets shared by all its parts.
pub(crate) struct Run<'l> {
    pub limits: &'l Limits,
    decompressed: u64,
    pub attachments: usize,
    pub out: Parsed,
}

/// Where a payload sits: its name, the carrying email, the depth and pending warnings.
#[derive(Clone, Default)]
pub(crate) struct Place<'a> {
    pub name: Option<std::borrow::Cow<'a, str>>,
    pub submitter: Option<&'a Submitter>,
    pub layer: usize,
    pub mime_depth: usize,
    pub label: String,
    pub warnings: Vec<String>,
    /// The part says it is gzip (its content type or a `.gz` name). Content still decides;
    /// this only adds raw deflate and zlib as readings to try when the content fails.
    pub declared_gzip: bool,
}

/// Whether a content type (`type/subtype`, lower case) or a name declares gzip.
pub(crate) fn declares_gzip(content_type: Option<(&str, &str)>, name: Option<&str>) -> bool {
    let by_type = content_type.is_some_and(|(ctype, subtype)| {
        ctype == "application"
            && (matches!(
                subtype,
                "gzip" | "x-gzip" | "gzip-compressed" | "x-gzip-compressed" | "x-gunzip"
            ) || subtype.ends_with("+gzip"))
    });
    by_type || name.is_some_and(name_declares_gzip)
}

fn name_declares_gzip(name: &str) -> bool {
    name.len() > 3
        && name
            .get(name.len().saturating_sub(3)..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".gz"))
}

/// What a byte slice looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Gzip,
    Zip,
    Zlib,
    Xml,
    Json,
    Email,
    Base64,
    Placeholder,
    Empty,
    Unknown,
}

pub(crate) fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Sniffed::Gzip;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Sniffed::Zip;
    }
    if bytes.len() >= 2
        && bytes[0] == 0x78
        && matches!(bytes[1], 0x01 | 0x5e | 0x9c | 0xda)
        && u16::from_be_bytes([bytes[0], bytes[1]]).is_multiple_of(31)
    {
        return Sniffed::Zlib;
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let trimmed = trim_ascii_start(body);
    if trimmed.is_empty() {
        return Sniffed::Empty;
    }
    if body.starts_with(b"\xFF\xFE<") || body.starts_with(b"\xFE\xFF\x00<") {
        return Sniffed::Xml;
    }
    match trimmed[0] {
        b'<' => return Sniffed::Xml,
        b'{' => return Sniffed::Json,
        _ => {}
    }
    if trimmed.len() < 64 && trimmed.trim_ascii().eq_ignore_ascii_case(b"unused") {
        return Sniffed::Placeholder;
    }
    if looks_like_email(trimmed) {
        return Sniffed::Email;
    }
    if looks_like_base64(trimmed) {
        return Sniffed::Base64;
    }
    Sniffed::Unknown
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

/// First line is an RFC 5322 header field or an mbox `From ` line.
fn looks_like_email(b: &[u8]) -> bool {
    if b.starts_with(b"From ") {
        return true;
    }
    let line_end = memchr::memchr(b'\n', b).unwrap_or(b.len()).min(998);
    let line = &b[..line_end];
    match memchr::memchr(b':', line) {
        Some(colon) if colon >= 2 => line[..colon]
            .iter()
            .all(|&c| c.is_ascii_graphic() && c != b':'),
        _ => false,
    }
}

fn looks_like_base64(b: &[u8]) -> bool {
    let sample = &b[..b.len().min(4096)];
    sample.len() >= 16
        && sample
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\r' | b'\n'))
}

pub(crate) fn decode_base64(b: &[u8]) -> Option<Vec<u8>> {
    let cleaned: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(cleaned).ok()
}

impl<'l> Run<'l> {
    pub(crate) fn new(limits: &'l Limits) -> Self {
        Run {
            limits,
            decompressed: 0,
            attachments: 0,
            out: Parsed::default(),
        }
    }

    /// Parses a whole input.
    pub(crate) fn top(mut self, input: &[u8], name: Option<&str>) -> Result<Parsed, ParseError> {
        let place = Place {
            name: name.map(std::borrow::Cow::Borrowed),
            label: name.map_or_else(|| "input".to_owned(), str::to_owned),
            declared_gzip: declares_gzip(None, name),
            ..Place::default()
        };
        match sniff(input) {
            Sniffed::Empty => return Err(ParseError::Empty),
            Sniffed::Email => email::parse_email(&mut self, input, &place)?,
            _ => self.payload(input, &place)?,
        }
        Ok(self.out)
    }

    pub(crate) fn fail(&mut self, place: &Place<'_>, error: ParseError) {
        self.out.failures.push(PartFailure {
            part: place.label.clone(),
            error,
        });
    }

    /// Reads one payload; failures of inner parts are recorded, the returned error is for
    /// this payload as a whole.
    pub(crate) fn payload(&mut self, bytes: &[u8], place: &Place<'_>) -> Result<(), ParseError> {
        let kind = sniff(bytes);
        if matches!(
            kind,
            Sniffed::Gzip | Sniffed::Zip | Sniffed::Zlib | Sniffed::Base64
        ) && place.layer >= self.limits.max_compression_layers
        {
            return Err(ParseError::CompressionTooDeep {
                limit: self.limits.max_compression_layers,
            });
        }
        match kind {
            Sniffed::Empty => Err(ParseError::Empty),
            Sniffed::Placeholder => Err(ParseError::Placeholder(
                String::from_utf8_lossy(bytes.trim_ascii()).into_owned(),
            )),
            Sniffed::Gzip => {
                let (data, warning) = self.gunzip(bytes)?;
                let mut p = inner(place);
                p.warnings.extend(warning);
                self.payload(&data, &p)
            }
            Sniffed::Zlib => {
                let data = self.inflate_zlib(bytes)?;
                self.payload(&data, &inner(place))
            }
            Sniffed::Zip => self.unzip(bytes, place),
            Sniffed::Base64 => match decode_base64(bytes) {
                Some(data) if sniff(&data) != Sniffed::Unknown => {
                    // Base64 is a text encoding, not a compression: a part declared as
                    // gzip still is once decoded.
                    let mut p = Place {
                        layer: place.layer.saturating_add(1),
                        ..place.clone()
                    };
                    p.warnings.push(
                        "payload was base64 text without a transfer encoding; decoded".to_owned(),
                    );
                    self.payload(&data, &p)
                }
                _ => Err(ParseError::NotAReport(
                    "unrecognised content (base64-like text that decodes to nothing known)"
                        .to_owned(),
                )),
            },
            Sniffed::Email => {
                let p = Place {
                    mime_depth: place.mime_depth.saturating_add(1),
                    ..place.clone()
                };
                email::parse_email(self, bytes, &p)
            }
            Sniffed::Xml | Sniffed::Json | Sniffed::Unknown => {
                let outcome = self.document(kind, bytes, place);
                match outcome {
                    Err(e) if place.declared_gzip => self
                        .declared_gzip_without_header(bytes, place)
                        .unwrap_or(Err(e)),
                    other => other,
                }
            }
        }
    }

    /// Reads an XML or JSON document (anything else is not a report).
    fn document(
        &mut self,
        kind: Sniffed,
        bytes: &[u8],
        place: &Place<'_>,
    ) -> Result<(), ParseError> {
        let hints = Hints {
            filename: place.name.as_deref(),
            submitter: place.submitter,
        };
        let report = match kind {
            Sniffed::Xml => {
                Report::DmarcAggregate(dmarc::parse_aggregate(bytes, self.limits, &hints)?)
            }
            Sniffed::Json => Report::TlsRpt(tlsrpt::parse_tls_report(bytes, &hints)?),
            _ => return Err(ParseError::NotAReport(describe_unknown(bytes))),
        };
        self.emit(report, place);
        Ok(())
    }

    /// A part declared as gzip whose content is neither gzip nor a readable document: its
    /// bytes read as raw deflate, then as zlib (a zlib header the sniffer does not know).
    /// `None` when neither reading yields a document, so the caller keeps its own error.
    fn declared_gzip_without_header(
        &mut self,
        bytes: &[u8],
        place: &Place<'_>,
    ) -> Option<Result<(), ParseError>> {
        if place.layer >= self.limits.max_compression_layers {
            return None;
        }
        let hint = bytes.len().saturating_mul(4);
        for what in [Truncation::Deflate, Truncation::Zlib] {
            let (data, result) = match what {
                Truncation::Zlib => self.read_all(ZlibDecoder::new(bytes), hint),
                _ => self.read_all(DeflateDecoder::new(bytes), hint),
            };
            if let Err(e) = self.check_budget(&data) {
                return Some(Err(e));
            }
            if !salvageable(&data) {
                continue;
            }
            match result {
                Ok(()) => {
                    let mut p = inner(place);
                    p.warnings.push(format!(
                        "declared as gzip but has no gzip header; read as {}",
                        reading(what)
                    ));
                    return Some(self.payload(&data, &p));
                }
                Err(e) if cut_short(&e) => {
                    return Some(Err(ParseError::truncated(what, bytes.len())));
                }
                Err(_) => {}
            }
        }
        None
    }

    pub(crate) fn feedback_report(&mut self, body: &[u8], place: &Place<'_>) {
        let submitter = place.submitter.cloned().unwrap_or_default();
        let report = arf::parse_feedback_report(body, &submitter);
        self.emit(Report::DmarcFailure(report), place);
    }

    pub(crate) fn emit(&mut self, mut report: Report, place: &Place<'_>) {
        if let Some(s) = place.submitter {
            *report.submitter_mut() = s.clone();
        }
        if let Some(name) = place.name.as_deref() {
            report.submitter_mut().filename = Some(base_name(name).to_owned());
        }
        if !place.warnings.is_empty() {
            let w = report.warnings_mut();
            let mut all = place.warnings.clone();
            all.append(w);
            *w = all;
        }
        caps::apply(&mut report, self.limits);
        self.out.reports.push(report);
    }

    /// Reports and failures recorded so far: a part that adds neither yielded nothing.
    pub(crate) fn parts_out(&self) -> usize {
        self.out
            .reports
            .len()
            .saturating_add(self.out.failures.len())
    }

    fn budget_left(&self) -> u64 {
        self.limits
            .max_decompressed_bytes
            .saturating_sub(self.decompressed)
    }

    /// Reads a decompressor to its end into `out`, within the remaining budget. On an
    /// error `out` keeps what was read before it, so callers can tell a stream cut short
    /// from a damaged one and salvage what is worth it.
    fn read_bounded<R: Read>(
        &mut self,
        reader: R,
        size_hint: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let budget = self.budget_left();
        if out.is_empty() {
            let cap = u64::try_from(size_hint)
                .unwrap_or(u64::MAX)
                .min(budget)
                .min(64 << 20);
            out.reserve(usize::try_from(cap).unwrap_or(0));
        }
        let before = out.len();
        let result = reader.take(budget.saturating_add(1)).read_to_end(out);
        let added = out.len().saturating_sub(before);
        self.decompressed = self
            .decompressed
            .saturating_add(u64::try_from(added).unwrap_or(u64::MAX));
        result.map(drop)
    }

    /// [`Self::read_bounded`] into a new buffer.
    fn read_all<R: Read>(&mut self, reader: R, size_hint: usize) -> (Vec<u8>, io::Result<()>) {
        let mut out = Vec::new();
        let result = self.read_bounded(reader, size_hint, &mut out);
        (out, result)
    }

    fn check_budget(&self, data: &[u8]) -> Result<(), ParseError> {
        if self.decompressed > self.limits.max_decompressed_bytes
            || u64::try_from(data.len()).unwrap_or(u64::MAX) > self.limits.max_decompressed_bytes
        {
            return Err(ParseError::DecompressedTooLarge {
                limit: self.limits.max_decompressed_bytes,
            });
        }
        Ok(())
    }

    /// A zlib stream (sniffed by its header).
    fn inflate_zlib(&mut self, bytes: &[u8]) -> Result<Vec<u8>, ParseError> {
        let (data, result) = self.read_all(ZlibDecoder::new(bytes), bytes.len());
        self.check_budget(&data)?;
        match result {
            Ok(()) => Ok(data),
            Err(e) if cut_short(&e) && salvageable(&data) => {
                Err(ParseError::truncated(Truncation::Zlib, bytes.len()))
            }
            Err(e) => Err(ParseError::CorruptCompression {
                format: "zlib",
                detail: e.to_string(),
            }),
        }
    }

    /// gzip, member by member, with fallbacks for the broken streams real senders produce:
    /// a raw deflate or zlib body behind a gzip header, and bytes after the last member
    /// (kept out, with a warning). A member that ends early is [`ParseError::Truncated`].
    fn gunzip(&mut self, bytes: &[u8]) -> Result<(Vec<u8>, Option<String>), ParseError> {
        // ISIZE (last four bytes) is the uncompressed size modulo 2^32: a capacity hint.
        let hint = bytes
            .last_chunk::<4>()
            .and_then(|tail| usize::try_from(u32::from_le_bytes(*tail)).ok())
            .unwrap_or(0)
            .max(bytes.len().saturating_mul(4));
        let mut data = Vec::new();
        let mut rest = bytes;
        let error = loop {
            let mut member = flate2::bufread::GzDecoder::new(rest);
            let result = self.read_bounded(&mut member, hint, &mut data);
            self.check_budget(&data)?;
            if let Err(e) = result {
                break e;
            }
            // Each member is at least a header and a trailer long: `rest` shrinks.
            rest = member.into_inner();
            if rest.is_empty() {
                return Ok((data, None));
            }
            if !rest.starts_with(&[0x1f, 0x8b]) {
                return Ok((
                    data,
                    Some(format!(
                        "gzip stream damaged ({} bytes after its end are not gzip); used the \
                         data before the damage",
                        rest.len()
                    )),
                ));
            }
        };
        if cut_short(&error) && salvageable(&data) {
            return Err(ParseError::truncated(Truncation::Gzip, bytes.len()));
        }
        let detail = error.to_string();
        if salvageable(&data) {
            return Ok((
                data,
                Some(format!(
                    "gzip stream damaged ({detail}); used the data before the damage"
                )),
            ));
        }
        if let Some(body) = gzip_body(bytes) {
            for what in [Truncation::Deflate, Truncation::Zlib] {
                let (data, result) = match what {
                    Truncation::Zlib => self.read_all(ZlibDecoder::new(body), hint),
                    _ => self.read_all(DeflateDecoder::new(body), hint),
                };
                self.check_budget(&data)?;
                if !salvageable(&data) {
                    continue;
                }
                if result.as_ref().is_err_and(cut_short) {
                    return Err(ParseError::truncated(what, body.len()));
                }
                return Ok((
                    data,
                    Some(format!(
                        "gzip stream was invalid ({detail}); read its body as {}",
                        reading(what)
                    )),
                ));
            }
        }
        Err(ParseError::CorruptCompression {
            format: "gzip",
            detail,
        })
    }

    fn unzip(&mut self, bytes: &[u8], place: &Place<'_>) -> Result<(), ParseError> {
        let mut archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
            Ok(a) => a,
            Err(e) => return self.unzip_stream(bytes, place, &e.to_string()),
        };
        let members = archive.len();
        if members > self.limits.max_zip_members {
            return Err(ParseError::TooManyZipMembers {
                limit: self.limits.max_zip_members,
            });
        }
        let before = self.parts_out();
        let mut found = 0usize;
        let mut first_error = None;
        let mut not_a_report = None;
        for i in 0..members {
            let mut file = match archive.by_index(i) {
                Ok(f) => f,
                Err(e) => {
                    first_error.get_or_insert(ParseError::CorruptCompression {
                        format: "zip",
                        detail: e.to_string(),
                    });
                    continue;
                }
            };
            if file.is_dir() {
                continue;
            }
            let name = file.name().to_owned();
            if is_junk_member(&name) {
                continue;
            }
            if file.size() > self.budget_left() {
                return Err(ParseError::DecompressedTooLarge {
                    limit: self.limits.max_decompressed_bytes,
                });
            }
            let hint = usize::try_from(file.size()).unwrap_or(0);
            let (data, result) = self.read_all(&mut file, hint);
            self.check_budget(&data)?;
            if let Err(e) = result {
                let err = if cut_short(&e) && salvageable(&data) {
                    let start = file
                        .data_start()
                        .and_then(|s| usize::try_from(s).ok())
                        .unwrap_or(bytes.len());
                    ParseError::truncated(Truncation::ZipMember, bytes.len().saturating_sub(start))
                } else {
                    ParseError::CorruptCompression {
                        format: "zip",
                        detail: e.to_string(),
                    }
                };
                self.fail(&member_place(place, &name), err);
                found = found.saturating_add(1);
                continue;
            }
            found = found.saturating_add(1);
            let p = member_place(place, &name);
            if let Err(e) = self.payload(&data, &p) {
                self.member_failed(&p, e, &mut not_a_report);
            }
        }
        if found == 0 {
            return Err(first_error
                .unwrap_or_else(|| ParseError::NotAReport("zip archive is empty".to_owned())));
        }
        self.archive_outcome(before, not_a_report)
    }

    /// Records a member that failed, except one that is plainly not a report (a readme, a
    /// logo): that is set aside, like a non-report attachment of an email.
    fn member_failed(
        &mut self,
        place: &Place<'_>,
        error: ParseError,
        not_a_report: &mut Option<ParseError>,
    ) {
        if error.is_not_a_report() && !matches!(error, ParseError::Placeholder(_)) {
            not_a_report.get_or_insert(error);
        } else {
            self.fail(place, error);
        }
    }

    /// An archive that yielded neither a report nor a failure is not a report itself.
    fn archive_outcome(
        &self,
        before: usize,
        not_a_report: Option<ParseError>,
    ) -> Result<(), ParseError> {
        match not_a_report {
            Some(e) if self.parts_out() == before => Err(e),
            _ => Ok(()),
        }
    }

    /// Reads local file headers in order, for archives whose central directory is missing
    /// or damaged.
    fn unzip_stream(
        &mut self,
        bytes: &[u8],
        place: &Place<'_>,
        why: &str,
    ) -> Result<(), ParseError> {
        let before = self.parts_out();
        let mut cursor = Cursor::new(bytes);
        let mut found = 0usize;
        let mut not_a_report = None;
        loop {
            if found >= self.limits.max_zip_members {
                return Err(ParseError::TooManyZipMembers {
                    limit: self.limits.max_zip_members,
                });
            }
            let header_start = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
            let mut file = match zip::read::read_zipfile_from_stream(&mut cursor) {
                Ok(Some(f)) => f,
                // A local header cut short after whole members: the archive lost its end.
                Err(zip::result::ZipError::Io(e)) if cut_short(&e) && found > 0 => {
                    let err = ParseError::truncated(
                        Truncation::ZipMember,
                        bytes.len().saturating_sub(header_start),
                    );
                    self.fail(place, err);
                    break;
                }
                Ok(None) | Err(_) => break,
            };
            let name = file.name().to_owned();
            if file.is_dir() || is_junk_member(&name) {
                continue;
            }
            let declared = file.size();
            let (data, result) = self.read_all(&mut file, 0);
            self.check_budget(&data)?;
            found = found.saturating_add(1);
            // Deflate data cut short ends early; stored data just stops before its size.
            let short = u64::try_from(data.len()).unwrap_or(u64::MAX) < declared;
            if result.is_err_and(|e| cut_short(&e) || short) && salvageable(&data) {
                let err = ParseError::truncated(
                    Truncation::ZipMember,
                    bytes.len().saturating_sub(header_start),
                );
                self.fail(&member_place(place, &name), err);
                continue;
            }
            let mut p = member_place(place, &name);
            p.warnings.push(format!(
                "zip central directory unreadable ({why}); read member by member"
            ));
            if let Err(e) = self.payload(&data, &p) {
                self.member_failed(&p, e, &mut not_a_report);
            }
        }
        if found == 0 {
            return Err(ParseError::CorruptCompression {
                format: "zip",
                detail: why.to_owned(),
            });
        }
        self.archive_outcome(before, not_a_report)
    }
}

/// The layer inside a decompressed payload: deeper, and no longer declared as anything.
fn inner<'a>(place: &Place<'a>) -> Place<'a> {
    Place {
        layer: place.layer.saturating_add(1),
        declared_gzip: false,
        ..place.clone()
    }
}

/// How a fallback reading of a gzip-declared part is named in its warning.
fn reading(what: Truncation) -> &'static str {
    match what {
        Truncation::Zlib => "zlib",
        _ => "raw deflate",
    }
}

/// Whether a decompressor failed because its input ended before the stream did.
fn cut_short(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::UnexpectedEof
}

/// Whether data read from a damaged stream is worth parsing: a document or a container,
/// not noise. Garbage inflates to runs such as `zzzz…`, which would pass for base64.
fn salvageable(data: &[u8]) -> bool {
    !matches!(
        sniff(data),
        Sniffed::Empty | Sniffed::Unknown | Sniffed::Base64
    )
}

fn member_place<'a>(place: &Place<'a>, name: &str) -> Place<'a> {
    Place {
        layer: place.layer.saturating_add(1),
        label: format!("{}/{}", place.label, name),
        name: Some(std::borrow::Cow::Owned(name.to_owned())),
        declared_gzip: name_declares_gzip(name),
        ..place.clone()
    }
}

fn is_junk_member(name: &str) -> bool {
    name.starts_with("__MACOSX/") || base_name(name).starts_with("._")
}

pub(crate) fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// The deflate body of a gzip member: skips the header and its optional fields.
fn gzip_body(b: &[u8]) -> Option<&[u8]> {
    if b.len() < 18 {
        return None;
    }
    let flags = b[3];
    let mut i: usize = 10;
    if flags & 0x04 != 0 {
        let xlen = usize::from(u16::from_le_bytes([*b.get(10)?, *b.get(11)?]));
        i = i.checked_add(2)?.checked_add(xlen)?;
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            let nul = memchr::memchr(0, b.get(i..)?)?;
            i = i.checked_add(nul)?.checked_add(1)?;
        }
    }
    if flags & 0x02 != 0 {
        i = i.checked_add(2)?;
    }
    b.get(i..)
}

fn describe_unknown(b: &[u8]) -> String {
    let head: String = String::from_utf8_lossy(&b[..b.len().min(24)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!(
        "unrecognised content ({} bytes, starts with {head:?})",
        b.len()
    )
}
