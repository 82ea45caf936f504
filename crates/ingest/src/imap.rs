//! The IMAP poller: many mailboxes concurrently, incremental by UID, crash-safe.
//!
//! Per mailbox and batch of UIDs: fetch (`BODY.PEEK[]`, so nothing is marked read by
//! accident) → parse and route → one database transaction storing the reports or quarantine
//! entries *and* the `(mailbox, UIDVALIDITY, UID)` processed marks → only then move, flag or
//! delete on the server → advance the stored sync position. A crash between any two steps
//! repeats at most the later steps, which are idempotent. A changed UIDVALIDITY restarts the
//! sync from the first message; stored content dedupes by message hash and report key.
//!
//! The `imap` crate is blocking; each mailbox session runs on a blocking thread with read,
//! write and connect timeouts, and a bounded number run at once.

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sealwatch_parser::Parser;
use sealwatch_store::{
    AfterAction, Item, Mailbox, MessageSource, NewMessage, PollRecord, Store, TlsMode, WriteOutcome,
};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tracing::{info, info_span, warn};

use crate::prepare::{prepare, sha256_hex};
use crate::route::Router;
use crate::{IngestError, Result};

/// The prefix a mailbox's `password_env` must start with unless configured otherwise.
pub const DEFAULT_PASSWORD_ENV_PREFIX: &str = "SEALWATCH_MAILBOX_";

/// Why a `password_env` name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordEnvRefusal {
    #[error(
        "must be an environment variable name (letters, digits, single _; at most 128 characters)"
    )]
    NotAName,
    #[error(
        "must start with {prefix:?} (poller.password_env_prefix): only those variables hold mailbox passwords"
    )]
    OutsidePrefix { prefix: String },
}

/// Whether a mailbox may read its password from the environment variable `name`: a
/// variable name that starts with `prefix` and is longer than it. Anything else could
/// make the poller send another secret of the process (the database URL, the SMTP
/// password) to a host the mailbox names.
pub fn check_password_env(name: &str, prefix: &str) -> std::result::Result<(), PasswordEnvRefusal> {
    if name.is_empty()
        || name.len() > 128
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        // `SEALWATCH_<SECTION>__<KEY>` names are configuration (the database URL among
        // them), never a mailbox password, whatever the prefix is set to.
        || name.contains("__")
    {
        return Err(PasswordEnvRefusal::NotAName);
    }
    if prefix.is_empty() || !name.starts_with(prefix) || name.len() == prefix.len() {
        return Err(PasswordEnvRefusal::OutsidePrefix {
            prefix: prefix.to_owned(),
        });
    }
    Ok(())
}

/// Poller settings.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Mailboxes polled at the same time.
    pub concurrency: usize,
    /// Messages per FETCH and per database transaction.
    pub batch_size: usize,
    /// Timeout of every network operation (connect, each read, each write).
    pub timeout: Duration,
    /// Reconnect attempts after a network failure within one poll.
    pub retries: u32,
    /// First reconnect delay; doubles each attempt.
    pub backoff: Duration,
    /// A mailbox's password is read only from an environment variable with this prefix
    /// (checked again at use: a row written before the rule is refused, not read).
    pub password_env_prefix: String,
}

/// The outcome of polling one mailbox.
#[derive(Debug, Clone)]
pub struct MailboxPoll {
    pub mailbox_id: i64,
    pub name: String,
    /// `ok`, `auth-failed`, `connect-failed`, `config-error`, `error`.
    pub status: String,
    pub error: Option<String>,
    pub outcome: WriteOutcome,
    pub fetched: u64,
    pub elapsed: Duration,
}

/// One cycle over all mailboxes.
#[derive(Debug, Clone, Default)]
pub struct PollSummary {
    pub mailboxes: Vec<MailboxPoll>,
    pub outcome: WriteOutcome,
}

impl PollSummary {
    pub fn failed(&self) -> usize {
        self.mailboxes.iter().filter(|m| m.status != "ok").count()
    }
}

/// Polls IMAP mailboxes into the store.
#[derive(Debug, Clone)]
pub struct Poller {
    store: Store,
    parser: Arc<Parser>,
    config: PollerConfig,
    tls: Arc<ClientConfig>,
}

impl Poller {
    /// Builds a poller. `extra_ca` adds PEM trust roots (a private CA) to the public ones.
    pub fn new(
        store: Store,
        parser: Arc<Parser>,
        config: PollerConfig,
        extra_ca: Option<&Path>,
    ) -> Result<Self> {
        let tls = Arc::new(tls_config(extra_ca)?);
        Ok(Poller {
            store,
            parser,
            config,
            tls,
        })
    }

    /// Polls every enabled mailbox once, `concurrency` at a time.
    pub async fn poll_all(&self) -> Result<PollSummary> {
        let mailboxes: Vec<Mailbox> = self
            .store
            .list_mailboxes()
            .await?
            .into_iter()
            .filter(|m| m.enabled)
            .collect();
        self.poll_these(mailboxes).await
    }

    /// Polls the given mailboxes once.
    pub async fn poll_these(&self, mailboxes: Vec<Mailbox>) -> Result<PollSummary> {
        let router = Arc::new(Router::new(self.store.routing_entries().await?));
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for mailbox in mailboxes {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| IngestError::Task(e.to_string()))?;
            let this = self.clone();
            let router = router.clone();
            tasks.spawn(async move {
                let result = this.poll_mailbox(mailbox, router).await;
                drop(permit);
                result
            });
        }
        let mut summary = PollSummary::default();
        while let Some(joined) = tasks.join_next().await {
            let poll = joined.map_err(|e| IngestError::Task(e.to_string()))?;
            summary.outcome.merge(&poll.outcome);
            summary.mailboxes.push(poll);
        }
        summary.mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(summary)
    }

    /// Polls one mailbox, retrying network failures with backoff; records its status.
    pub async fn poll_mailbox(&self, mailbox: Mailbox, router: Arc<Router>) -> MailboxPoll {
        let started = Instant::now();
        let this = self.clone();
        let name = mailbox.name.clone();
        let id = mailbox.id;
        let handle = Handle::current();
        let joined = tokio::task::spawn_blocking(move || {
            let span = info_span!("poll", mailbox = %mailbox.name, mailbox_id = mailbox.id, tenant_id = ?mailbox.tenant_id);
            let _entered = span.enter();
            this.poll_blocking(&handle, &mailbox, &router)
        })
        .await;
        let (status, error, outcome, fetched) = match joined {
            Ok(Ok((outcome, fetched))) => ("ok".to_owned(), None, outcome, fetched),
            Ok(Err(failure)) => (
                failure.status.to_owned(),
                Some(failure.message),
                *failure.outcome,
                failure.fetched,
            ),
            Err(e) => (
                "error".to_owned(),
                Some(format!("poll task failed: {e}")),
                WriteOutcome::default(),
                0,
            ),
        };
        if let Some(e) = &error {
            warn!(mailbox = %name, status = %status, error = %e, "mailbox poll failed");
        }
        let record = PollRecord {
            status: status.clone(),
            error: error.clone(),
        };
        if let Err(e) = self.store.record_poll(id, &record).await {
            warn!(mailbox = %name, error = %e, "could not record poll status");
        }
        MailboxPoll {
            mailbox_id: id,
            name,
            status,
            error,
            outcome,
            fetched,
            elapsed: started.elapsed(),
        }
    }

    fn poll_blocking(
        &self,
        rt: &Handle,
        mailbox: &Mailbox,
        router: &Router,
    ) -> Result<(WriteOutcome, u64), Failure> {
        let password = match &mailbox.password_env {
            Some(var) => {
                check_password_env(var, &self.config.password_env_prefix).map_err(|e| {
                    Failure::new(
                        "config-error",
                        format!("password_env {var:?} is refused ({e}); the variable is not read"),
                    )
                })?;
                std::env::var(var).map_err(|_| {
                    Failure::new(
                        "config-error",
                        format!("environment variable {var} (the mailbox password) is not set"),
                    )
                })?
            }
            None => {
                return Err(Failure::new(
                    "config-error",
                    "no password source configured",
                ));
            }
        };
        let mut outcome = WriteOutcome::default();
        let mut fetched = 0u64;
        let mut attempt = 0u32;
        loop {
            match self.sync_once(rt, mailbox, router, &password, &mut outcome, &mut fetched) {
                Ok(()) => return Ok((outcome, fetched)),
                Err(e) if e.retryable && attempt < self.config.retries => {
                    let delay = self.config.backoff.saturating_mul(1 << attempt.min(6));
                    warn!(error = %e.message, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, "IMAP failure; reconnecting");
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                Err(mut e) => {
                    e.outcome = Box::new(outcome);
                    e.fetched = fetched;
                    return Err(e);
                }
            }
        }
    }

    fn sync_once(
        &self,
        rt: &Handle,
        mailbox: &Mailbox,
        router: &Router,
        password: &str,
        outcome: &mut WriteOutcome,
        fetched: &mut u64,
    ) -> Result<(), Failure> {
        let client = connect(mailbox, &self.tls, self.config.timeout)?;
        let mut session = client
            .login(&mailbox.username, password)
            .map_err(|(e, _)| match e {
                imap::Error::No(_) | imap::Error::Bad(_) => Failure::new(
                    "auth-failed",
                    format!("login as {} refused: {e}", mailbox.username),
                ),
                other => Failure::network(format!("login: {other}")),
            })?;
        let selected = session
            .select(&mailbox.folder)
            .map_err(|e| classify(e, &format!("select {}", mailbox.folder)))?;
        let uidvalidity = selected.uid_validity.unwrap_or(0);
        // Re-read the sync position: an earlier attempt in this poll may have advanced it.
        let current = rt
            .block_on(self.store.get_mailbox(mailbox.id))
            .map_err(|e| Failure::new("error", e.to_string()))?;
        let start = if current.uidvalidity == Some(uidvalidity) {
            current.last_uid.saturating_add(1)
        } else {
            if current.uidvalidity.is_some() {
                warn!(old = ?current.uidvalidity, new = uidvalidity, "UIDVALIDITY changed; resyncing the whole folder");
            }
            1
        };
        let found = session
            .uid_search(format!("UID {start}:*"))
            .map_err(|e| classify(e, "uid search"))?;
        let uids: BTreeSet<u32> = found.into_iter().filter(|u| *u >= start).collect();
        let uids: Vec<u32> = uids.into_iter().collect();
        if uids.is_empty() {
            if current.uidvalidity != Some(uidvalidity) {
                rt.block_on(self.store.set_sync_state(
                    mailbox.id,
                    uidvalidity,
                    start.saturating_sub(1),
                ))
                .map_err(|e| Failure::new("error", e.to_string()))?;
            }
            let _ = session.logout();
            return Ok(());
        }
        info!(new = uids.len(), uidvalidity, "new messages");
        if let AfterAction::Move(folder) = &mailbox.after {
            // Fails harmlessly when the folder exists.
            let _ = session.create(folder);
        }
        let caps = session
            .capabilities()
            .map_err(|e| classify(e, "capabilities"))?;
        let can_move = caps.has_str("MOVE");
        let can_uid_expunge = caps.has_str("UIDPLUS");
        for chunk in uids.chunks(self.config.batch_size.max(1)) {
            let done = rt
                .block_on(self.store.processed_uids(mailbox.id, uidvalidity, chunk))
                .map_err(|e| Failure::new("error", e.to_string()))?;
            let todo: Vec<u32> = chunk
                .iter()
                .copied()
                .filter(|u| !done.contains(u))
                .collect();
            if !todo.is_empty() {
                self.fetch_and_store(
                    rt,
                    &mut session,
                    mailbox,
                    router,
                    uidvalidity,
                    &todo,
                    outcome,
                    fetched,
                )?;
            }
            let set = uid_set(chunk);
            match &mailbox.after {
                AfterAction::Move(folder) => {
                    if can_move {
                        session
                            .uid_mv(&set, folder)
                            .map_err(|e| classify(e, "uid move"))?;
                    } else {
                        session
                            .uid_copy(&set, folder)
                            .map_err(|e| classify(e, "uid copy"))?;
                        delete(&mut session, &set, can_uid_expunge)?;
                    }
                }
                AfterAction::Seen => {
                    session
                        .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                        .map_err(|e| classify(e, "uid store"))?;
                }
                AfterAction::Delete => delete(&mut session, &set, can_uid_expunge)?,
            }
            let last = chunk.last().copied().unwrap_or(0);
            rt.block_on(self.store.set_sync_state(mailbox.id, uidvalidity, last))
                .map_err(|e| Failure::new("error", e.to_string()))?;
        }
        let _ = session.logout();
        Ok(())
    }
}

/// Bytes of message bodies held in memory at once while polling.
const FETCH_BYTES: u64 = 32 << 20;

impl Poller {
    /// Fetches `uids` (none of them processed yet) and stores what they contain. Sizes are
    /// asked first, so bodies are fetched in groups of at most [`FETCH_BYTES`], and a message
    /// over the parser's input limit is never loaded whole: its first `max_input_bytes` are
    /// kept in quarantine as `too-large`.
    #[allow(clippy::too_many_arguments)]
    fn fetch_and_store(
        &self,
        rt: &Handle,
        session: &mut imap::Session<ImapStream>,
        mailbox: &Mailbox,
        router: &Router,
        uidvalidity: u32,
        uids: &[u32],
        outcome: &mut WriteOutcome,
        fetched: &mut u64,
    ) -> Result<(), Failure> {
        let limit = self.parser.limits().max_input_bytes;
        let sizes: Vec<(u32, u64)> = session
            .uid_fetch(uid_set(uids), "(UID RFC822.SIZE)")
            .map_err(|e| classify(e, "uid fetch size"))?
            .iter()
            .filter_map(|f| Some((f.uid?, u64::from(f.size?))))
            .collect();
        let source = |uid| MessageSource::Imap {
            mailbox_id: mailbox.id,
            uidvalidity,
            uid,
        };
        let store = |batch: Vec<NewMessage>, outcome: &mut WriteOutcome| -> Result<(), Failure> {
            let written = rt
                .block_on(self.store.write_messages(batch))
                .map_err(|e| Failure::new("error", format!("storing messages: {e}")))?;
            outcome.merge(&written);
            Ok(())
        };
        let mut groups: Vec<Vec<u32>> = Vec::new();
        let mut group_bytes = 0u64;
        for (uid, size) in sizes {
            if size > limit {
                let fetches = session
                    .uid_fetch(uid.to_string(), format!("(UID BODY.PEEK[]<0.{limit}>)"))
                    .map_err(|e| classify(e, "uid fetch"))?;
                let head = fetches
                    .iter()
                    .find_map(|f| f.body())
                    .unwrap_or_default()
                    .to_vec();
                drop(fetches);
                *fetched += 1;
                let message = NewMessage {
                    sha256: sha256_hex(&head),
                    bytes: head,
                    source: source(uid),
                    message_id: None,
                    received_at: None,
                    items: vec![Item::Quarantine {
                        tenant_id: mailbox.tenant_id,
                        reason: "too-large".to_owned(),
                        detail: format!(
                            "message is {size} bytes, over the input limit of {limit} bytes; its first {limit} bytes are kept"
                        ),
                        part: None,
                    }],
                };
                store(vec![message], outcome)?;
                continue;
            }
            match groups.last_mut() {
                Some(g) if group_bytes + size <= FETCH_BYTES => g.push(uid),
                _ => {
                    groups.push(vec![uid]);
                    group_bytes = 0;
                }
            }
            group_bytes += size;
        }
        for group in groups {
            let fetches = session
                .uid_fetch(uid_set(&group), "(UID BODY.PEEK[])")
                .map_err(|e| classify(e, "uid fetch"))?;
            let mut batch = Vec::with_capacity(fetches.len());
            for f in fetches.iter() {
                let (Some(uid), Some(body)) = (f.uid, f.body()) else {
                    continue;
                };
                *fetched += 1;
                let prepared = prepare(
                    &self.parser,
                    router,
                    body.to_vec(),
                    None,
                    source(uid),
                    mailbox.tenant_id,
                );
                batch.push(prepared.message);
            }
            drop(fetches);
            store(batch, outcome)?;
        }
        Ok(())
    }
}

fn delete(
    session: &mut imap::Session<ImapStream>,
    set: &str,
    uid_expunge: bool,
) -> Result<(), Failure> {
    session
        .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
        .map_err(|e| classify(e, "uid store"))?;
    if uid_expunge {
        session
            .uid_expunge(set)
            .map_err(|e| classify(e, "uid expunge"))?;
    } else {
        session.expunge().map_err(|e| classify(e, "expunge"))?;
    }
    Ok(())
}

/// A failed poll attempt.
#[derive(Debug)]
struct Failure {
    status: &'static str,
    message: String,
    retryable: bool,
    /// What was stored before the failure (boxed: failures travel through many `Result`s).
    outcome: Box<WriteOutcome>,
    fetched: u64,
}

impl Failure {
    fn new(status: &'static str, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
            retryable: false,
            outcome: Box::default(),
            fetched: 0,
        }
    }
    fn network(message: impl Into<String>) -> Self {
        Failure {
            status: "connect-failed",
            message: message.into(),
            retryable: true,
            outcome: Box::default(),
            fetched: 0,
        }
    }
}

fn classify(e: imap::Error, what: &str) -> Failure {
    match e {
        imap::Error::Io(_)
        | imap::Error::ConnectionLost
        | imap::Error::Bye(_)
        | imap::Error::TagMismatch(_) => Failure::network(format!("{what}: {e}")),
        other => Failure::new("error", format!("{what}: {other}")),
    }
}

/// `1:3,5,7:9` from sorted UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A plain or TLS connection to an IMAP server.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for ImapStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ImapStream::Plain(s) => s.read(buf),
            ImapStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ImapStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ImapStream::Plain(s) => s.write(buf),
            ImapStream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            ImapStream::Plain(s) => s.flush(),
            ImapStream::Tls(s) => s.flush(),
        }
    }
}

fn tls_config(extra_ca: Option<&Path>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path).map_err(|source| IngestError::Io {
            path: path.display().to_string(),
            source,
        })?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|source| IngestError::Io {
                path: path.display().to_string(),
                source,
            })?;
            roots
                .add(cert)
                .map_err(|e| IngestError::Imap(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| IngestError::Imap(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn is_loopback(host: &str, addrs: &[SocketAddr]) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || (!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()))
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn connect(
    mailbox: &Mailbox,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<imap::Client<ImapStream>, Failure> {
    let addrs: Vec<SocketAddr> = (mailbox.host.as_str(), mailbox.port)
        .to_socket_addrs()
        .map_err(|e| Failure::network(format!("cannot resolve {}: {e}", mailbox.host)))?
        .collect();
    if mailbox.tls == TlsMode::Plain && !is_loopback(&mailbox.host, &addrs) {
        return Err(Failure::new(
            "config-error",
            format!(
                "plain IMAP without TLS is only allowed to loopback hosts, not {}",
                mailbox.host
            ),
        ));
    }
    let mut last_err = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        Failure::network(format!(
            "cannot connect to {}:{}: {}",
            mailbox.host,
            mailbox.port,
            last_err.map_or_else(|| "no address".to_owned(), |e| e.to_string())
        ))
    })?;
    let io = |e: io::Error| Failure::network(format!("{}:{}: {e}", mailbox.host, mailbox.port));
    tcp.set_read_timeout(Some(timeout)).map_err(io)?;
    tcp.set_write_timeout(Some(timeout)).map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    let server_name = ServerName::try_from(mailbox.host.clone())
        .map_err(|e| Failure::new("config-error", format!("host {}: {e}", mailbox.host)))?;
    let wrap = |tcp: TcpStream| -> Result<ImapStream, Failure> {
        let conn = ClientConnection::new(tls.clone(), server_name.clone())
            .map_err(|e| Failure::new("error", format!("TLS setup: {e}")))?;
        let mut stream = StreamOwned::new(conn, tcp);
        // Complete the handshake now so certificate problems surface as such.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| {
                Failure::new(
                    "tls-failed",
                    format!("TLS handshake with {}: {e}", mailbox.host),
                )
            })?;
        }
        Ok(ImapStream::Tls(Box::new(stream)))
    };
    match mailbox.tls {
        TlsMode::Plain => {
            let mut client = imap::Client::new(ImapStream::Plain(tcp));
            client
                .read_greeting()
                .map_err(|e| classify(e, "greeting"))?;
            Ok(client)
        }
        TlsMode::Implicit => {
            let mut client = imap::Client::new(wrap(tcp)?);
            client
                .read_greeting()
                .map_err(|e| classify(e, "greeting"))?;
            Ok(client)
        }
        TlsMode::StartTls => {
            let tcp = starttls(tcp).map_err(|e| match e.kind() {
                io::ErrorKind::Unsupported => {
                    Failure::new("tls-failed", format!("{}: {e}", mailbox.host))
                }
                _ => io(e),
            })?;
            let mut client = imap::Client::new(wrap(tcp)?);
            client.greeting_read = true;
            Ok(client)
        }
    }
}

/// Reads the greeting and negotiates STARTTLS on a fresh connection.
fn starttls(tcp: TcpStream) -> io::Result<TcpStream> {
    let mut reader = BufReader::new(tcp.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("* OK") {
        return Err(io::Error::other(format!(
            "unexpected greeting {:?}",
            line.trim_end()
        )));
    }
    let mut writer = tcp;
    writer.write_all(b"S0 STARTTLS\r\n")?;
    writer.flush()?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::other("connection closed during STARTTLS"));
        }
        if let Some(rest) = line.strip_prefix("S0 ") {
            if rest.starts_with("OK") {
                break;
            }
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("server refused STARTTLS: {}", rest.trim_end()),
            ));
        }
    }
    if !reader.buffer().is_empty() {
        return Err(io::Error::other("unexpected data after STARTTLS response"));
    }
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compressed_into_ranges() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8, 9]), "1:3,5,7:9");
        assert_eq!(uid_set(&[42]), "42");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn plain_is_only_for_loopback() {
        let lo: Vec<SocketAddr> = vec!["127.0.0.1:143".parse().expect("addr")];
        let remote: Vec<SocketAddr> = vec!["192.0.2.1:143".parse().expect("addr")];
        assert!(is_loopback("127.0.0.1", &lo));
        assert!(is_loopback("localhost", &[]));
        assert!(!is_loopback("mail.example.com", &remote));
    }
}
