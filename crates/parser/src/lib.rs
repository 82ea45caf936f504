//! Report parsing: raw bytes in, typed reports out.
//!
//! **API boundary.** [`Parser::parse`] takes anything a reporting mailbox or a backfill
//! directory holds — a whole RFC 5322 email (attachments gzip, zip, zlib, plain XML or
//! JSON, base64 or quoted-printable, forwarded `message/rfc822`, wrong or missing content
//! types) or a bare `.xml`, `.xml.gz`, `.zip`, `.json`, `.json.gz` file — and returns every
//! [`Report`] it contains plus a typed [`ParseError`] for each part that failed. Formats are
//! detected from content (magic bytes), never from declared types or file names; a part
//! declared as gzip that is not gzip is only also tried as raw deflate and zlib, and names
//! otherwise only fill gaps the report itself leaves. A report cut short (a compressed
//! stream, zip member or document that ends early) is [`ParseError::Truncated`], never a
//! report of what came before the cut.
//!
//! **Architecture invariants.** No IO: input is a byte slice, output is data. No database,
//! network, async runtime or logging framework. Every decompression, archive, MIME level,
//! record count, kept string and TLS-RPT failure-details list is bounded by [`Limits`]; no
//! input makes the parser panic or allocate without bound, and no length or count read from
//! the input can overflow (the crate denies unchecked arithmetic). Entities from a DTD are
//! never expanded.

#![deny(clippy::arithmetic_side_effects)]

mod arf;
mod caps;
mod dmarc;
mod email;
mod error;
mod hints;
mod mime_guard;
mod payload;
mod text;
mod tlsrpt;
mod warnings;

pub use error::{ParseError, Truncation};
use sealwatch_model::Report;

/// Hard limits that bound the work and memory one input may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest raw input accepted (a whole email or file).
    pub max_input_bytes: u64,
    /// Total bytes all decompression of one input may produce.
    pub max_decompressed_bytes: u64,
    /// Records (DMARC) per report.
    pub max_records: usize,
    /// Nesting of multiparts and forwarded messages.
    pub max_mime_depth: usize,
    /// Attachments per email, counted across nested messages.
    pub max_attachments: usize,
    /// Compression layers around one payload (gzip in zip in gzip …).
    pub max_compression_layers: usize,
    /// Members read from one zip archive.
    pub max_zip_members: usize,
    /// Bytes kept of any one string of a report (names, ids, comments, TLS-RPT
    /// `additional-information`, …). Longer values are cut on a character boundary and the
    /// report gets a `field-truncated` warning.
    pub max_field_bytes: usize,
    /// TLS-RPT `failure-details` rows kept per policy. Further rows are dropped with a
    /// `failure-details-dropped` warning; the policy's summary counts stay as reported.
    pub max_failure_details: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 << 20,
            max_decompressed_bytes: 128 << 20,
            max_records: 2_000_000,
            max_mime_depth: 8,
            max_attachments: 64,
            max_compression_layers: 4,
            max_zip_members: 64,
            max_field_bytes: 4096,
            max_failure_details: 1000,
        }
    }
}

/// One part of an input that could not be read, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFailure {
    /// Attachment or archive member name, or a positional label such as `part 3`.
    pub part: String,
    pub error: ParseError,
}

/// Everything found in one input.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub reports: Vec<Report>,
    /// Parts that looked like reports but failed. Non-report parts (the human-readable
    /// text of a report email) are not failures.
    pub failures: Vec<PartFailure>,
}

/// The report parser. Cheap to construct; holds only its limits.
#[derive(Debug, Clone, Default)]
pub struct Parser {
    limits: Limits,
}

impl Parser {
    pub fn new(limits: Limits) -> Self {
        Parser { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses one input. `name` (a file or attachment name) is used only as a hint.
    ///
    /// Returns `Err` when the input yields no report at all: the single failure if there
    /// was exactly one, or why the input is not a report. When some parts parse and others
    /// fail, returns `Ok` with both.
    pub fn parse(&self, input: &[u8], name: Option<&str>) -> Result<Parsed, ParseError> {
        let size = u64::try_from(input.len()).unwrap_or(u64::MAX);
        if size > self.limits.max_input_bytes {
            return Err(ParseError::InputTooLarge {
                size,
                limit: self.limits.max_input_bytes,
            });
        }
        let run = payload::Run::new(&self.limits);
        let outcome = run.top(input, name);
        match outcome {
            Err(e) => Err(e),
            Ok(parsed) if parsed.reports.is_empty() => {
                let mut failures = parsed.failures;
                match failures.len() {
                    0 => Err(ParseError::NotAReport("no report found".to_owned())),
                    1 => Err(failures.remove(0).error),
                    _ => {
                        // Prefer a real failure over "not a report" parts.
                        let idx = failures
                            .iter()
                            .position(|f| !f.error.is_not_a_report())
                            .unwrap_or(0);
                        Err(failures.remove(idx).error)
                    }
                }
            }
            Ok(parsed) => Ok(parsed),
        }
    }
}
