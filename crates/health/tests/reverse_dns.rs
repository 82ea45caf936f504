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
