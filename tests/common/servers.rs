//! The loopback test servers started by `tests/servers/start.sh` (which `tests/run.sh`
//! runs). Values come from the environment, or from `servers.env` in the state directory.
//! Include with `#[path = "../common/servers.rs"] mod servers;`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::OnceLock;

fn from_file() -> HashMap<String, String> {
    let state = std::env::var("SEALWATCH_TEST_SERVERS_STATE")
        .unwrap_or_else(|_| "/tmp/sealwatch-test-servers".into());
    let text = std::fs::read_to_string(format!("{state}/servers.env")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("export ")?.split_once('=')?;
            Some((k.to_owned(), v.trim_matches('\'').to_owned()))
        })
        .collect()
}

/// A server setting; panics with instructions when the servers are not running.
pub fn var(name: &str) -> String {
    static FILE: OnceLock<HashMap<String, String>> = OnceLock::new();
    std::env::var(name)
        .ok()
        .or_else(|| FILE.get_or_init(from_file).get(name).cloned())
        .unwrap_or_else(|| panic!("{name} is not set: start the test servers with tests/servers/start.sh (tests/run.sh does)"))
}

pub fn imap_port() -> u16 {
    var("SEALWATCH_TEST_IMAP_PORT").parse().expect("port")
}

pub fn imaps_port() -> u16 {
    var("SEALWATCH_TEST_IMAPS_PORT").parse().expect("port")
}

/// Name of the environment variable that holds the any-user IMAP password. The poller reads
/// passwords from the environment, so it must be exported (tests/run.sh sources servers.env);
/// it carries the default `poller.password_env_prefix` (`SEALWATCH_MAILBOX_`), as every
/// mailbox password variable must.
pub const PASSWORD_ENV: &str = "SEALWATCH_MAILBOX_TEST_IMAP_PASSWORD";

/// Name of an exported variable (with the mailbox prefix) holding a wrong IMAP password.
pub const WRONG_PASSWORD_ENV: &str = "SEALWATCH_MAILBOX_TEST_WRONG_PASSWORD";

pub fn password() -> String {
    std::env::var(PASSWORD_ENV).unwrap_or_else(|_| {
        panic!("{PASSWORD_ENV} must be exported for the poller: `. $SEALWATCH_TEST_SERVERS_STATE/servers.env` (tests/run.sh does)")
    })
}

/// A user name no other test uses.
pub fn unique_user(label: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{label}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain IMAP session on loopback for seeding and inspecting mailboxes.
pub fn session(user: &str) -> imap::Session<std::net::TcpStream> {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", imap_port())).expect("connect to Dovecot");
    tcp.set_nodelay(true).expect("nodelay");
    let mut client = imap::Client::new(tcp);
    client.read_greeting().expect("greeting");
    client
        .login(user, password())
        .map_err(|(e, _)| e)
        .expect("login")
}

/// Appends messages to a folder (created if missing).
pub fn seed(user: &str, folder: &str, messages: &[Vec<u8>]) {
    let mut s = session(user);
    let _ = s.create(folder);
    for m in messages {
        s.append(folder, m).finish().expect("append");
    }
    let _ = s.logout();
}

/// Number of messages in a folder and how many carry `\Seen`.
pub fn folder_state(user: &str, folder: &str) -> (u32, usize) {
    let mut s = session(user);
    let mailbox = match s.examine(folder) {
        Ok(m) => m,
        Err(_) => return (0, 0),
    };
    let seen = if mailbox.exists == 0 {
        0
    } else {
        s.search("SEEN").expect("search").len()
    };
    let _ = s.logout();
    (mailbox.exists, seen)
}
