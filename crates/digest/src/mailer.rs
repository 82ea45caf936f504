//! Delivery through an SMTP relay with lettre: a pooled async transport, implicit TLS,
//! STARTTLS or (loopback only) plain; an optional private CA; credentials; a timeout; one
//! multipart/alternative message (text + HTML) per digest with `Message-ID`, `Reply-To`,
//! `List-Unsubscribe` and `List-Unsubscribe-Post`.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::DigestError;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS; refuses to continue without it.
    StartTls,
    /// No TLS: only to a loopback relay.
    Plain,
}

impl SmtpTls {
    /// `implicit` | `starttls` | `plain`.
    pub fn parse(s: &str) -> Result<SmtpTls, DigestError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "implicit" | "tls" | "smtps" => Ok(SmtpTls::Implicit),
            "starttls" => Ok(SmtpTls::StartTls),
            "plain" | "none" => Ok(SmtpTls::Plain),
            other => Err(DigestError::Config(format!(
                "smtp tls {other:?} is not one of implicit, starttls, plain"
            ))),
        }
    }
}

/// Relay settings (the binary maps its `[smtp]` section to this).
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Name the relay's certificate must carry (defaults to `host`).
    pub tls_name: Option<String>,
    pub username: Option<String>,
    /// The password itself (read from the environment by the caller).
    pub password: Option<String>,
    /// Extra trust roots, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// Timeout of each SMTP command.
    pub timeout: Duration,
    /// Connections kept open to the relay.
    pub pool_size: u32,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// Sender identity and list headers.
#[derive(Debug, Clone)]
pub struct Sender {
    /// `From:`, e.g. `sealwatch <digest@example.net>`.
    pub from: String,
    /// `Reply-To:`.
    pub reply_to: Option<String>,
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub recipients: &'a [String],
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    /// Without angle brackets: `digest.1.2026-W48.x@example.net`.
    pub message_id: &'a str,
    pub unsubscribe_url: Option<&'a str>,
}

/// A failed send: whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// The relay said no for good (5xx) or the message itself is invalid.
    pub permanent: bool,
    pub message: String,
}

/// The SMTP client (cheap to clone; shares the connection pool).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// Checks a recipient address (`name@example.org`) and returns it trimmed.
pub fn parse_recipient(s: &str) -> Result<String, DigestError> {
    let s = s.trim();
    s.parse::<lettre::Address>()
        .map(|_| s.to_owned())
        .map_err(|e| DigestError::Config(format!("recipient {s:?}: {e}")))
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

impl Mailer {
    /// Builds the transport (inside a Tokio runtime: the pool spawns its reaper). Refuses plain SMTP to anything but a loopback relay.
    pub fn new(smtp: &SmtpSettings, sender: &Sender) -> Result<Mailer, DigestError> {
        let config = |m: String| DigestError::Config(m);
        let from: Mailbox = sender
            .from
            .parse()
            .map_err(|e| config(format!("digest from {:?}: {e}", sender.from)))?;
        let reply_to = sender
            .reply_to
            .as_deref()
            .map(|r| {
                r.parse::<Mailbox>()
                    .map_err(|e| config(format!("digest reply_to {r:?}: {e}")))
            })
            .transpose()?;
        let tls_name = smtp.tls_name.clone().unwrap_or_else(|| smtp.host.clone());
        let tls_params = || -> Result<TlsParameters, DigestError> {
            let mut b = TlsParameters::builder(tls_name.clone());
            if let Some(pem) = &smtp.ca_pem {
                let cert =
                    Certificate::from_pem(pem).map_err(|e| config(format!("smtp ca_file: {e}")))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| config(format!("smtp TLS settings: {e}")))
        };
        let tls = match smtp.tls {
            SmtpTls::Implicit => Tls::Wrapper(tls_params()?),
            SmtpTls::StartTls => Tls::Required(tls_params()?),
            SmtpTls::Plain => {
                if !is_loopback(&smtp.host) {
                    return Err(config(format!(
                        "plain SMTP is only allowed to a loopback relay, not {:?}: use implicit or starttls",
                        smtp.host
                    )));
                }
                Tls::None
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(smtp.timeout))
            .pool_config(PoolConfig::new().max_size(smtp.pool_size.max(1)));
        if let Some(user) = &smtp.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                smtp.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            reply_to,
        })
    }

    /// The domain of the `From:` address (used in Message-IDs).
    pub fn from_domain(&self) -> String {
        self.from.email.domain().to_owned()
    }

    /// Builds the MIME message.
    pub fn message(&self, m: &Outgoing<'_>) -> Result<Message, SendError> {
        let invalid = |e: String| SendError {
            permanent: true,
            message: e,
        };
        if m.recipients.is_empty() {
            return Err(invalid("no recipients".into()));
        }
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(m.subject)
            .message_id(Some(format!("<{}>", m.message_id)));
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        for r in m.recipients {
            let to: Mailbox = r
                .parse()
                .map_err(|e| invalid(format!("recipient {r:?}: {e}")))?;
            b = b.to(to);
        }
        if let Some(u) = m.unsubscribe_url {
            b = b
                .header(ListUnsubscribe(u.to_owned()))
                .header(ListUnsubscribePost);
        }
        b.multipart(MultiPart::alternative_plain_html(
            m.text.to_owned(),
            m.html.to_owned(),
        ))
        .map_err(|e| invalid(format!("building the message: {e}")))
    }

    /// Sends one message.
    pub async fn send(&self, m: &Outgoing<'_>) -> Result<(), SendError> {
        let message = self.message(m)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError {
                permanent: e.is_permanent(),
                message: format!("SMTP: {e}"),
            })
    }

    /// Checks the relay answers (connects, greets, NOOP).
    pub async fn test_connection(&self) -> Result<bool, SendError> {
        self.transport
            .test_connection()
            .await
            .map_err(|e| SendError {
                permanent: false,
                message: format!("SMTP: {e}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str, tls: SmtpTls) -> SmtpSettings {
        SmtpSettings {
            host: host.into(),
            port: 25,
            tls,
            tls_name: None,
            username: None,
            password: Some("secret".into()),
            ca_pem: None,
            timeout: Duration::from_secs(5),
            pool_size: 2,
        }
    }

    fn sender() -> Sender {
        Sender {
            from: "sealwatch <digest@example.net>".into(),
            reply_to: Some("support@example.net".into()),
        }
    }

    #[tokio::test]
    async fn plain_smtp_only_to_loopback() {
        assert!(Mailer::new(&settings("127.0.0.1", SmtpTls::Plain), &sender()).is_ok());
        assert!(Mailer::new(&settings("localhost", SmtpTls::Plain), &sender()).is_ok());
        assert!(Mailer::new(&settings("::1", SmtpTls::Plain), &sender()).is_ok());
        let err = Mailer::new(&settings("smtp.example.net", SmtpTls::Plain), &sender())
            .expect_err("refused");
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(Mailer::new(&settings("smtp.example.net", SmtpTls::StartTls), &sender()).is_ok());
        assert!(!format!("{:?}", settings("h", SmtpTls::Plain)).contains("secret"));
    }

    #[tokio::test]
    async fn message_has_both_parts_and_list_headers() {
        let mailer = Mailer::new(&settings("127.0.0.1", SmtpTls::Plain), &sender()).expect("ok");
        let rcpts = vec!["a@example.org".to_owned(), "b@example.org".to_owned()];
        let m = mailer
            .message(&Outgoing {
                recipients: &rcpts,
                subject: "[example.org] Weekly email security, 2026-W48: All clear",
                text: "hello text",
                html: "<p>hello html</p>",
                message_id: "digest.1.2026-W48.abc@example.net",
                unsubscribe_url: Some("https://example.net/unsubscribe?t=1"),
            })
            .expect("builds");
        let raw = String::from_utf8(m.formatted()).expect("utf-8");
        assert!(raw.contains("Message-ID: <digest.1.2026-W48.abc@example.net>"));
        assert!(raw.contains("List-Unsubscribe: <https://example.net/unsubscribe?t=1>"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(raw.contains("Reply-To: support@example.net"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(raw.contains("To: a@example.org, b@example.org"));
    }
}
