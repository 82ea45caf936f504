//! Typed parse errors. Each has a stable [`reason code`](ParseError::code) used for
//! quarantine reasons, metrics and the CLI.

use std::fmt;

/// Why an input, or one part of it, could not be turned into a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("input is empty")]
    Empty,
    #[error("input is {size} bytes, over the limit of {limit} bytes")]
    InputTooLarge { size: u64, limit: u64 },
    #[error("decompressed data exceeds the limit of {limit} bytes")]
    DecompressedTooLarge { limit: u64 },
    #[error("compression is nested more than {limit} layers deep")]
    CompressionTooDeep { limit: usize },
    #[error("corrupt {format} data: {detail}")]
    CorruptCompression {
        format: &'static str,
        detail: String,
    },
    /// A container or document that stops before its end: what arrived is a prefix of a
    /// report, never stored as if it were the whole one.
    #[error("the {what} ends early after {bytes} of its bytes: the report is incomplete")]
    Truncated { what: Truncation, bytes: u64 },
    #[error("zip archive has more than {limit} members")]
    TooManyZipMembers { limit: usize },
    #[error("MIME structure is nested more than {limit} levels deep")]
    MimeTooDeep { limit: usize },
    #[error("message has more than {limit} attachments")]
    TooManyAttachments { limit: usize },
    #[error("not a report: {0}")]
    NotAReport(String),
    #[error("message is a delivery status notification (bounce), not a report")]
    Bounce,
    #[error("message is an automatic reply, not a report")]
    AutoReply,
    #[error("report body is the placeholder text {0:?}, not a report")]
    Placeholder(String),
    #[error("XML is not a DMARC aggregate report: {0}")]
    NotDmarcXml(String),
    #[error("DMARC aggregate report has no {0}")]
    MissingField(&'static str),
    #[error("DMARC aggregate report has an invalid {field}: {detail}")]
    InvalidField { field: &'static str, detail: String },
    #[error("report has more than {limit} records")]
    TooManyRecords { limit: usize },
    #[error("invalid TLS-RPT JSON: {0}")]
    InvalidJson(String),
    #[error("TLS report has no {0}")]
    TlsMissingField(&'static str),
    #[error("TLS report has an invalid {field}: {detail}")]
    TlsInvalidField { field: &'static str, detail: String },
}

/// What was cut short in a [`ParseError::Truncated`] input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    Gzip,
    ZipMember,
    Deflate,
    Zlib,
    Xml,
    Json,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Truncation::Gzip => "gzip stream",
            Truncation::ZipMember => "zip member",
            Truncation::Deflate => "deflate stream",
            Truncation::Zlib => "zlib stream",
            Truncation::Xml => "XML document",
            Truncation::Json => "JSON document",
        })
    }
}

impl ParseError {
    /// A [`ParseError::Truncated`] for `what`, whose available part is `bytes` long.
    pub(crate) fn truncated(what: Truncation, bytes: usize) -> Self {
        ParseError::Truncated {
            what,
            bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
        }
    }

    /// A short, stable, kebab-case reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::InputTooLarge { .. } => "too-large",
            ParseError::DecompressedTooLarge { .. } => "decompression-limit",
            ParseError::CompressionTooDeep { .. } => "compression-too-deep",
            ParseError::CorruptCompression { .. } => "corrupt-compression",
            ParseError::Truncated { .. } => "truncated",
            ParseError::TooManyZipMembers { .. } => "zip-too-many-members",
            ParseError::MimeTooDeep { .. } => "mime-too-deep",
            ParseError::TooManyAttachments { .. } => "too-many-attachments",
            ParseError::NotAReport(_) => "not-a-report",
            ParseError::Bounce => "bounce",
            ParseError::AutoReply => "auto-reply",
            ParseError::Placeholder(_) => "placeholder",
            ParseError::NotDmarcXml(_) => "not-dmarc-xml",
            ParseError::MissingField(_) => "dmarc-missing-field",
            ParseError::InvalidField { .. } => "dmarc-invalid-field",
            ParseError::TooManyRecords { .. } => "too-many-records",
            ParseError::InvalidJson(_) => "invalid-json",
            ParseError::TlsMissingField(_) => "tlsrpt-missing-field",
            ParseError::TlsInvalidField { .. } => "tlsrpt-invalid-field",
        }
    }

    /// True when the input is recognisably not a report at all (bounce, auto-reply, spam,
    /// placeholder), as opposed to a report we failed to read.
    pub fn is_not_a_report(&self) -> bool {
        matches!(
            self,
            ParseError::NotAReport(_)
                | ParseError::Bounce
                | ParseError::AutoReply
                | ParseError::Placeholder(_)
        )
    }
}
