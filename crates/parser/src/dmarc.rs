//! DMARC aggregate XML: a tolerant, schema-driven scanner.
//!
//! Real reports break XML in many small ways (unescaped `<` in values, broken closing
//! tags, stray unclosed elements, control characters, wrong encodings). A strict XML parser
//! rejects them; parsedmarc recovers with lxml. Here the scanner knows the report schema:
//! it matches elements by local name in any namespace, reads a known leaf element's text up
//! to its closing tag (or to the next element the schema knows), ignores elements it does
//! not know, and closes containers whose end tag is missing. Nothing from a DTD is ever
//! expanded, so entity bombs have no effect. A damaged record is dropped with a warning;
//! the rest of the report survives. A document that ends while a report element is still
//! open was cut short: it is [`ParseError::Truncated`], never a report of the records
//! before the cut. Anything after the closed report is ignored.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use memchr::{memchr, memchr2, memmem};
use sealwatch_model::{
    AggregateRecord, AggregateReport, AuthResults, Disposition, DkimAuthResult, DkimResult,
    DmarcResult, DomainName, Identifiers, Leniency, MaybeIp, OverrideType, PolicyAction,
    PolicyEvaluated, PolicyOverrideReason, PolicyPublished, ReportId, SpfAuthResult, SpfResult,
    SpfScope, Submitter,
};
use sealwatch_model::{Alignment, DiscoveryMethod};

use crate::Limits;
use crate::error::{ParseError, Truncation};
use crate::hints::Hints;
use crate::text::{Decoded, TextRepairs, clean_xml_text, decode_document};
use crate::warnings::Warnings;

/// Bytes of the root element name kept for the "not a DMARC report" message.
const MAX_SHOWN_NAME: usize = 64;

/// DKIM results, SPF results and override reasons kept per record (real records have a
/// handful). Without a bound, one unclosed `<record>` of 500 MiB of `<dkim>` elements
/// grew to 17 million results (2.6 GB).
const MAX_PER_RECORD: usize = 100;

/// Containers of the aggregate report schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    Feedback,
    Metadata,
    DateRange,
    Policy,
    Record,
    Row,
    PolicyEvaluated,
    Reason,
    Identifiers,
    AuthResults,
    AuthDkim,
    AuthSpf,
}

impl Ctx {
    fn tag(self) -> &'static str {
        match self {
            Ctx::Root => "",
            Ctx::Feedback => "feedback",
            Ctx::Metadata => "report_metadata",
            Ctx::DateRange => "date_range",
            Ctx::Policy => "policy_published",
            Ctx::Record => "record",
            Ctx::Row => "row",
            Ctx::PolicyEvaluated => "policy_evaluated",
            Ctx::Reason => "reason",
            Ctx::Identifiers => "identifiers",
            Ctx::AuthResults => "auth_results",
            Ctx::AuthDkim => "dkim",
            Ctx::AuthSpf => "spf",
        }
    }
}

/// Leaf elements of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Version,
    OrgName,
    Email,
    ExtraContact,
    ReportId,
    Error,
    Generator,
    Begin,
    End,
    PDomain,
    Adkim,
    Aspf,
    P,
    Sp,
    Np,
    Pct,
    Fo,
    Testing,
    DiscoveryMethod,
    SourceIp,
    Count,
    Disposition,
    PeDkim,
    PeSpf,
    ReasonType,
    ReasonComment,
    EnvelopeTo,
    EnvelopeFrom,
    HeaderFrom,
    AuthDomain,
    AuthSelector,
    AuthResult,
    AuthHuman,
    AuthScope,
}

enum Action {
    Push(Ctx),
    Leaf(Field),
    Extension,
}

fn child(ctx: Ctx, name: &[u8]) -> Option<Action> {
    use Action::{Leaf, Push};
    Some(match (ctx, name) {
        (Ctx::Root, b"feedback") => Push(Ctx::Feedback),
        (Ctx::Root | Ctx::Feedback, b"version") => Leaf(Field::Version),
        (Ctx::Root | Ctx::Feedback, b"report_metadata") => Push(Ctx::Metadata),
        (Ctx::Root | Ctx::Feedback, b"policy_published") => Push(Ctx::Policy),
        (Ctx::Root | Ctx::Feedback, b"record") => Push(Ctx::Record),
        (Ctx::Root | Ctx::Feedback, b"extension") => Action::Extension,
        (Ctx::Metadata, b"org_name") => Leaf(Field::OrgName),
        (Ctx::Metadata, b"email") => Leaf(Field::Email),
        (Ctx::Metadata, b"extra_contact_info") => Leaf(Field::ExtraContact),
        (Ctx::Metadata, b"report_id") => Leaf(Field::ReportId),
        (Ctx::Metadata, b"error") => Leaf(Field::Error),
        (Ctx::Metadata, b"generator") => Leaf(Field::Generator),
        (Ctx::Metadata, b"date_range") => Push(Ctx::DateRange),
        (Ctx::DateRange, b"begin") => Leaf(Field::Begin),
        (Ctx::DateRange, b"end") => Leaf(Field::End),
        (Ctx::Policy, b"domain") => Leaf(Field::PDomain),
        (Ctx::Policy, b"adkim") => Leaf(Field::Adkim),
        (Ctx::Policy, b"aspf") => Leaf(Field::Aspf),
        (Ctx::Policy, b"p") => Leaf(Field::P),
        (Ctx::Policy, b"sp") => Leaf(Field::Sp),
        (Ctx::Policy, b"np") => Leaf(Field::Np),
        (Ctx::Policy, b"pct") => Leaf(Field::Pct),
        (Ctx::Policy, b"fo") => Leaf(Field::Fo),
        (Ctx::Policy, b"testing") => Leaf(Field::Testing),
        (Ctx::Policy, b"discovery_method") => Leaf(Field::DiscoveryMethod),
        (Ctx::Record, b"row") => Push(Ctx::Row),
        (Ctx::Record, b"identifiers") => Push(Ctx::Identifiers),
        (Ctx::Record, b"auth_results") => Push(Ctx::AuthResults),
        (Ctx::Row, b"source_ip") => Leaf(Field::SourceIp),
        (Ctx::Row, b"count") => Leaf(Field::Count),
        (Ctx::Row, b"policy_evaluated") => Push(Ctx::PolicyEvaluated),
        (Ctx::PolicyEvaluated, b"disposition") => Leaf(Field::Disposition),
        (Ctx::PolicyEvaluated, b"dkim") => Leaf(Field::PeDkim),
        (Ctx::PolicyEvaluated, b"spf") => Leaf(Field::PeSpf),
        (Ctx::PolicyEvaluated, b"reason") => Push(Ctx::Reason),
        (Ctx::Reason, b"type") => Leaf(Field::ReasonType),
        (Ctx::Reason, b"comment") => Leaf(Field::ReasonComment),
        (Ctx::Identifiers, b"envelope_to") => Leaf(Field::EnvelopeTo),
        (Ctx::Identifiers, b"envelope_from") => Leaf(Field::EnvelopeFrom),
        (Ctx::Identifiers, b"header_from") => Leaf(Field::HeaderFrom),
        (Ctx::AuthResults, b"dkim") => Push(Ctx::AuthDkim),
        (Ctx::AuthResults, b"spf") => Push(Ctx::AuthSpf),
        (Ctx::AuthDkim | Ctx::AuthSpf, b"domain") => Leaf(Field::AuthDomain),
        (Ctx::AuthDkim, b"selector") => Leaf(Field::AuthSelector),
        (Ctx::AuthDkim | Ctx::AuthSpf, b"result") => Leaf(Field::AuthResult),
        (Ctx::AuthDkim | Ctx::AuthSpf, b"human_result") => Leaf(Field::AuthHuman),
        (Ctx::AuthSpf, b"scope") => Leaf(Field::AuthScope),
        _ => return None,
    })
}

/// Every element name the schema knows; a leaf value ends early at any of these.
fn is_known_element(name: &[u8]) -> bool {
    matches!(
        name,
        b"feedback"
            | b"version"
            | b"report_metadata"
            | b"org_name"
            | b"email"
            | b"extra_contact_info"
            | b"report_id"
            | b"date_range"
            | b"begin"
            | b"end"
            | b"error"
            | b"generator"
            | b"policy_published"
            | b"domain"
            | b"adkim"
            | b"aspf"
            | b"p"
            | b"sp"
            | b"np"
            | b"pct"
            | b"fo"
            | b"testing"
            | b"discovery_method"
            | b"record"
            | b"row"
            | b"source_ip"
            | b"count"
            | b"policy_evaluated"
            | b"disposition"
            | b"dkim"
            | b"spf"
            | b"reason"
            | b"type"
            | b"comment"
            | b"identifiers"
            | b"envelope_to"
            | b"envelope_from"
            | b"header_from"
            | b"auth_results"
            | b"selector"
            | b"result"
            | b"human_result"
            | b"scope"
            | b"extension"
    )
}

#[inline]
fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

#[inline]
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

/// Reads an element name starting at `start`; returns its end.
#[inline]
fn name_end(b: &[u8], start: usize) -> usize {
    let tail = b.get(start..).unwrap_or_default();
    let len = tail
        .iter()
        .position(|&c| !is_name_char(c))
        .unwrap_or(tail.len());
    start.saturating_add(len)
}

/// Strips a namespace prefix (`dmarc:record` → `record`).
#[inline]
fn local(name: &[u8]) -> &[u8] {
    name.rsplit(|&c| c == b':').next().unwrap_or(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeafEnd {
    Closed,
    /// Ended at another element or at end of input.
    Unclosed,
}

#[derive(Default)]
struct AuthBuilder<'a> {
    domain: Option<Cow<'a, str>>,
    selector: Option<Cow<'a, str>>,
    result: Option<Cow<'a, str>>,
    human: Option<Cow<'a, str>>,
    scope: Option<Cow<'a, str>>,
}

#[derive(Default)]
struct RecordBuilder<'a> {
    source_ip: Option<Cow<'a, str>>,
    count: Option<Cow<'a, str>>,
    disposition: Option<Cow<'a, str>>,
    pe_dkim: Option<Cow<'a, str>>,
    pe_spf: Option<Cow<'a, str>>,
    reasons: Vec<PolicyOverrideReason>,
    reason_type: Option<Cow<'a, str>>,
    reason_comment: Option<Cow<'a, str>>,
    envelope_to: Option<Cow<'a, str>>,
    envelope_from: Option<Cow<'a, str>>,
    header_from: Option<Cow<'a, str>>,
    dkim: Vec<DkimAuthResult>,
    spf: Vec<SpfAuthResult>,
    auth: AuthBuilder<'a>,
}

#[derive(Default)]
struct MetaBuilder<'a> {
    version: Option<Cow<'a, str>>,
    org_name: Option<Cow<'a, str>>,
    email: Option<Cow<'a, str>>,
    extra_contact: Option<Cow<'a, str>>,
    report_id: Option<Cow<'a, str>>,
    errors: Vec<String>,
    generator: Option<Cow<'a, str>>,
    begin: Option<Cow<'a, str>>,
    end: Option<Cow<'a, str>>,
    policy: PolicyPublished,
    policy_domain_raw: Option<Cow<'a, str>>,
}

struct Scanner<'a, 'l> {
    doc: &'a str,
    limits: &'l Limits,
    stack: Vec<Ctx>,
    meta: MetaBuilder<'a>,
    record: RecordBuilder<'a>,
    records: Vec<AggregateRecord>,
    record_index: usize,
    warnings: Warnings,
    repairs: TextRepairs,
    namespace: Option<String>,
    root_name: Option<String>,
    saw_schema: bool,
    saw_feedback: bool,
    extensions: Vec<String>,
    /// Length of the document as received, for the truncation error.
    input_len: usize,
    /// The input ended inside the end tag of an open element (`</feedback`).
    ended_in_end_tag: bool,
}

/// Parses a DMARC aggregate report document.
pub(crate) fn parse_aggregate(
    bytes: &[u8],
    limits: &Limits,
    hints: &Hints<'_>,
) -> Result<AggregateReport, ParseError> {
    let (doc, decoded) = decode_document(bytes);
    let mut scanner = Scanner {
        doc: &doc,
        limits,
        stack: Vec::with_capacity(8),
        meta: MetaBuilder::default(),
        record: RecordBuilder::default(),
        records: Vec::new(),
        record_index: 0,
        warnings: Warnings::default(),
        repairs: TextRepairs::default(),
        namespace: None,
        root_name: None,
        saw_schema: false,
        saw_feedback: false,
        extensions: Vec::new(),
        input_len: bytes.len(),
        ended_in_end_tag: false,
    };
    scanner.stack.push(Ctx::Root);
    match decoded {
        Decoded::Utf8 => {}
        Decoded::Utf16 => scanner.warnings.push("document was UTF-16; decoded"),
        Decoded::Windows1252 => scanner
            .warnings
            .push("document was not valid UTF-8; decoded as Windows-1252"),
    }
    scanner.scan()?;
    scanner.finish(hints)
}

impl<'a> Scanner<'a, '_> {
    fn scan(&mut self) -> Result<(), ParseError> {
        let doc = self.doc;
        let b = doc.as_bytes();
        let len = b.len();
        let mut pos = 0;
        // Positions are below `len`, so adding a few bytes to one cannot overflow; the
        // additions saturate only to satisfy the crate's arithmetic lint.
        while let Some(off) = memchr(b'<', &b[pos..]) {
            let lt = pos.saturating_add(off);
            let Some(&next) = b.get(lt.saturating_add(1)) else {
                break;
            };
            match next {
                b'!' => {
                    if b[lt..].starts_with(b"<!--") {
                        pos = find(b, lt.saturating_add(4), b"-->")
                            .map_or(len, |i| i.saturating_add(3));
                    } else if b[lt..].starts_with(b"<![CDATA[") {
                        pos = find(b, lt.saturating_add(9), b"]]>")
                            .map_or(len, |i| i.saturating_add(3));
                    } else {
                        self.warnings
                            .push("DOCTYPE or declaration ignored (entities are never expanded)");
                        pos = skip_declaration(b, lt.saturating_add(2));
                    }
                }
                b'?' => {
                    pos = find(b, lt.saturating_add(2), b"?>").map_or(len, |i| i.saturating_add(2))
                }
                b'/' => {
                    let start = lt.saturating_add(2);
                    let ne = name_end(b, start);
                    let name = local(&b[start..ne]);
                    pos = match memchr(b'>', &b[ne..]) {
                        Some(i) => ne.saturating_add(i).saturating_add(1),
                        None => {
                            self.ended_in_end_tag = self.stack.len() > 1;
                            len
                        }
                    };
                    self.end_tag(name)?;
                }
                c if is_name_start(c) => {
                    let start = lt.saturating_add(1);
                    let ne = name_end(b, start);
                    // `attrs_end` is where the attributes end: at the `>`, or at the `<` or
                    // end of input that cut a malformed tag short (always a char boundary).
                    let stop = memchr2(b'>', b'<', &b[ne..]).map(|i| ne.saturating_add(i));
                    let (attrs_end, tag_end, self_closing) = match stop {
                        Some(gt) if b[gt] == b'>' => (
                            gt,
                            gt.saturating_add(1),
                            gt > start && b[gt.saturating_sub(1)] == b'/',
                        ),
                        Some(at) => {
                            self.warnings.push("malformed start tag repaired");
                            (at, at, false)
                        }
                        None => (len, len, false),
                    };
                    let full = &b[start..ne];
                    let name = local(full);
                    if self.root_name.is_none() {
                        // Only for the error message: a "name" can be the whole document.
                        let shown = &full[..full.len().min(MAX_SHOWN_NAME)];
                        self.root_name = Some(String::from_utf8_lossy(shown).into_owned());
                    }
                    if name == b"feedback" && self.namespace.is_none() {
                        let prefix = full.strip_suffix(name).unwrap_or_default();
                        self.namespace = xmlns(&doc[ne..attrs_end], prefix);
                    }
                    pos = self.start_tag(name, self_closing, tag_end)?;
                }
                _ => pos = lt.saturating_add(1),
            }
        }
        // Cut short only once it is known to be a report; a lone `<feedback>` is not one.
        if self.saw_schema && (self.stack.len() > 1 || self.ended_in_end_tag) {
            return Err(ParseError::truncated(Truncation::Xml, self.input_len));
        }
        while self.stack.len() > 1 {
            self.pop()?;
        }
        Ok(())
    }

    /// Handles a start tag; returns where scanning continues.
    fn start_tag(
        &mut self,
        name: &[u8],
        self_closing: bool,
        tag_end: usize,
    ) -> Result<usize, ParseError> {
        // Find the innermost open container that accepts this element; close any inner
        // ones whose end tag is missing.
        let mut depth = self.stack.len();
        let action = loop {
            let Some(inner) = depth.checked_sub(1) else {
                return Ok(tag_end);
            };
            if let Some(action) = child(self.stack[inner], name) {
                break action;
            }
            // Only structural elements may close containers left open; `version` and
            // `extension` also appear inside records and extensions with other meanings.
            if matches!(name, b"extension" | b"version") {
                return Ok(tag_end);
            }
            depth = inner;
        };
        while self.stack.len() > depth
            && let Some(&ctx) = self.stack.last()
        {
            self.warnings
                .push(format!("missing </{}> end tag repaired", ctx.tag()));
            self.pop()?;
        }
        match action {
            Action::Push(ctx) => {
                self.saw_schema |= ctx != Ctx::Feedback;
                self.saw_feedback |= ctx == Ctx::Feedback;
                self.stack.push(ctx);
                if self_closing {
                    self.pop()?;
                }
                Ok(tag_end)
            }
            Action::Leaf(field) => {
                self.saw_schema = true;
                if self_closing {
                    self.set(field, Cow::Borrowed(""));
                    return Ok(tag_end);
                }
                let (value, next) = self.read_leaf(tag_end, name);
                self.set(field, value);
                Ok(next)
            }
            Action::Extension => {
                if self_closing {
                    return Ok(tag_end);
                }
                let b = self.doc.as_bytes();
                let mut search = tag_end;
                let end = loop {
                    match find(b, search, b"extension>") {
                        Some(i) if matches!(i.checked_sub(1).map(|j| b[j]), Some(b'/' | b':')) => {
                            // The end tag's `<`, searched only inside the element: a
                            // broken `/extension>` without one must not reach back into
                            // the start tag.
                            let lt = memchr::memrchr(b'<', &b[tag_end..i])
                                .map_or(i.saturating_sub(1), |j| tag_end.saturating_add(j));
                            break Some((lt, i.saturating_add(10)));
                        }
                        Some(i) => search = i.saturating_add(10),
                        None => break None,
                    }
                };
                match end {
                    Some((lt, next)) => {
                        self.extensions
                            .push(self.doc[tag_end..lt].trim().to_owned());
                        Ok(next)
                    }
                    None => {
                        self.warnings.push("unterminated <extension> ignored");
                        Ok(b.len())
                    }
                }
            }
        }
    }

    fn end_tag(&mut self, name: &[u8]) -> Result<(), ParseError> {
        let Some(idx) = self.stack.iter().rposition(|c| c.tag().as_bytes() == name) else {
            return Ok(()); // end tag of an element we ignore
        };
        if idx == 0 {
            return Ok(());
        }
        while self.stack.len() > idx.saturating_add(1)
            && let Some(&ctx) = self.stack.last()
        {
            self.warnings
                .push(format!("missing </{}> end tag repaired", ctx.tag()));
            self.pop()?;
        }
        self.pop()
    }

    /// Reads a leaf value starting after its start tag. Stops at the matching end tag, or
    /// (with a warning) at the end tag of something else or at an element the schema knows.
    fn read_leaf(&mut self, start: usize, name: &[u8]) -> (Cow<'a, str>, usize) {
        let doc = self.doc;
        let b = doc.as_bytes();
        let mut i = start;
        let mut has_cdata = false;
        let mut stray_lt = false;
        let (content_end, next, how) = loop {
            let Some(off) = memchr(b'<', &b[i..]) else {
                break (b.len(), b.len(), LeafEnd::Unclosed);
            };
            // Below `b.len()`: the saturating additions never saturate.
            let lt = i.saturating_add(off);
            let after_lt = lt.saturating_add(1);
            match b.get(after_lt) {
                Some(b'/') => {
                    let start = lt.saturating_add(2);
                    let ne = name_end(b, start);
                    if local(&b[start..ne]) == name {
                        let next = memchr(b'>', &b[ne..])
                            .map_or(b.len(), |j| ne.saturating_add(j).saturating_add(1));
                        break (lt, next, LeafEnd::Closed);
                    }
                    break (lt, lt, LeafEnd::Unclosed);
                }
                Some(b'!') if b[lt..].starts_with(b"<![CDATA[") => {
                    has_cdata = true;
                    i = find(b, lt.saturating_add(9), b"]]>")
                        .map_or(b.len(), |j| j.saturating_add(3));
                }
                Some(&c) if is_name_start(c) => {
                    let ne = name_end(b, after_lt);
                    let boundary =
                        matches!(b.get(ne), Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n'));
                    if boundary && is_known_element(local(&b[after_lt..ne])) {
                        break (lt, lt, LeafEnd::Unclosed);
                    }
                    stray_lt = true;
                    i = after_lt;
                }
                _ => {
                    stray_lt = true;
                    i = after_lt;
                }
            }
        };
        let mut raw = &doc[start..content_end];
        let tag = String::from_utf8_lossy(name);
        if how == LeafEnd::Unclosed {
            self.warnings
                .push(format!("<{tag}> was not closed properly; value recovered"));
            // kddi-style `<report_id>x/report_id>`: drop the broken end tag text.
            let trimmed = raw.trim_end();
            if let Some(stripped) = trimmed
                .strip_suffix('>')
                .and_then(|s| s.strip_suffix(tag.as_ref()))
                .and_then(|s| s.strip_suffix('/'))
            {
                raw = stripped;
            }
        }
        if stray_lt {
            self.warnings
                .push(format!("unescaped '<' in <{tag}> value kept as text"));
        }
        let value = if has_cdata {
            Cow::Owned(cdata_text(raw, &mut self.repairs))
        } else {
            clean_xml_text(raw, &mut self.repairs)
        };
        (value, next)
    }

    fn set(&mut self, field: Field, value: Cow<'a, str>) {
        fn put<'a>(
            slot: &mut Option<Cow<'a, str>>,
            value: Cow<'a, str>,
            w: &mut Warnings,
            tag: &str,
        ) {
            if slot.is_some() {
                w.push(format!("repeated <{tag}> ignored"));
            } else {
                *slot = Some(value);
            }
        }
        let w = &mut self.warnings;
        let m = &mut self.meta;
        let r = &mut self.record;
        match field {
            Field::Version => put(&mut m.version, value, w, "version"),
            Field::OrgName => put(&mut m.org_name, value, w, "org_name"),
            Field::Email => put(&mut m.email, value, w, "email"),
            Field::ExtraContact => put(&mut m.extra_contact, value, w, "extra_contact_info"),
            Field::ReportId => put(&mut m.report_id, value, w, "report_id"),
            Field::Error => {
                if !value.is_empty() {
                    m.errors.push(value.into_owned());
                }
            }
            Field::Generator => put(&mut m.generator, value, w, "generator"),
            Field::Begin => put(&mut m.begin, value, w, "begin"),
            Field::End => put(&mut m.end, value, w, "end"),
            Field::PDomain => put(&mut m.policy_domain_raw, value, w, "domain"),
            Field::Adkim => m.policy.adkim = lenient::<Alignment>(&value, w, "adkim"),
            Field::Aspf => m.policy.aspf = lenient::<Alignment>(&value, w, "aspf"),
            Field::P => m.policy.p = lenient::<PolicyAction>(&value, w, "p"),
            Field::Sp => m.policy.sp = lenient::<PolicyAction>(&value, w, "sp"),
            Field::Np => m.policy.np = lenient::<PolicyAction>(&value, w, "np"),
            Field::Pct => {
                if !value.is_empty() {
                    match value.trim_end_matches('%').parse::<u32>() {
                        Ok(p) => m.policy.pct = Some(p.min(100) as u8),
                        Err(_) => w.push(format!("invalid <pct> value {value:?} ignored")),
                    }
                }
            }
            Field::Fo => {
                if !value.is_empty() {
                    m.policy.fo = Some(value.into_owned());
                }
            }
            Field::Testing => {
                m.policy.testing = match value.to_ascii_lowercase().as_str() {
                    "" => None,
                    "y" | "yes" | "true" | "1" => Some(true),
                    "n" | "no" | "false" | "0" => Some(false),
                    _ => {
                        w.push(format!("invalid <testing> value {value:?} ignored"));
                        None
                    }
                }
            }
            Field::DiscoveryMethod => {
                m.policy.discovery_method =
                    lenient::<DiscoveryMethod>(&value, w, "discovery_method")
            }
            Field::SourceIp => put(&mut r.source_ip, value, w, "source_ip"),
            Field::Count => put(&mut r.count, value, w, "count"),
            Field::Disposition => put(&mut r.disposition, value, w, "disposition"),
            Field::PeDkim => put(&mut r.pe_dkim, value, w, "policy_evaluated/dkim"),
            Field::PeSpf => put(&mut r.pe_spf, value, w, "policy_evaluated/spf"),
            Field::ReasonType => put(&mut r.reason_type, value, w, "reason/type"),
            Field::ReasonComment => put(&mut r.reason_comment, value, w, "reason/comment"),
            Field::EnvelopeTo => put(&mut r.envelope_to, value, w, "envelope_to"),
            Field::EnvelopeFrom => put(&mut r.envelope_from, value, w, "envelope_from"),
            Field::HeaderFrom => put(&mut r.header_from, value, w, "header_from"),
            Field::AuthDomain => put(&mut r.auth.domain, value, w, "auth_results domain"),
            Field::AuthSelector => put(&mut r.auth.selector, value, w, "selector"),
            Field::AuthResult => put(&mut r.auth.result, value, w, "result"),
            Field::AuthHuman => put(&mut r.auth.human, value, w, "human_result"),
            Field::AuthScope => put(&mut r.auth.scope, value, w, "scope"),
        }
    }

    /// Closes the innermost container and folds its data into its parent.
    fn pop(&mut self) -> Result<(), ParseError> {
        let Some(ctx) = self.stack.pop() else {
            return Ok(());
        };
        match ctx {
            Ctx::Reason => {
                let r = &mut self.record;
                let kind = r.reason_type.take();
                let comment = r.reason_comment.take().filter(|c| !c.is_empty());
                if r.reasons.len() >= MAX_PER_RECORD {
                    self.warnings
                        .push("record has too many <reason> elements; the rest ignored");
                    return Ok(());
                }
                let kind = match kind {
                    Some(k) => lenient::<OverrideType>(&k, &mut self.warnings, "reason/type")
                        .unwrap_or(OverrideType::OtherReason),
                    None => OverrideType::OtherReason,
                };
                r.reasons.push(PolicyOverrideReason {
                    kind,
                    comment: comment.map(Cow::into_owned),
                });
            }
            Ctx::AuthDkim => {
                let a = std::mem::take(&mut self.record.auth);
                if self.record.dkim.len() >= MAX_PER_RECORD {
                    self.warnings
                        .push("record has too many DKIM auth results; the rest ignored");
                    return Ok(());
                }
                match a
                    .result
                    .as_deref()
                    .and_then(|v| lenient::<DkimResult>(v, &mut self.warnings, "dkim/result"))
                {
                    Some(result) => self.record.dkim.push(DkimAuthResult {
                        domain: non_empty(a.domain),
                        selector: non_empty(a.selector),
                        result,
                        human_result: non_empty(a.human),
                    }),
                    None => self
                        .warnings
                        .push("DKIM auth result without <result> ignored"),
                }
            }
            Ctx::AuthSpf => {
                let a = std::mem::take(&mut self.record.auth);
                if self.record.spf.len() >= MAX_PER_RECORD {
                    self.warnings
                        .push("record has too many SPF auth results; the rest ignored");
                    return Ok(());
                }
                match a
                    .result
                    .as_deref()
                    .and_then(|v| lenient::<SpfResult>(v, &mut self.warnings, "spf/result"))
                {
                    Some(result) => {
                        let scope = a
                            .scope
                            .as_deref()
                            .and_then(|s| lenient::<SpfScope>(s, &mut self.warnings, "scope"));
                        self.record.spf.push(SpfAuthResult {
                            domain: non_empty(a.domain),
                            scope,
                            result,
                            human_result: non_empty(a.human),
                        });
                    }
                    None => self
                        .warnings
                        .push("SPF auth result without <result> ignored"),
                }
            }
            Ctx::Record => self.finish_record()?,
            _ => {}
        }
        Ok(())
    }

    fn finish_record(&mut self) -> Result<(), ParseError> {
        self.record_index = self.record_index.saturating_add(1);
        let n = self.record_index;
        let r = std::mem::take(&mut self.record);
        let Some(ip_raw) = r.source_ip.filter(|s| !s.is_empty()) else {
            self.warnings
                .push(format!("record {n} dropped: no <source_ip>"));
            return Ok(());
        };
        let count = match r.count.as_deref().map(parse_count) {
            Some(Some((c, exact))) => {
                if !exact {
                    self.warnings
                        .push(format!("record {n}: <count> was not a plain integer"));
                }
                c
            }
            Some(None) => {
                self.warnings.push(format!(
                    "record {n} dropped: invalid <count> {:?}",
                    r.count.as_deref().unwrap_or_default()
                ));
                return Ok(());
            }
            None => {
                self.warnings
                    .push(format!("record {n} dropped: no <count>"));
                return Ok(());
            }
        };
        if self.records.len() >= self.limits.max_records {
            return Err(ParseError::TooManyRecords {
                limit: self.limits.max_records,
            });
        }
        let source_ip = MaybeIp::parse(&ip_raw);
        if let MaybeIp::Invalid(raw) = &source_ip {
            self.warnings.push(format!(
                "record {n}: <source_ip> {raw:?} is not an IP address"
            ));
        }
        let w = &mut self.warnings;
        let disposition = r
            .disposition
            .as_deref()
            .and_then(|v| lenient::<Disposition>(v, w, "disposition"));
        let dkim = r
            .pe_dkim
            .as_deref()
            .and_then(|v| lenient::<DmarcResult>(v, w, "policy_evaluated/dkim"));
        let spf = r
            .pe_spf
            .as_deref()
            .and_then(|v| lenient::<DmarcResult>(v, w, "policy_evaluated/spf"));
        self.records.push(AggregateRecord {
            source_ip,
            count,
            policy_evaluated: PolicyEvaluated {
                disposition,
                dkim,
                spf,
                reasons: r.reasons,
            },
            identifiers: Identifiers {
                header_from: non_empty(r.header_from),
                envelope_from: non_empty(r.envelope_from),
                envelope_to: non_empty(r.envelope_to),
            },
            auth_results: AuthResults {
                dkim: r.dkim,
                spf: r.spf,
            },
        });
        Ok(())
    }

    fn finish(mut self, hints: &Hints<'_>) -> Result<AggregateReport, ParseError> {
        if !self.saw_schema {
            let root = self.root_name.as_deref().unwrap_or("none");
            return Err(ParseError::NotDmarcXml(format!(
                "no report elements found (root element <{root}>)"
            )));
        }
        if !self.saw_feedback {
            self.warnings.push("no <feedback> root element");
        }
        if self.repairs.control_chars {
            self.warnings.push("control characters removed from values");
        }
        if self.repairs.unknown_entity {
            self.warnings
                .push("unknown XML entities kept as literal text");
        }
        let m = self.meta;
        let report_id = match m.report_id.as_deref() {
            None => return Err(ParseError::MissingField("report_metadata/report_id")),
            Some(raw) => ReportId::parse(raw).map_err(|e| ParseError::InvalidField {
                field: "report_metadata/report_id",
                detail: e.to_string(),
            })?,
        };
        let begin = parse_time(m.begin.as_deref(), "date_range/begin", &mut self.warnings)?;
        let mut end = parse_time(m.end.as_deref(), "date_range/end", &mut self.warnings)?;
        let mut begin = begin;
        if end < begin {
            self.warnings
                .push("date_range end is before begin; swapped");
            std::mem::swap(&mut begin, &mut end);
        }
        let email = non_empty(m.email);
        let org_name = match non_empty(m.org_name) {
            Some(o) => o,
            None => {
                let fallback = email
                    .as_deref()
                    .and_then(|e| {
                        e.rsplit_once('@')
                            .map(|(_, d)| d.trim_end_matches('>').to_owned())
                    })
                    .or_else(|| hints.filename_part(0).map(str::to_owned))
                    .filter(|s| !s.is_empty())
                    .ok_or(ParseError::MissingField("report_metadata/org_name"))?;
                self.warnings.push(format!(
                    "empty <org_name>; using {fallback:?} from the contact address or file name"
                ));
                fallback
            }
        };
        let policy_domain = match m.policy_domain_raw.as_deref().filter(|d| !d.is_empty()) {
            Some(raw) => DomainName::parse(raw).map_err(|e| ParseError::InvalidField {
                field: "policy_published/domain",
                detail: format!("{raw:?}: {e}"),
            })?,
            None => {
                let from_name = hints
                    .filename_part(1)
                    .and_then(|d| DomainName::parse(d).ok())
                    .ok_or(ParseError::MissingField("policy_published/domain"))?;
                self.warnings
                    .push("no <policy_published><domain>; taken from the file name");
                from_name
            }
        };
        let mut policy = m.policy;
        policy.domain = policy_domain.to_string();
        if self.records.is_empty() {
            self.warnings.push("report has no usable records");
        }
        // Counts are attacker-controlled u64s: saturate rather than overflow.
        let message_count = self
            .records
            .iter()
            .fold(0u64, |sum, r| sum.saturating_add(r.count));
        Ok(AggregateReport {
            org_name,
            report_id,
            begin,
            end,
            policy_domain,
            message_count,
            email,
            extra_contact_info: non_empty(m.extra_contact),
            errors: m.errors,
            generator: non_empty(m.generator),
            version: non_empty(m.version),
            xml_namespace: self.namespace,
            policy_published: policy,
            records: self.records,
            extensions: self.extensions,
            warnings: self.warnings.into_vec(),
            submitter: Submitter::default(),
        })
    }
}

fn non_empty(v: Option<Cow<'_, str>>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

/// Parses an enum leniently, recording a warning for anything that needed repair.
/// Empty values are treated as absent.
fn lenient<T: LenientEnum>(raw: &str, w: &mut Warnings, tag: &str) -> Option<T> {
    if raw.trim().is_empty() {
        return None;
    }
    let (value, how) = T::parse(raw);
    match how {
        Leniency::Exact => {}
        Leniency::Normalized => w.push(format!("<{tag}> value {raw:?} read as {:?}", value.text())),
        Leniency::Alias => w.push(format!("<{tag}> value {raw:?} read as {:?}", value.text())),
        Leniency::Unknown => w.push(format!("unknown <{tag}> value {raw:?} kept as written")),
    }
    Some(value)
}

trait LenientEnum: Sized {
    fn parse(raw: &str) -> (Self, Leniency);
    fn text(&self) -> &str;
}

macro_rules! impl_lenient {
    ($($t:ty),*) => {$(
        impl LenientEnum for $t {
            fn parse(raw: &str) -> (Self, Leniency) { <$t>::parse_lenient(raw) }
            fn text(&self) -> &str { self.as_str() }
        }
    )*};
}
impl_lenient!(
    Alignment,
    PolicyAction,
    Disposition,
    DmarcResult,
    OverrideType,
    DkimResult,
    SpfResult,
    SpfScope,
    DiscoveryMethod
);

/// Parses a record count; the bool is false when the text needed repair (`"12.0"`).
fn parse_count(raw: &str) -> Option<(u64, bool)> {
    let t = raw.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some((n, true));
    }
    let f = t.parse::<f64>().ok()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1e18).then_some((f as u64, false))
}

fn parse_time(
    raw: Option<&str>,
    field: &'static str,
    w: &mut Warnings,
) -> Result<DateTime<Utc>, ParseError> {
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(ParseError::MissingField(field))?;
    let invalid = |detail: &str| ParseError::InvalidField {
        field,
        detail: format!("{raw:?}: {detail}"),
    };
    if let Ok(secs) = raw.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| invalid("out of range"));
    }
    if let Ok(f) = raw.parse::<f64>()
        && f.is_finite()
    {
        w.push(format!("<{field}> {raw:?} had a fraction; truncated"));
        return DateTime::from_timestamp(f as i64, 0).ok_or_else(|| invalid("out of range"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        w.push(format!("<{field}> was an RFC 3339 date, not epoch seconds"));
        return Ok(t.with_timezone(&Utc));
    }
    Err(invalid("not a Unix timestamp"))
}

/// The namespace declared for an element: `xmlns="…"`, or `xmlns:p="…"` when the element
/// is written `p:name` (`prefix` is `p:` then, empty otherwise).
fn xmlns(attrs: &str, prefix: &[u8]) -> Option<String> {
    let key = match prefix.strip_suffix(b":") {
        Some(p) => format!("xmlns:{}=", String::from_utf8_lossy(p)),
        None => "xmlns=".to_owned(),
    };
    let (_, rest) = attrs.split_once(&key)?;
    let rest = rest.strip_prefix('"').map_or_else(
        || rest.strip_prefix('\'').map(|r| (r, '\'')),
        |r| Some((r, '"')),
    );
    let (rest, quote) = rest?;
    let (value, _) = rest.split_once(quote)?;
    Some(value.to_owned())
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    memmem::find(&hay[from..], needle).and_then(|i| from.checked_add(i))
}

/// Skips `<!DOCTYPE … [ … ]>` including an internal subset.
fn skip_declaration(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'[' => depth = depth.saturating_add(1),
            b']' => depth = depth.saturating_sub(1),
            b'>' if depth == 0 => return i.saturating_add(1),
            _ => {}
        }
    }
    b.len()
}

/// Text of a value that contains CDATA sections: CDATA is taken verbatim, the rest is
/// entity-decoded.
fn cdata_text(raw: &str, repairs: &mut TextRepairs) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some((text, after)) = rest.split_once("<![CDATA[") {
        out.push_str(&clean_xml_text(text, repairs));
        match after.split_once("]]>") {
            Some((cdata, tail)) => {
                out.push_str(cdata);
                rest = tail;
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(&clean_xml_text(rest, repairs));
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use sealwatch_model::{AggregateReport, Report};

    use super::MAX_PER_RECORD;
    use crate::Parser;

    fn report(records: &str, extra: &str) -> String {
        format!(
            "<feedback><report_metadata><org_name>o</org_name><report_id>r</report_id>\
             <date_range><begin>1</begin><end>2</end></date_range></report_metadata>\
             <policy_published><domain>example.com</domain></policy_published>\
             {records}{extra}</feedback>"
        )
    }

    fn aggregate(input: &str) -> AggregateReport {
        let parsed = Parser::default()
            .parse(input.as_bytes(), None)
            .expect("a report");
        match parsed.reports.into_iter().next() {
            Some(Report::DmarcAggregate(a)) => a,
            other => panic!("not an aggregate report: {other:?}"),
        }
    }

    /// Found with the fuzz harness: a `<feedback` start tag cut short by `<` right after a
    /// multi-byte character sliced the document inside that character when looking for
    /// `xmlns`.
    #[test]
    fn feedback_tag_cut_short_after_multibyte_text_does_not_panic() {
        let err = Parser::default()
            .parse("<feedback \u{e9}<".as_bytes(), None)
            .expect_err("not a report");
        assert_eq!(err.code(), "not-dmarc-xml");
        let a = aggregate(&report("", "").replacen(
            "<feedback>",
            "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\" \u{e9}",
            1,
        ));
        assert_eq!(
            a.xml_namespace.as_deref(),
            Some("urn:ietf:params:xml:ns:dmarc-2.0")
        );
    }

    /// Found with the fuzz harness: an `<extension>` closed by a broken `/extension>` (no
    /// `<`) took the start tag's `<` as the end of its content and sliced backwards.
    #[test]
    fn extension_closed_without_lt_does_not_panic() {
        let a = aggregate(&report("", "<extension>/extension>"));
        assert_eq!(a.extensions, vec![String::new()]);
        let a = aggregate(&report(
            "",
            "<extension><x>1</x></extension><d:extension>2</d:extension>",
        ));
        assert_eq!(a.extensions, vec!["<x>1</x>".to_owned(), "2".to_owned()]);
    }

    /// Found checking peak memory on a gzip-in-gzip bomb (3.6 GB RSS for 510 MiB): an
    /// element name running to the end of the document was copied whole into the error
    /// message (the name, the message and its display: three more copies).
    #[test]
    fn root_name_in_error_is_bounded() {
        let doc = format!("<{}", "\u{ff}".repeat(100_000));
        let err = Parser::default()
            .parse(doc.as_bytes(), None)
            .expect_err("not a report");
        assert_eq!(err.code(), "not-dmarc-xml");
        assert!(err.to_string().len() < 200, "{}", err.to_string().len());
    }

    /// Found measuring memory after the fuzz runs (see `MAX_PER_RECORD`).
    #[test]
    fn auth_results_and_reasons_per_record_are_bounded() {
        let entries = "<dkim><result>pass</result></dkim><spf><result>fail</result></spf>"
            .repeat(MAX_PER_RECORD + 5);
        let reasons = "<reason><type>forwarded</type></reason>".repeat(MAX_PER_RECORD + 5);
        let record = format!(
            "<record><row><source_ip>192.0.2.1</source_ip><count>1</count>\
             <policy_evaluated>{reasons}</policy_evaluated></row>\
             <auth_results>{entries}</auth_results></record>"
        );
        let a = aggregate(&report(&record, ""));
        let r = &a.records[0];
        assert_eq!(r.auth_results.dkim.len(), MAX_PER_RECORD);
        assert_eq!(r.auth_results.spf.len(), MAX_PER_RECORD);
        assert_eq!(r.policy_evaluated.reasons.len(), MAX_PER_RECORD);
        assert!(
            a.warnings
                .iter()
                .any(|w| w.starts_with("record has too many DKIM auth results")),
            "{:?}",
            a.warnings
        );
    }

    /// Found with the fuzz harness: `message_count` summed attacker-controlled u64 counts
    /// and overflowed (a panic with overflow checks, a wrapped total without).
    #[test]
    fn message_count_saturates() {
        let record = "<record><row><source_ip>192.0.2.1</source_ip>\
                      <count>18446744073709551615</count></row></record>";
        let a = aggregate(&report(&record.repeat(2), ""));
        assert_eq!(a.records.len(), 2);
        assert_eq!(a.message_count, u64::MAX);
    }
}
