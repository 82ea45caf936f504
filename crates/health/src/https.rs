//! The MTA-STS policy fetch: one HTTPS GET over rustls (ring), certificate validation always
//! on, a byte limit and a time limit, no redirects (RFC 8461 §3.3 forbids following them).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::HealthError;

/// Largest response header block accepted.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why the policy could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// The certificate was rejected; the string says why in plain English.
    Certificate(String),
    /// TCP connection failed.
    Connect(String),
    /// Other TLS failure (handshake, protocol).
    Tls(String),
    /// Nothing within the time limit.
    Timeout(Duration),
    /// A status other than 200 (redirects included).
    Status(u16, Option<String>),
    /// The body is larger than the limit.
    TooLarge(usize),
    /// Not a valid HTTP/1.x response.
    Malformed(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(why) => write!(f, "the certificate was rejected: {why}"),
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::Tls(e) => write!(f, "the TLS handshake failed: {e}"),
            Self::Timeout(d) => write!(f, "no complete answer within {} s", d.as_secs_f32()),
            Self::Status(code, Some(loc)) => {
                write!(f, "the server answered HTTP {code} (redirect to {loc})")
            }
            Self::Status(code, None) => write!(f, "the server answered HTTP {code}"),
            Self::TooLarge(limit) => write!(f, "the file is larger than {limit} bytes"),
            Self::Malformed(e) => write!(f, "the answer is not valid HTTP: {e}"),
        }
    }
}

/// A fetched policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetched {
    pub content_type: Option<String>,
    pub body: String,
}

/// Fetches `https://HOST/PATH`.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    tls: Arc<ClientConfig>,
    timeout: Duration,
    max_bytes: usize,
}

impl Fetcher {
    /// Trusts the Mozilla roots (webpki-roots) plus `extra_roots`.
    pub(crate) fn new(
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Self, HealthError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| HealthError::TrustRoot(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HealthError::TrustRoot(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(config),
            timeout,
            max_bytes,
        })
    }

    /// GETs `path` from `host`, connecting to `addr`.
    pub(crate) async fn get(
        &self,
        host: &str,
        addr: SocketAddr,
        path: &str,
    ) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(self.timeout, self.get_inner(host, addr, path)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn get_inner(
        &self,
        host: &str,
        addr: SocketAddr,
        path: &str,
    ) -> Result<Fetched, FetchError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| FetchError::Tls(format!("{host:?} is not a server name: {e}")))?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| FetchError::Connect(format!("{addr}: {e}")))?;
        let connector = TlsConnector::from(self.tls.clone());
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(&e))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sealwatch-health\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| tls_error(&e))?;
        let limit = MAX_HEADER_BYTES + self.max_bytes + 64;
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(done) = self.try_complete(&buf)? {
                return Ok(done);
            }
            if buf.len() > limit {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            match tls.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // a server closing without close_notify: treat as end of stream
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(tls_error(&e)),
            }
        }
        self.finish_at_eof(&buf)
    }

    /// A complete response in `buf` (by Content-Length or chunked end), if there is one.
    fn try_complete(&self, buf: &[u8]) -> Result<Option<Fetched>, FetchError> {
        let Some(head) = parse_head(buf)? else {
            return Ok(None);
        };
        let body = &buf[head.len..];
        if let Some(n) = head.content_length {
            if n > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            if body.len() >= n {
                return self.finish(&head, &body[..n]).map(Some);
            }
        } else if head.chunked
            && let Some(decoded) = dechunk(body, self.max_bytes)?
        {
            return self.finish(&head, &decoded).map(Some);
        }
        Ok(None)
    }

    fn finish_at_eof(&self, buf: &[u8]) -> Result<Fetched, FetchError> {
        let head = parse_head(buf)?
            .ok_or_else(|| FetchError::Malformed("the connection closed early".to_owned()))?;
        let body = &buf[head.len..];
        if head.content_length.is_some() || head.chunked {
            return Err(FetchError::Malformed(
                "the connection closed before the whole body arrived".to_owned(),
            ));
        }
        if body.len() > self.max_bytes {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        self.finish(&head, body)
    }

    fn finish(&self, head: &Head, body: &[u8]) -> Result<Fetched, FetchError> {
        if head.status != 200 {
            return Err(FetchError::Status(head.status, head.location.clone()));
        }
        if body.len() > self.max_bytes {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        Ok(Fetched {
            content_type: head.content_type.clone(),
            body: String::from_utf8_lossy(body).into_owned(),
        })
    }
}

fn tls_error(e: &std::io::Error) -> FetchError {
    if let Some(inner) = e.get_ref()
        && let Some(rustls_err) = inner.downcast_ref::<rustls::Error>()
    {
        return match rustls_err {
            rustls::Error::InvalidCertificate(c) => FetchError::Certificate(certificate_problem(c)),
            other => FetchError::Tls(other.to_string()),
        };
    }
    FetchError::Tls(e.to_string())
}

/// Plain-English reason for a rejected certificate.
fn certificate_problem(e: &CertificateError) -> String {
    match e {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".to_owned()
        }
        CertificateError::UnknownIssuer => {
            "it is not issued by a trusted certificate authority (self-signed or private CA)"
                .to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it is issued for other names, not for this host".to_owned()
        }
        CertificateError::Revoked => "it has been revoked".to_owned(),
        CertificateError::BadSignature => "its signature is invalid".to_owned(),
        other => format!("{other:?}"),
    }
}

#[derive(Debug)]
struct Head {
    len: usize,
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    content_type: Option<String>,
    location: Option<String>,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, FetchError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEADER_BYTES {
            return Err(FetchError::Malformed("the headers are too long".to_owned()));
        }
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(FetchError::Malformed(format!(
            "status line {status_line:?}"
        )));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| FetchError::Malformed(format!("status line {status_line:?}")))?;
    let mut head = Head {
        len: end + 4,
        status,
        content_length: None,
        chunked: false,
        content_type: None,
        location: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                head.content_length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| FetchError::Malformed(format!("Content-Length {value:?}")))?,
                );
            }
            "transfer-encoding" => {
                head.chunked = value.to_ascii_lowercase().contains("chunked");
            }
            "content-type" => head.content_type = Some(value.to_owned()),
            "location" => head.location = Some(value.to_owned()),
            _ => {}
        }
    }
    if head.chunked {
        head.content_length = None;
    }
    Ok(Some(head))
}

/// Decodes a chunked body; `None` while incomplete.
fn dechunk(mut body: &[u8], max: usize) -> Result<Option<Vec<u8>>, FetchError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| FetchError::Malformed(format!("chunk size {size_text:?}")))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if out.len() + size > max {
            return Err(FetchError::TooLarge(max));
        }
        if body.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_chunks() {
        let r = b"HTTP/1.1 301 Moved\r\nLocation: https://x.test/\r\nContent-Length: 0\r\n\r\n";
        let h = parse_head(r).expect("valid").expect("complete");
        assert_eq!(h.status, 301);
        assert_eq!(h.location.as_deref(), Some("https://x.test/"));
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 100).expect("valid"),
            Some(b"hello world".to_vec())
        );
        assert_eq!(dechunk(b"5\r\nhel", 100).expect("valid"), None);
        assert!(matches!(
            dechunk(b"ff\r\n", 10),
            Err(FetchError::TooLarge(10))
        ));
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }
}
