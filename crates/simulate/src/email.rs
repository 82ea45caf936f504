//! RFC 5322 report emails: headers, a human-readable part and one base64 attachment.

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, FixedOffset, Utc};

/// The attached report file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `filename` / `name` parameter.
    pub filename: String,
    /// Declared media type, e.g. `application/gzip`, `application/zip`,
    /// `application/tlsrpt+gzip`, or a wrong one such as `application/octet-stream`.
    pub content_type: String,
    /// The file's bytes (base64-encoded when written).
    pub data: Vec<u8>,
}

/// The top-level multipart type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Container {
    /// `multipart/mixed`.
    Mixed,
    /// `multipart/report; report-type=…` (`tlsrpt` for TLS reports).
    Report { report_type: String },
}

/// A complete report email. Written with CRLF line endings, headers folded at 78
/// columns, non-ASCII header text as RFC 2047 encoded words, and the attachment in base64
/// lines of 76 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEmail {
    /// `From:` mailbox, e.g. `noreply-dmarc-support@google.com` or `Yahoo <x@yahoo.com>`.
    pub from: String,
    /// `To:` address.
    pub to: String,
    /// `Subject:` text (folded when written).
    pub subject: String,
    /// `Message-ID` without angle brackets.
    pub message_id: String,
    /// `Date:`.
    pub date: DateTime<FixedOffset>,
    /// Further header fields, written after the standard ones in order
    /// (`TLS-Report-Domain`, `TLS-Report-Submitter`, `Return-Path`, …).
    pub extra_headers: Vec<(String, String)>,
    /// Top-level `Content-Type`.
    pub container: Container,
    /// MIME boundary (without the leading dashes).
    pub boundary: String,
    /// The human-readable first part.
    pub text: String,
    /// The report file.
    pub attachment: Attachment,
}

/// How a reporter words the `Subject` of an aggregate report email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStyle {
    /// `Report Domain: D Submitter: S Report-ID: <ID>` (RFC 7489 / 9990).
    Rfc,
    /// `Report domain: D Submitter: S Report-ID: ID` (lower-case "domain", no brackets).
    LowercaseUnbracketed,
    /// `Report Domain: D Submitter: S Report-ID: ID` without brackets.
    Unbracketed,
    /// `Dmarc Aggregate Report Domain: {D} Submitter: {S} Date: {YYYY-MM-DD} Report-ID: {ID}`.
    Braced,
}

impl SubjectStyle {
    /// The subject line for a report about `domain` from `submitter`.
    pub fn render(
        self,
        domain: &str,
        submitter: &str,
        report_id: &str,
        date: DateTime<Utc>,
    ) -> String {
        match self {
            SubjectStyle::Rfc => {
                format!("Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>")
            }
            SubjectStyle::LowercaseUnbracketed => {
                format!("Report domain: {domain} Submitter: {submitter} Report-ID: {report_id}")
            }
            SubjectStyle::Unbracketed => {
                format!("Report Domain: {domain} Submitter: {submitter} Report-ID: {report_id}")
            }
            SubjectStyle::Braced => format!(
                "Dmarc Aggregate Report Domain: {{{domain}}} Submitter: {{{submitter}}} Date: {{{}}} Report-ID: {{{report_id}}}",
                date.format("%Y-%m-%d")
            ),
        }
    }
}

/// RFC 5322 date-time: `Tue, 03 Mar 2026 04:05:06 +0000`.
pub fn rfc5322_date(date: &DateTime<FixedOffset>) -> String {
    date.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

impl ReportEmail {
    /// The email as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.attachment.data.len() * 4 / 3 + 2048);
        // Writing into a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Writes the email.
    pub fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        let boundary = sanitize_line(&self.boundary);
        header(w, "From", &self.from)?;
        header(w, "To", &self.to)?;
        header(w, "Subject", &self.subject)?;
        header(w, "Date", &rfc5322_date(&self.date))?;
        header(w, "Message-ID", &format!("<{}>", self.message_id))?;
        for (name, value) in &self.extra_headers {
            header(w, &sanitize_name(name), value)?;
        }
        header(w, "MIME-Version", "1.0")?;
        let content_type = match &self.container {
            Container::Mixed => format!("multipart/mixed; boundary=\"{boundary}\""),
            Container::Report { report_type } => format!(
                "multipart/report; report-type={}; boundary=\"{boundary}\"",
                sanitize_token(report_type)
            ),
        };
        header(w, "Content-Type", &content_type)?;
        w.write_all(b"\r\n")?;

        write!(w, "--{boundary}\r\n")?;
        let text_is_ascii = self.text.is_ascii();
        header(w, "Content-Type", "text/plain; charset=\"UTF-8\"")?;
        header(
            w,
            "Content-Transfer-Encoding",
            if text_is_ascii { "7bit" } else { "base64" },
        )?;
        w.write_all(b"\r\n")?;
        if text_is_ascii {
            for line in self.text.lines() {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\r\n")?;
            }
        } else {
            write_base64(w, self.text.as_bytes())?;
        }

        write!(w, "--{boundary}\r\n")?;
        let name = quote(&self.attachment.filename);
        header(
            w,
            "Content-Type",
            &format!(
                "{}; name={name}",
                sanitize_token(&self.attachment.content_type)
            ),
        )?;
        header(
            w,
            "Content-Disposition",
            &format!("attachment; filename={name}"),
        )?;
        header(w, "Content-Transfer-Encoding", "base64")?;
        w.write_all(b"\r\n")?;
        write_base64(w, &self.attachment.data)?;
        write!(w, "--{boundary}--\r\n")
    }
}

/// Base64 in lines of 76 characters, each ended by CRLF.
fn write_base64<W: Write + ?Sized>(w: &mut W, data: &[u8]) -> io::Result<()> {
    let mut line = [0u8; 76];
    for chunk in data.chunks(57) {
        let n = STANDARD
            .encode_slice(chunk, &mut line)
            .map_err(io::Error::other)?;
        w.write_all(&line[..n])?;
        w.write_all(b"\r\n")?;
    }
    Ok(())
}

/// Replaces CR, LF and other control characters (which would end or split a header).
fn sanitize_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn sanitize_name(s: &str) -> String {
    let name: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ':')
        .collect();
    if name.is_empty() {
        "X-Empty".to_owned()
    } else {
        name
    }
}

/// A MIME type or token: keeps only characters legal there.
fn sanitize_token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/+-.!#$&^_".contains(*c))
        .collect()
}

/// A MIME quoted-string (`"` and `\` escaped, controls removed).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 2047 `B` encoded words for non-ASCII text, each at most 75 characters.
fn encode_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join(" ")
}

/// Writes `Name: value` followed by CRLF, folding at spaces to keep lines within 78
/// columns where possible.
fn header<W: Write + ?Sized>(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    let value = sanitize_line(value);
    let value = if value.is_ascii() {
        value
    } else {
        encode_words(&value)
    };
    let mut line_len = name.len() + 1;
    w.write_all(name.as_bytes())?;
    w.write_all(b":")?;
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 && line_len + 1 + word.len() > 78 && line_len > 1 {
            w.write_all(b"\r\n")?;
            line_len = 0;
        }
        w.write_all(b" ")?;
        w.write_all(word.as_bytes())?;
        line_len += 1 + word.len();
    }
    w.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn sample() -> ReportEmail {
        let date = FixedOffset::east_opt(0)
            .and_then(|tz| tz.with_ymd_and_hms(2026, 3, 3, 4, 5, 6).single())
            .expect("valid");
        ReportEmail {
            from: "noreply-dmarc-support@google.com".into(),
            to: "dmarc@example.com".into(),
            subject: SubjectStyle::Rfc.render(
                "example.com",
                "google.com",
                "123@google.com",
                date.with_timezone(&Utc),
            ),
            message_id: "abc@google.com".into(),
            date,
            extra_headers: vec![],
            container: Container::Mixed,
            boundary: "000000000000abcdef".into(),
            text: "This is an aggregate report from google.com.".into(),
            attachment: Attachment {
                filename: "google.com!example.com!1!2.zip".into(),
                content_type: "application/zip".into(),
                data: (0..=255u8).cycle().take(1000).collect(),
            },
        }
    }

    #[test]
    fn email_has_headers_and_structure() {
        let bytes = sample().to_bytes();
        let text = String::from_utf8(bytes).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("header/body split");
        for needle in [
            "MIME-Version: 1.0\r\n",
            "From: noreply-dmarc-support@google.com\r\n",
            "To: dmarc@example.com\r\n",
            "Date: Tue, 03 Mar 2026 04:05:06 +0000\r\n",
            "Message-ID: <abc@google.com>\r\n",
            "Content-Type: multipart/mixed; boundary=\"000000000000abcdef\"",
        ] {
            assert!(head.contains(needle), "{needle:?} missing in\n{head}");
        }
        let unfolded = head.replace("\r\n ", " ");
        assert!(unfolded.contains(
            "Subject: Report Domain: example.com Submitter: google.com Report-ID: <123@google.com>"
        ));
        assert!(body.contains("--000000000000abcdef\r\nContent-Type: text/plain"));
        assert!(body.contains(
            "Content-Type: application/zip; name=\"google.com!example.com!1!2.zip\"\r\n"
        ));
        assert!(body.contains(
            "Content-Disposition: attachment; filename=\"google.com!example.com!1!2.zip\"\r\n"
        ));
        assert!(body.ends_with("--000000000000abcdef--\r\n"));
        // Every line ends in CRLF and is at most 78 characters (base64 lines are 76).
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert!(text.split("\r\n").all(|l| l.len() <= 78), "long line");
        let b64: Vec<&str> = body
            .split("\r\n")
            .skip_while(|l| !l.is_empty())
            .skip(1)
            .skip_while(|l| !l.starts_with("Content-Transfer-Encoding: base64"))
            .skip(2)
            .take_while(|l| !l.starts_with("--"))
            .collect();
        assert!(b64.iter().rev().skip(1).all(|l| l.len() == 76), "{b64:?}");
        let decoded = STANDARD.decode(b64.concat()).expect("base64");
        assert_eq!(decoded, sample().attachment.data);
    }

    #[test]
    fn tls_report_email_carries_report_headers() {
        let mut email = sample();
        email.container = Container::Report {
            report_type: "tlsrpt".into(),
        };
        email.extra_headers = vec![
            ("TLS-Report-Domain".into(), "example.com".into()),
            ("TLS-Report-Submitter".into(), "google.com".into()),
        ];
        email.attachment.content_type = "application/tlsrpt+gzip".into();
        let text = String::from_utf8(email.to_bytes())
            .expect("ascii")
            .replace("\r\n ", " ");
        assert!(text.contains("TLS-Report-Domain: example.com\r\n"));
        assert!(text.contains("TLS-Report-Submitter: google.com\r\n"));
        assert!(text.contains("Content-Type: multipart/report; report-type=tlsrpt; boundary="));
        assert!(text.contains("Content-Type: application/tlsrpt+gzip; name="));
    }

    #[test]
    fn hostile_header_values_cannot_inject_headers() {
        let mut email = sample();
        email.subject = "Report\r\nBcc: victim@example.org".into();
        email.attachment.filename = "a\"b\r\n.zip".into();
        email.from = "Zoë Reporter <z@example.net>".into();
        let text = String::from_utf8(email.to_bytes()).expect("ascii");
        assert!(!text.contains("\r\nBcc:"));
        assert!(text.contains("filename=\"a\\\"b.zip\""));
        assert!(text.contains("From: =?UTF-8?B?"));
        assert!(text.is_ascii());
    }

    #[test]
    fn subject_styles() {
        let d = Utc
            .with_ymd_and_hms(2021, 5, 6, 0, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(
            SubjectStyle::Braced.render("e.com", "Amazon SES", "id1", d),
            "Dmarc Aggregate Report Domain: {e.com} Submitter: {Amazon SES} Date: {2021-05-06} Report-ID: {id1}"
        );
        assert_eq!(
            SubjectStyle::LowercaseUnbracketed.render("e.com", "google.com", "7", d),
            "Report domain: e.com Submitter: google.com Report-ID: 7"
        );
    }
}
