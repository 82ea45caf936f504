//! RFC 5322 emails: headers give the submitter identity, every MIME part is sniffed.

use std::borrow::Cow;

use mail_parser::{Encoding, Message, MessagePart, MimeHeaders, PartType};
use sealwatch_model::{Report, Submitter};

use crate::arf;
use crate::error::ParseError;
use crate::mime_guard;
use crate::payload::{Place, Run, Sniffed, declares_gzip, decode_base64, sniff};

/// Parses an email and every report inside it.
pub(crate) fn parse_email(
    run: &mut Run<'_>,
    bytes: &[u8],
    place: &Place<'_>,
) -> Result<(), ParseError> {
    let limits = run.limits;
    if place.mime_depth > limits.max_mime_depth {
        return Err(ParseError::MimeTooDeep {
            limit: limits.max_mime_depth,
        });
    }
    mime_guard::check_structure(bytes)?;
    let bytes = mime_guard::defuse(bytes, limits.max_mime_depth)?;
    let message = mime_guard::parse(&bytes)?
        .ok_or_else(|| ParseError::NotAReport("not an email: no header fields".to_owned()))?;
    let result = walk_message(run, &message, place);
    mime_guard::drop_flat(message);
    result
}

fn walk_message(
    run: &mut Run<'_>,
    message: &Message<'_>,
    place: &Place<'_>,
) -> Result<(), ParseError> {
    let limits = run.limits;
    let submitter = submitter_of(message);
    let depths = part_depths(message);
    if let Some(max) = depths.iter().copied().max()
        && place.mime_depth.saturating_add(max) > limits.max_mime_depth
    {
        return Err(ParseError::MimeTooDeep {
            limit: limits.max_mime_depth,
        });
    }
    let root_ct = message.root_part().content_type();
    let report_type = root_ct
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let mut is_bounce = report_type.as_deref() == Some("delivery-status");
    let before = run.parts_out();
    let mut human_text = String::new();

    for (index, part) in message.parts.iter().enumerate() {
        let ct = part.content_type();
        let ctype = ct
            .map(|c| c.ctype().to_ascii_lowercase())
            .unwrap_or_default();
        let subtype = ct
            .and_then(|c| c.subtype())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let name = part.attachment_name();
        let label = match name {
            Some(n) => format!("{}: {}", place.label, n),
            None => format!("{}: part {}", place.label, index.saturating_add(1)),
        };
        let part_place = Place {
            name: name.map(|n| Cow::Owned(n.to_owned())),
            submitter: Some(&submitter),
            layer: 0,
            mime_depth: place
                .mime_depth
                .saturating_add(depths.get(index).copied().unwrap_or(0)),
            label,
            warnings: Vec::new(),
            declared_gzip: declares_gzip(ct.map(|_| (ctype.as_str(), subtype.as_str())), name),
        };
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Message(nested) => {
                let nested_place = Place {
                    mime_depth: part_place.mime_depth.saturating_add(1),
                    ..part_place
                };
                if nested_place.mime_depth > limits.max_mime_depth {
                    return Err(ParseError::MimeTooDeep {
                        limit: limits.max_mime_depth,
                    });
                }
                // A failed nested message is part of a bigger whole (the original message
                // of a failure report, say): record it only if it looked like a report.
                if let Err(e) = walk_message(run, nested, &nested_place) {
                    if matches!(e, ParseError::MimeTooDeep { .. }) {
                        return Err(e);
                    }
                    if !e.is_not_a_report() {
                        run.fail(&nested_place, e);
                    }
                }
            }
            PartType::Text(text) | PartType::Html(text) => {
                if ctype == "message" && subtype == "feedback-report" {
                    run.feedback_report(text.as_bytes(), &part_place);
                    continue;
                }
                if ctype == "message" && subtype == "delivery-status" {
                    is_bounce = true;
                    continue;
                }
                // Binary payloads mislabelled as text are mangled by charset decoding:
                // go back to the raw bytes of the part.
                let raw: Cow<'_, [u8]> = if text.contains('\u{FFFD}') {
                    raw_body(message, part)
                } else {
                    Cow::Borrowed(text.as_bytes())
                };
                if matches!(part.body, PartType::Html(_)) || looks_like_html(&raw) {
                    continue;
                }
                match sniff(&raw) {
                    Sniffed::Xml | Sniffed::Json | Sniffed::Gzip | Sniffed::Zip | Sniffed::Zlib => {
                        attachment(run, &raw, &part_place, None)?;
                    }
                    Sniffed::Base64 if raw.len() >= 64 => {
                        if decode_base64(&raw).is_some_and(|d| {
                            matches!(
                                sniff(&d),
                                Sniffed::Xml
                                    | Sniffed::Json
                                    | Sniffed::Gzip
                                    | Sniffed::Zip
                                    | Sniffed::Zlib
                            )
                        }) {
                            attachment(run, &raw, &part_place, None)?;
                        }
                    }
                    _ => {
                        if human_text.len() < 64 * 1024 {
                            human_text.push_str(text);
                            human_text.push('\n');
                        }
                    }
                }
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                if ctype == "message" && subtype == "feedback-report" {
                    run.feedback_report(bytes, &part_place);
                    continue;
                }
                if ctype == "message" && subtype == "delivery-status" {
                    is_bounce = true;
                    continue;
                }
                if index == 0 && message.parts.len() == 1 && bytes.is_empty() {
                    continue;
                }
                attachment(run, bytes, &part_place, Some((message, part)))?;
            }
        }
    }

    if run.parts_out() > before {
        return Ok(());
    }
    if is_bounce {
        return Err(ParseError::Bounce);
    }
    if let Some(report) = arf::parse_plain_failure(&human_text, &submitter) {
        let p = Place {
            submitter: Some(&submitter),
            ..place.clone()
        };
        run.emit(Report::DmarcFailure(report), &p);
        return Ok(());
    }
    if is_auto_reply(message) {
        return Err(ParseError::AutoReply);
    }
    let subject = submitter.subject.as_deref().unwrap_or("(no subject)");
    Err(ParseError::NotAReport(format!(
        "email has no report attachment (subject {subject:?})"
    )))
}

/// Reads one attachment. `source` is the part `bytes` were decoded from, when a payload
/// cut short may be the decoder's doing rather than the sender's.
fn attachment(
    run: &mut Run<'_>,
    bytes: &[u8],
    place: &Place<'_>,
    source: Option<(&Message<'_>, &MessagePart<'_>)>,
) -> Result<(), ParseError> {
    run.attachments = run.attachments.saturating_add(1);
    if run.attachments > run.limits.max_attachments {
        return Err(ParseError::TooManyAttachments {
            limit: run.limits.max_attachments,
        });
    }
    let mut outcome = run.payload(bytes, place);
    // mail-parser drops a last base64 group that lacks its `=` padding (Google TLS
    // reports): a payload that ends early is read again from the body, decoded leniently.
    if let (Err(ParseError::Truncated { .. }), Some((message, part))) = (&outcome, source)
        && let Some(full) = base64_body(message, part)
        && full.len() > bytes.len()
    {
        outcome = run.payload(&full, place);
    }
    match outcome {
        Ok(()) => Ok(()),
        Err(e @ (ParseError::MimeTooDeep { .. } | ParseError::DecompressedTooLarge { .. })) => {
            Err(e)
        }
        Err(e) if e.is_not_a_report() && !matches!(e, ParseError::Placeholder(_)) => {
            // Logos, signatures, calendar files: not our business.
            Ok(())
        }
        Err(e) => {
            run.fail(place, e);
            Ok(())
        }
    }
}

/// The body of a base64 part decoded with the lenient decoder; `None` for other parts.
fn base64_body(message: &Message<'_>, part: &MessagePart<'_>) -> Option<Vec<u8>> {
    if part.encoding != Encoding::Base64 {
        return None;
    }
    let raw = message.raw_message();
    let start = usize::try_from(part.raw_body_offset()).ok()?;
    let end = usize::try_from(part.raw_end_offset()).ok()?.min(raw.len());
    decode_base64(raw.get(start..end)?)
}

/// The body bytes of a part with only its transfer encoding undone.
fn raw_body<'m>(message: &'m Message<'_>, part: &MessagePart<'_>) -> Cow<'m, [u8]> {
    let raw = message.raw_message();
    let start = part.raw_body_offset() as usize;
    let end = (part.raw_end_offset() as usize).min(raw.len());
    let body = raw.get(start..end).unwrap_or_default();
    match part.encoding {
        Encoding::Base64 => decode_base64(body).map_or(Cow::Borrowed(body), Cow::Owned),
        Encoding::QuotedPrintable => Cow::Owned(decode_qp(body)),
        _ => Cow::Borrowed(body),
    }
}

fn decode_qp(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut rest = b;
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'=' {
            match tail {
                // Soft line break.
                [b'\r', b'\n', after @ ..] | [b'\n', after @ ..] => {
                    rest = after;
                    continue;
                }
                [hi, lo, after @ ..] => {
                    let pair = [*hi, *lo];
                    let hex = std::str::from_utf8(&pair).ok();
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        out.push(v);
                        rest = after;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(first);
        rest = tail;
    }
    out
}

/// Depth of every part below the root (multipart nesting).
fn part_depths(message: &Message<'_>) -> Vec<usize> {
    let n = message.parts.len();
    let mut depth = vec![0usize; n];
    for i in 0..n {
        if let PartType::Multipart(children) = &message.parts[i].body {
            for &c in children {
                let parent = depth[i];
                if let Some(d) = depth.get_mut(c as usize)
                    && c as usize > i
                {
                    *d = parent.saturating_add(1);
                }
            }
        }
    }
    depth
}

fn submitter_of(message: &Message<'_>) -> Submitter {
    let mut s = Submitter {
        from: message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned),
        subject: message.subject().map(|t| t.trim().to_owned()),
        message_id: message.message_id().map(str::to_owned),
        date: message
            .date()
            .and_then(|d| chrono::DateTime::from_timestamp(d.to_timestamp(), 0)),
        ..Submitter::default()
    };
    for (name, value) in message.headers_raw() {
        if name.eq_ignore_ascii_case("TLS-Report-Submitter") {
            s.tls_report_submitter = Some(unfold(value));
        } else if name.eq_ignore_ascii_case("TLS-Report-Domain") {
            s.tls_report_domain = Some(unfold(value));
        }
    }
    s
}

fn unfold(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_auto_reply(message: &Message<'_>) -> bool {
    let auto = message.headers_raw().any(|(n, v)| {
        (n.eq_ignore_ascii_case("Auto-Submitted") && !v.trim().eq_ignore_ascii_case("no"))
            || n.eq_ignore_ascii_case("X-Autoreply")
            || n.eq_ignore_ascii_case("X-Autorespond")
    });
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    auto || [
        "automatic reply",
        "auto-reply",
        "autoreply",
        "out of office",
        "out of the office",
    ]
    .iter()
    .any(|p| subject.starts_with(p))
}

/// Human-readable HTML rather than a report document.
fn looks_like_html(b: &[u8]) -> bool {
    let head = &b[..b.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let t = text.trim_start();
    [
        "<!doctype html",
        "<html",
        "<head",
        "<body",
        "<div",
        "<p>",
        "<p ",
        "<table",
        "<meta",
        "<span",
    ]
    .iter()
    .any(|p| t.starts_with(p))
}

#[cfg(test)]
mod tests {
    use crate::Parser;

    /// Fuzz finding (parse_email): a `message/rfc822` part whose body starts with another
    /// `message/rfc822` header, then the closing boundary. mail-parser 0.11.9 reaches
    /// `debug_assert!(false, "Invalid part ID, could not find multipart.")` on it, which
    /// aborted every build with debug assertions.
    #[test]
    fn nested_rfc822_without_headers_does_not_panic() {
        let input = b"From:\nContent-Type: multipart/o;boundary=\"b2\"\r\n\r\n--b2\r\n\
Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nFro\n\r\n--b2--\ra";
        let err = Parser::default()
            .parse(input, None)
            .expect_err("no report in this input");
        assert_eq!(err.code(), "not-a-report");
    }
}
