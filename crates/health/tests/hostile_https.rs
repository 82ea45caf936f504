//! The MTA-STS policy fetch against a hostile policy host: an in-process HTTPS server (tokio
//! and tokio-rustls, with the test CA's certificate for `mta-sts.perfect.test` made by
//! `tests/servers/start.sh`) that answers with an overflowing chunk size, endless headers, a
//! slow drip, an impossible Content-Length, a body over the limit or a redirect. Each check
//! ends in a report with the right finding, without a panic, within the fetch's time limit.
//! And an `mta-sts.` host on a private address is never connected to unless private
//! addresses are allowed. The names come from NSD serving `tests/servers/dns`.

mod servers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sealwatch_health::{
    CheckConfig, CheckId, HealthReport, MtaStsState, Observed, OutboundPolicy, Severity,
};
use servers::{check_with, config, finding, listing};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The fetch's time limit in these tests.
const FETCH_LIMIT: Duration = Duration::from_secs(3);
/// Guard against a hang: far above the fetch limit, so never the reason a test passes.
const HANG_GUARD: Duration = Duration::from_secs(60);
/// The domain checked: its `mta-sts.` name resolves to 127.0.0.1 and the certificate
/// covers it.
const DOMAIN: &str = "perfect.test";

/// What the hostile server answers after reading the request head.
#[derive(Debug, Clone)]
enum Answer {
    /// A valid policy for perfect.test.
    Policy,
    /// A chunked body whose chunk size is 2^64-1, followed by bytes as fast as they go.
    ChunkSizeMax,
    /// A chunked body whose chunk size is 2^64 (one past what 64 bits hold).
    ChunkSizeOverflow,
    /// Header lines until the client gives up.
    EndlessHeaders,
    /// The status line and headers, one byte per 200 ms, never ending.
    SlowDrip,
    /// `Content-Length: 18446744073709551615` (2^64-1).
    ContentLengthMax,
    /// `Content-Length` of 1 GiB, and then the bytes as fast as they go.
    ContentLengthHuge,
    /// A chunked body of 256 KiB (the limit is 64 KiB), then the end.
    BodyOverLimit,
    /// `301` to another URL.
    Redirect(String),
}

/// An HTTPS server on 127.0.0.1 that counts the connections it accepts.
struct Hostile {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
}

impl Hostile {
    async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let accepts = Arc::new(AtomicUsize::new(0));
        let acceptor = acceptor();
        let counter = accepts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await
                        && read_request_head(&mut tls).await
                    {
                        // the client hanging up ends the answer; nothing to report
                        let _ = serve(&mut tls, &answer).await;
                    }
                });
            }
        });
        Self { addr, accepts }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

/// The test CA's leaf for every test zone (`*.perfect.test` included).
fn acceptor() -> TlsAcceptor {
    let certs_dir = format!("{}/certs", servers::var("SEALWATCH_TEST_SERVERS_STATE"));
    let chain = std::fs::read(format!("{certs_dir}/https-zones-chain.pem")).expect("leaf chain");
    let key = std::fs::read(format!("{certs_dir}/https-zones.key")).expect("leaf key");
    let chain = rustls_pemfile::certs(&mut chain.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates");
    let key = rustls_pemfile::private_key(&mut key.as_slice())
        .expect("PEM key")
        .expect("a private key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("certificate and key");
    TlsAcceptor::from(Arc::new(config))
}

/// Reads up to the end of the request head; false when the client went away first.
async fn read_request_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return false;
        }
    }
    true
}

async fn serve<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    answer: &Answer,
) -> std::io::Result<()> {
    match answer {
        Answer::Policy => {
            let body = std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/servers/https/www/mta-sts.perfect.test/.well-known/mta-sts.txt"
            ))?;
            s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
            s.write_all(&body).await?;
        }
        Answer::ChunkSizeMax => {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
                  ffffffffffffffff\r\n",
            )
            .await?;
            let block = vec![b'a'; 16 * 1024];
            loop {
                s.write_all(&block).await?;
            }
        }
        Answer::ChunkSizeOverflow => {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
                  10000000000000000\r\nversion: STSv1\r\n",
            )
            .await?;
            s.flush().await?;
            tokio::time::sleep(HANG_GUARD).await;
        }
        Answer::EndlessHeaders => {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
                .await?;
            let line =
                b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            loop {
                s.write_all(line).await?;
            }
        }
        Answer::SlowDrip => {
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n";
            for b in head.iter().chain(b"X-Drip: 1\r\n".iter().cycle()) {
                s.write_all(&[*b]).await?;
                s.flush().await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Answer::ContentLengthMax => {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18446744073709551615\r\n\r\nversion: STSv1\r\n",
            )
            .await?;
            s.flush().await?;
            tokio::time::sleep(HANG_GUARD).await;
        }
        Answer::ContentLengthHuge => {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1073741824\r\n\r\n",
            )
            .await?;
            let block = vec![b'a'; 16 * 1024];
            loop {
                s.write_all(&block).await?;
            }
        }
        Answer::BodyOverLimit => {
            s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await?;
            let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
            for _ in 0..16 {
                s.write_all(chunk.as_bytes()).await?;
            }
            s.write_all(b"0\r\n\r\n").await?;
        }
        Answer::Redirect(location) => {
            s.write_all(
                format!(
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        }
    }
    s.flush().await?;
    s.shutdown().await
}

/// The check configuration of these tests: policy fetches go to `server`.
fn against(server: &Hostile) -> CheckConfig {
    CheckConfig {
        mta_sts_connect: Some(server.addr),
        https_timeout: FETCH_LIMIT,
        // blocklists play no part here
        dnsbl_zones: Vec::new(),
        domain_blocklists: Vec::new(),
        ..config()
    }
}

async fn check(config: CheckConfig) -> HealthReport {
    tokio::time::timeout(HANG_GUARD, check_with(config, DOMAIN))
        .await
        .expect("the check ends")
}

/// The check against a server answering `answer`: the policy is unavailable, and the
/// finding's summary contains `why`. The server saw exactly one connection.
async fn unavailable_because(answer: Answer, why: &str) -> HealthReport {
    let server = Hostile::start(answer).await;
    let r = check(against(&server)).await;
    let f = finding(&r, CheckId::MtaStsPolicyUnavailable);
    assert_eq!(f.severity, Severity::Critical, "{}", listing(&r));
    assert!(
        f.summary.contains(why),
        "{why:?} not in {:?}\n{}",
        f.summary,
        listing(&r)
    );
    assert_eq!(r.mta_sts, MtaStsState::Broken);
    assert!(!r.has(CheckId::MtaStsOk));
    let policy = r
        .records
        .iter()
        .find(|o| o.rtype == "POLICY")
        .expect("policy observed");
    assert!(
        matches!(&policy.observed, Observed::Failed(_)),
        "{policy:?}"
    );
    // the other checks ran as usual
    assert_eq!(finding(&r, CheckId::DmarcOk).severity, Severity::Ok);
    assert_eq!(server.accepts(), 1);
    r
}

#[tokio::test]
async fn the_good_policy_from_the_same_server_is_read() {
    let server = Hostile::start(Answer::Policy).await;
    let r = check(against(&server)).await;
    assert_eq!(r.mta_sts, MtaStsState::Enforce, "{}", listing(&r));
    assert_eq!(finding(&r, CheckId::MtaStsOk).severity, Severity::Ok);
}

#[tokio::test]
async fn a_chunk_size_of_two_to_the_64_minus_one() {
    unavailable_because(Answer::ChunkSizeMax, "the file is larger than 65536 bytes").await;
}

#[tokio::test]
async fn a_chunk_size_of_two_to_the_64() {
    unavailable_because(
        Answer::ChunkSizeOverflow,
        "the answer is not valid HTTP: error reading a body from connection: invalid chunk size",
    )
    .await;
}

#[tokio::test]
async fn endless_header_lines() {
    unavailable_because(Answer::EndlessHeaders, "message head is too large").await;
}

#[tokio::test]
async fn a_slow_drip_of_one_byte_every_200_ms() {
    unavailable_because(Answer::SlowDrip, "no complete answer within 3 s").await;
}

#[tokio::test]
async fn a_content_length_of_two_to_the_64_minus_one() {
    unavailable_because(Answer::ContentLengthMax, "not valid HTTP").await;
}

#[tokio::test]
async fn a_content_length_over_the_limit() {
    unavailable_because(
        Answer::ContentLengthHuge,
        "the file is larger than 65536 bytes",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit() {
    unavailable_because(Answer::BodyOverLimit, "the file is larger than 65536 bytes").await;
}

#[tokio::test]
async fn a_redirect_is_reported_and_not_followed() {
    let target = Hostile::start(Answer::Policy).await;
    let location = format!(
        "https://mta-sts.{DOMAIN}:{}/.well-known/mta-sts.txt",
        target.addr.port()
    );
    unavailable_because(
        Answer::Redirect(location.clone()),
        &format!("the server answered HTTP 301 (redirect to {location})"),
    )
    .await;
    assert_eq!(target.accepts(), 0, "the redirect was followed");
}

#[tokio::test]
async fn a_private_policy_address_is_never_connected_to() {
    let server = Hostile::start(Answer::Policy).await;
    // mta-sts.perfect.test resolves to 127.0.0.1 only; the override points at the server,
    // which is what the check would reach if it connected at all
    let r = check(CheckConfig {
        outbound: OutboundPolicy::PublicOnly,
        ..against(&server)
    })
    .await;
    assert_eq!(server.accepts(), 0, "connected to a private address");
    let f = finding(&r, CheckId::MtaStsPolicyUnavailable);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.summary,
        "the MTA-STS policy file cannot be fetched: mta-sts.perfect.test resolves only to an \
         address not reachable from the internet: 127.0.0.1 (loopback, 127.0.0.0/8)"
    );
    assert!(
        f.explanation
            .contains("Mail servers on the internet cannot fetch"),
        "{}",
        f.explanation
    );
    assert_eq!(r.mta_sts, MtaStsState::Broken);

    // the same check with private addresses allowed connects and reads the policy
    let r = check(CheckConfig {
        outbound: OutboundPolicy::AllowPrivate,
        ..against(&server)
    })
    .await;
    assert_eq!(server.accepts(), 1);
    assert_eq!(r.mta_sts, MtaStsState::Enforce, "{}", listing(&r));
}
