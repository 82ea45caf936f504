//! The MTA-STS policy fetch: one HTTPS GET, certificate validation always on, a byte limit
//! and a time limit, no redirects (RFC 8461 §3.3 forbids following them).
//!
//! The TCP connection and the TLS handshake are ours (tokio-rustls on ring), so a rejected
//! certificate is reported precisely; the HTTP/1.1 exchange on the established stream is
//! hyper's client connection, with the response head bounded (`MAX_HEAD_BYTES`,
//! `MAX_HEADERS`) and the body read under the byte limit (`http_body_util::Limited`). The
//! whole fetch runs under one time limit. Nothing here does arithmetic on what the server
//! sends (lint below).

#![deny(clippy::arithmetic_side_effects)]

use std::error::Error as _;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use hyper::body::{Body as _, Bytes};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::HealthError;

/// Largest response head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most response header fields accepted.
const MAX_HEADERS: usize = 64;
/// Largest read buffer of the HTTP connection (at least hyper's minimum of 8 KiB).
const MAX_BUF_BYTES: usize = 32 * 1024;

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
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_header_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_BUF_BYTES)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
            .await
            .map_err(|e| http_error(&e))?;
        let request = Request::get(path)
            .header(HOST, host)
            .header(USER_AGENT, "sealwatch-health")
            .header(ACCEPT, "text/plain")
            .body(Empty::new())
            .map_err(|e| FetchError::Malformed(format!("the request for {path:?}: {e}")))?;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| http_error(&e))?;
            self.read_response(response).await
        };
        // The connection future does the reading and writing; drive it beside the exchange
        // until the exchange is done (the connection may finish first, e.g. on close).
        tokio::pin!(exchange);
        tokio::pin!(connection);
        let mut connection_done = false;
        loop {
            tokio::select! {
                result = &mut exchange => return result,
                // an error here also fails the exchange, which reports it
                _ = &mut connection, if !connection_done => connection_done = true,
            }
        }
    }

    /// The status, the headers and, for a 200, the body under the byte limit.
    async fn read_response(
        &self,
        response: hyper::Response<hyper::body::Incoming>,
    ) -> Result<Fetched, FetchError> {
        let status = response.status();
        if status != StatusCode::OK {
            let location = response
                .headers()
                .get(LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(FetchError::Status(status.as_u16(), location));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = response.into_body();
        // A declared Content-Length over the limit ends the fetch before reading.
        let limit = u64::try_from(self.max_bytes).unwrap_or(u64::MAX);
        if body.size_hint().lower() > limit {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let collected = Limited::new(body, self.max_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    FetchError::TooLarge(self.max_bytes)
                } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
                    http_error(h)
                } else {
                    FetchError::Malformed(e.to_string())
                }
            })?;
        Ok(Fetched {
            content_type,
            body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        })
    }
}

/// What a failed HTTP exchange means for the policy fetch.
fn http_error(e: &hyper::Error) -> FetchError {
    // e.g. "message head is too large" past MAX_HEAD_BYTES or MAX_HEADERS
    if e.is_parse() {
        return FetchError::Malformed(e.to_string());
    }
    if e.is_incomplete_message() {
        return FetchError::Malformed(
            "the connection closed before the whole answer arrived".to_owned(),
        );
    }
    // A TLS error underneath is reported as such; an I/O error raised while decoding (an
    // invalid chunk size, for example) or a broken connection is a bad answer.
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return tls_error(io);
            }
            return FetchError::Malformed(format!("{e}: {io}"));
        }
        source = s.source();
    }
    // Other protocol errors (an invalid chunk size or body framing, for example).
    FetchError::Malformed(e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_plain_english() {
        assert_eq!(
            FetchError::Status(301, Some("https://x.test/".to_owned())).to_string(),
            "the server answered HTTP 301 (redirect to https://x.test/)"
        );
        assert_eq!(
            FetchError::TooLarge(65_536).to_string(),
            "the file is larger than 65536 bytes"
        );
        assert_eq!(
            FetchError::Timeout(Duration::from_secs(2)).to_string(),
            "no complete answer within 2 s"
        );
    }

    #[test]
    fn certificate_errors_are_named() {
        assert_eq!(
            certificate_problem(&CertificateError::Expired),
            "it has expired"
        );
        assert_eq!(
            certificate_problem(&CertificateError::NotValidForName),
            "it is issued for other names, not for this host"
        );
    }
}
