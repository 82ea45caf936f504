//! Keeps hostile MIME nesting away from the recursion inside mail-parser.
//!
//! mail-parser builds nested `message/rfc822` parts with a loop, but two things recurse
//! once per nesting level: dropping the parsed tree, and — inside `parse` itself — the copy
//! it makes of a base64 or quoted-printable encoded `message/rfc822` part, which it decodes
//! and parses on the spot. A few hundred kilobytes of nested headers overflow a 2 MiB
//! thread stack, and a stack overflow aborts the process: no limit checked after `parse`
//! can help. So:
//!
//! * [`defuse`] returns the input with every *encoded* message part turned into a plain
//!   attachment (`message/rfc822` → `xessage/rfc822`, one byte), found by a first pass that
//!   decodes nothing. The walk reads such a part as an attachment and parses it as an
//!   email through `payload`, where `max_mime_depth` bounds the nesting.
//! * [`drop_flat`] drops a parsed tree without recursion.

use std::borrow::Cow;
use std::sync::OnceLock;

use mail_parser::{
    ContentType, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use crate::error::ParseError;

/// Most MIME parts one email may have. mail-parser keeps a few hundred bytes per part (an
/// email of empty parts costs 27 times its size), and every `message/feedback-report` part
/// becomes a report: without a bound, a 60 MiB email made 1.2 million reports in 2.6 GB.
/// (High enough that thousands of nested parts still fail as too deep, not as too many.)
const MAX_MIME_PARTS: usize = 100_000;

/// Most header fields one email may have. mail-parser keeps about 120 bytes per field: a
/// 150 KB gzip attachment holding 100 MiB of `a:b` lines cost 2.6 GB and 14 s.
const MAX_HEADER_FIELDS: usize = 1_000_000;

/// Passes of [`defuse`]. Each pass neutralises every encoded message part it sees, at least
/// the first (the first pass's view after an encoded part can be wrong: it read the encoded
/// body as headers); an email that needs more passes is refused.
const MAX_ROUNDS: usize = 8;

/// Parses `bytes` with mail-parser, containing any panic of it. mail-parser documents
/// `parse` as never panicking, but malformed nesting (a `message/rfc822` part directly
/// inside another before the closing boundary) reaches a `debug_assert!(false, …)` in it:
/// builds with debug assertions (tests, dev builds) would otherwise abort on one email.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Message<'_>>, ParseError> {
    parse_with(&MessageParser::default(), bytes)
}

fn parse_with<'x>(
    parser: &MessageParser,
    bytes: &'x [u8],
) -> Result<Option<Message<'x>>, ParseError> {
    std::panic::catch_unwind(|| parser.parse(bytes)).map_err(|_| {
        ParseError::NotAReport("not an email: the MIME structure could not be parsed".to_owned())
    })
}

/// Drops a parsed message without recursing into nested messages.
pub(crate) fn drop_flat(message: Message<'_>) {
    let mut stack = vec![message];
    while let Some(mut m) = stack.pop() {
        for part in std::mem::take(&mut m.parts) {
            if let PartType::Message(nested) = part.body {
                stack.push(nested);
            }
        }
    }
}

/// Rejects an email that could have more than [`MAX_MIME_PARTS`] parts or
/// [`MAX_HEADER_FIELDS`] header fields, before mail-parser allocates them: every part it
/// makes starts at a `--boundary` (found anywhere, not only at a line start) or carries a
/// `Content-Type`, and every header field has a colon.
pub(crate) fn check_structure(bytes: &[u8]) -> Result<(), ParseError> {
    if memchr::memchr_iter(b':', bytes)
        .take(MAX_HEADER_FIELDS + 1)
        .count()
        > MAX_HEADER_FIELDS
    {
        return Err(ParseError::NotAReport(format!(
            "email has more than {MAX_HEADER_FIELDS} header fields"
        )));
    }
    let delimiters = memchr::memmem::find_iter(bytes, b"--").take(MAX_MIME_PARTS + 1);
    let typed = std::iter::successors(find_ci(bytes, b"content-type"), |&i| {
        let next = i.checked_add(1)?;
        find_ci(bytes.get(next..)?, b"content-type").and_then(|j| next.checked_add(j))
    })
    .take(MAX_MIME_PARTS + 1);
    if delimiters.count().saturating_add(typed.count()) >= MAX_MIME_PARTS {
        return Err(ParseError::TooManyAttachments {
            limit: MAX_MIME_PARTS,
        });
    }
    Ok(())
}

/// The input with every base64 or quoted-printable encoded `message/rfc822` or
/// `message/global` part made a plain attachment (borrowed when there is none).
pub(crate) fn defuse(bytes: &[u8], mime_limit: usize) -> Result<Cow<'_, [u8]>, ParseError> {
    let mut buf = Cow::Borrowed(bytes);
    // Every encoded part declares its encoding in a header at this level.
    if find_ci(bytes, b"content-transfer-encoding").is_none() {
        return Ok(buf);
    }
    for _ in 0..MAX_ROUNDS {
        let flips = encoded_message_parts(&buf, mime_limit)?;
        if flips.is_empty() {
            return Ok(buf);
        }
        let b = buf.to_mut();
        for i in flips {
            b[i] = b'x';
        }
    }
    Err(ParseError::MimeTooDeep { limit: mime_limit })
}

/// mail-parser's own header parsers, except that the transfer encoding is not read: with
/// it, no part is decoded, so no encoded message is parsed and nothing recurses, while
/// every header ends where the real parse ends it (the MIME structure is the same up to
/// the first encoded message part).
fn structure_parser() -> &'static MessageParser {
    static PARSER: OnceLock<MessageParser> = OnceLock::new();
    PARSER.get_or_init(|| {
        let mut p = MessageParser::new();
        for h in [
            HeaderName::Subject,
            HeaderName::Comments,
            HeaderName::ContentDescription,
            HeaderName::ContentLocation,
        ] {
            p = p.header_text(h);
        }
        for h in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::Cc,
            HeaderName::Bcc,
            HeaderName::ReplyTo,
            HeaderName::Sender,
            HeaderName::ResentTo,
            HeaderName::ResentFrom,
            HeaderName::ResentBcc,
            HeaderName::ResentCc,
            HeaderName::ResentSender,
            HeaderName::ListArchive,
            HeaderName::ListHelp,
            HeaderName::ListId,
            HeaderName::ListOwner,
            HeaderName::ListPost,
            HeaderName::ListSubscribe,
            HeaderName::ListUnsubscribe,
        ] {
            p = p.header_address(h);
        }
        for h in [HeaderName::Date, HeaderName::ResentDate] {
            p = p.header_date(h);
        }
        for h in [
            HeaderName::MessageId,
            HeaderName::References,
            HeaderName::InReplyTo,
            HeaderName::ReturnPath,
            HeaderName::ContentId,
            HeaderName::ResentMessageId,
        ] {
            p = p.header_id(h);
        }
        for h in [HeaderName::Keywords, HeaderName::ContentLanguage] {
            p = p.header_comma_separated(h);
        }
        p.header_received(HeaderName::Received)
            .header_content_type(HeaderName::ContentType)
            .header_content_type(HeaderName::ContentDisposition)
            .ignore_header(HeaderName::ContentTransferEncoding)
    })
}

/// Positions of the bytes to change so that no part is an encoded message any more: the
/// `m` of `message` in the part's `Content-Type`, or — for an encoded part without a type,
/// a message when its parent is a digest — the `d` of every `multipart/digest`.
fn encoded_message_parts(buf: &[u8], mime_limit: usize) -> Result<Vec<usize>, ParseError> {
    let Some(message) = parse_with(structure_parser(), buf)? else {
        return Ok(Vec::new());
    };
    let cannot = || ParseError::MimeTooDeep { limit: mime_limit };
    let mut flips = Vec::new();
    let mut digests = Vec::new();
    let mut untyped_encoded = false;
    let mut stack = vec![&message];
    while let Some(m) = stack.pop() {
        for part in &m.parts {
            if let PartType::Message(nested) = &part.body {
                stack.push(nested);
            }
            let ct = part.content_type();
            if ct.is_some_and(|c| is_type(c, "multipart", &["digest"])) {
                digests.push(positions(buf, part, b"digest"));
            }
            if !is_encoded(buf, part) {
                continue;
            }
            match ct {
                None => untyped_encoded = true,
                Some(c) if is_type(c, "message", &["rfc822", "global"]) => {
                    flips.extend(positions(buf, part, b"message").ok_or_else(cannot)?);
                }
                Some(_) => {}
            }
        }
    }
    if untyped_encoded {
        for d in digests {
            flips.extend(d.ok_or_else(cannot)?);
        }
    }
    drop_flat(message);
    Ok(flips)
}

fn is_type(ct: &ContentType<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    ct.ctype().eq_ignore_ascii_case(ctype)
        && ct
            .subtype()
            .is_some_and(|s| subtypes.iter().any(|t| s.eq_ignore_ascii_case(t)))
}

fn raw_value<'b>(buf: &'b [u8], h: &mail_parser::Header<'_>) -> &'b [u8] {
    buf.get(h.offset_start as usize..h.offset_end as usize)
        .unwrap_or_default()
}

/// Whether mail-parser would decode the part: base64, quoted-printable, or a value
/// hidden in an RFC 2047 encoded word.
fn is_encoded(buf: &[u8], part: &MessagePart<'_>) -> bool {
    part.headers
        .iter()
        .filter(|h| matches!(h.name, HeaderName::ContentTransferEncoding))
        .map(|h| raw_value(buf, h))
        .any(|v| {
            find_ci(v, b"base64").is_some()
                || find_ci(v, b"quoted-printable").is_some()
                || find_ci(v, b"=?").is_some()
        })
}

/// Where `word` starts in the part's `Content-Type` headers; `None` if in none of them.
fn positions(buf: &[u8], part: &MessagePart<'_>, word: &[u8]) -> Option<Vec<usize>> {
    let found: Vec<usize> = part
        .headers
        .iter()
        .filter(|h| matches!(h.name, HeaderName::ContentType))
        .filter_map(|h| {
            let i = find_ci(raw_value(buf, h), word)?;
            usize::try_from(h.offset_start).ok()?.checked_add(i)
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

/// ASCII case-insensitive search.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(off) = memchr::memchr2(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        hay.get(from..)?,
    ) {
        let i = from.checked_add(off)?;
        let next = i.checked_add(1)?;
        if hay
            .get(next..i.checked_add(needle.len())?)
            .is_some_and(|h| h.eq_ignore_ascii_case(rest))
        {
            return Some(i);
        }
        from = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::Parser;

    fn nested_chain(levels: usize) -> Vec<u8> {
        let mut m = b"From: a@example.net\r\n".to_vec();
        m.extend(b"Content-Type: message/rfc822\r\n\r\n".repeat(levels));
        m.extend(b"body\r\n");
        m
    }

    fn forwarded(inner: &[u8], encoding: &str) -> Vec<u8> {
        let body = match encoding {
            "base64" => base64::engine::general_purpose::STANDARD.encode(inner),
            _ => String::from_utf8_lossy(inner).into_owned(),
        };
        format!(
            "From: fwd@example.org\r\nSubject: Fwd\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: message/rfc822\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n\
             {body}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    /// Found checking deep nesting after the fuzz runs: mail-parser copied a base64
    /// `message/rfc822` part with one level of recursion per nested message, and ~2,000
    /// levels (90 KB of email) overflowed a 2 MiB stack: the process aborted.
    #[test]
    fn deeply_nested_encoded_message_is_an_error_not_a_crash() {
        let input = forwarded(&nested_chain(9_000), "base64");
        let err = Parser::default()
            .parse(&input, None)
            .expect_err("nesting over the limit");
        assert_eq!(err.code(), "mime-too-deep");
    }

    /// Found with the same check: dropping a parsed chain of 50,000 plain nested messages
    /// (1.6 MB) recursed once per level and overflowed the stack.
    #[test]
    fn deeply_nested_plain_message_is_an_error_not_a_crash() {
        let err = Parser::default()
            .parse(&nested_chain(50_000), None)
            .expect_err("nesting over the limit");
        assert_eq!(err.code(), "mime-too-deep");
    }

    /// Found measuring memory after the fuzz runs: 1.2 million `message/feedback-report`
    /// parts in a 60 MiB email became 1.2 million reports (2.6 GB).
    #[test]
    fn emails_with_too_many_parts_are_refused_before_parsing() {
        let part = "--b\r\nContent-Type: message/feedback-report\r\n\r\nA: b\r\n";
        let email = |n: usize| {
            format!(
                "From: a@example.net\r\nSubject: x\r\n\
                 Content-Type: multipart/report; boundary=\"b\"\r\n\r\n{}--b--\r\n",
                part.repeat(n)
            )
        };
        let parsed = Parser::default()
            .parse(email(100).as_bytes(), None)
            .expect("reports");
        assert_eq!(parsed.reports.len(), 100);
        let err = Parser::default()
            .parse(email(MAX_MIME_PARTS).as_bytes(), None)
            .expect_err("too many parts");
        assert_eq!(err.code(), "too-many-attachments");
    }

    /// Found the same way: a 150 KB gzip holding 100 MiB of `a:b` header lines cost 2.6 GB
    /// and 14 s inside mail-parser.
    #[test]
    fn emails_with_too_many_header_fields_are_refused_before_parsing() {
        let mut email = b"From: a@example.net\r\n".to_vec();
        email.extend(b"a:b\r\n".repeat(MAX_HEADER_FIELDS));
        let err = Parser::default()
            .parse(&email, None)
            .expect_err("too many fields");
        assert!(err.to_string().contains("header fields"), "{err}");
        let gz = {
            use std::io::Write as _;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&email).expect("in memory");
            e.finish().expect("in memory")
        };
        let err = Parser::default()
            .parse(&gz, Some("x.eml.gz"))
            .expect_err("too many fields");
        assert!(err.to_string().contains("header fields"), "{err}");
    }

    /// A report forwarded as a base64-encoded `message/rfc822` part (not allowed by RFC
    /// 2046, sent anyway) is still read: as an attachment that is an email.
    #[test]
    fn report_in_an_encoded_forwarded_message_is_still_read() {
        let xml = "<feedback><report_metadata><org_name>o</org_name><report_id>r</report_id>\
                   <date_range><begin>1</begin><end>2</end></date_range></report_metadata>\
                   <policy_published><domain>example.com</domain></policy_published>\
                   <record><row><source_ip>192.0.2.1</source_ip><count>2</count></row>\
                   </record></feedback>";
        let inner = format!(
            "From: reports@receiver.example\r\nSubject: Report\r\n\
             Content-Type: text/xml; name=\"r.xml\"\r\n\
             Content-Disposition: attachment; filename=\"r.xml\"\r\n\r\n{xml}\r\n"
        );
        for encoding in ["base64", "7bit"] {
            let input = forwarded(inner.as_bytes(), encoding);
            let parsed = Parser::default().parse(&input, None).expect("a report");
            assert_eq!(parsed.reports.len(), 1, "{encoding}");
            assert_eq!(
                parsed.reports[0].kind(),
                sealwatch_model::ReportKind::DmarcAggregate
            );
        }
        let encoded = forwarded(inner.as_bytes(), "base64");
        let defused = defuse(&encoded, 8).expect("defused");
        assert!(find_ci(&defused, b"xessage/rfc822").is_some());
        assert!(matches!(
            defuse(&forwarded(inner.as_bytes(), "7bit"), 8),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn case_insensitive_search() {
        assert_eq!(
            find_ci(b"xx Content-Transfer-Encoding", b"content-transfer"),
            Some(3)
        );
        assert_eq!(find_ci(b"MESSAGE", b"message"), Some(0));
        assert_eq!(find_ci(b"messag", b"message"), None);
        assert_eq!(find_ci(b"", b"a"), None);
    }
}
