//! Reverse DNS of report addresses: private and other special-purpose addresses are never
//! looked up (a UDP "name server" on loopback that counts the queries it receives stays at
//! zero) and never named; with private addresses allowed, NSD's PTR records for the
//! documentation range 203.0.113.0/24 (`tests/servers/dns/113.0.203.in-addr.arpa.zone`)
//! name them.

mod servers;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sealwatch_health::{OutboundPolicy, ReverseDns};
use tokio::net::UdpSocket;

/// A name server that never answers and counts the datagrams it receives.
struct CountingNameServer {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

impl CountingNameServer {
    async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("local address");
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while socket.recv_from(&mut buf).await.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Self { addr, queries }
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter()
        .map(|s| s.parse().expect("an address"))
        .collect()
}

#[tokio::test]
async fn special_purpose_addresses_are_never_looked_up() {
    let ns = CountingNameServer::start().await;
    let rdns = ReverseDns::new(vec![ns.addr], Duration::from_millis(200)).expect("resolver");
    let names = rdns
        .names(&ips(&[
            "10.0.0.5",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.168.1.1",
            "203.0.113.7",
            "::1",
            "fd00::5",
            "fe80::1",
            "::ffff:10.0.0.5",
        ]))
        .await;
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(ns.queries(), 0, "a special-purpose address was looked up");

    // a public address is asked for (the server never answers: no name)
    let names = rdns.names(&ips(&["192.88.98.1"])).await;
    assert!(names.is_empty());
    assert!(ns.queries() > 0, "the public address was not looked up");
}

#[tokio::test]
async fn documentation_addresses_are_named_only_when_private_addresses_are_allowed() {
    let dns = servers::dns();
    let addresses = ips(&["203.0.113.7", "203.0.113.8"]);

    let public_only = ReverseDns::new(vec![dns], Duration::from_secs(2)).expect("resolver");
    assert!(public_only.names(&addresses).await.is_empty());

    let allowed = ReverseDns::new(vec![dns], Duration::from_secs(2))
        .expect("resolver")
        .outbound(OutboundPolicy::AllowPrivate);
    let names = allowed.names(&addresses).await;
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.values().all(|n| n == "legacy-mta.downgrade.example"),
        "{names:?}"
    );
}

#[tokio::test]
async fn mx_host_names_resolve_to_their_addresses() {
    let dns = servers::dns();
    let resolver = ReverseDns::new(vec![dns], Duration::from_secs(2)).expect("resolver");
    let found = resolver
        .host_addresses(&[
            "MX1.downgrade.test.".to_owned(),
            "mx2.downgrade.test".to_owned(),
            "nowhere.downgrade.test".to_owned(),
        ])
        .await;
    assert_eq!(
        found.get("mx1.downgrade.test"),
        Some(&ips(&["192.0.2.25", "2001:db8::25"])),
        "{found:?}"
    );
    assert_eq!(found.get("mx2.downgrade.test"), Some(&ips(&["192.0.2.26"])));
    assert!(!found.contains_key("nowhere.downgrade.test"), "{found:?}");
}

/// Host names come from reports anyone can send: what is not a host name is never asked
/// about, and one call asks about a bounded number of names.
#[tokio::test]
async fn report_supplied_host_names_are_checked_and_bounded() {
    let ns = CountingNameServer::start().await;
    let resolver = ReverseDns::new(vec![ns.addr], Duration::from_millis(100)).expect("resolver");
    let junk: Vec<String> = [
        "",
        "localhost",
        "a..b",
        "-x.example",
        "x-.example",
        "under_score.example",
        "sp ace.example",
        &format!("{}.example", "a".repeat(64)),
        &format!("{}.example", "a.".repeat(130)),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert!(resolver.host_addresses(&junk).await.is_empty());
    assert_eq!(ns.queries(), 0, "an invalid name was looked up");

    let many: Vec<String> = (0..50).map(|i| format!("mx{i}.flood.example")).collect();
    assert!(resolver.host_addresses(&many).await.is_empty());
    let asked = ns.queries();
    assert!(asked > 0, "valid names are asked about");
    // Each name is asked at most twice per record type (one retry after a timeout).
    assert!(
        asked <= sealwatch_health::MAX_HOSTS_PER_CALL * 2 * 2,
        "{asked} queries for 50 names"
    );
}
