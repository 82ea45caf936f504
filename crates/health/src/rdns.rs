//! The analysis's DNS: reverse DNS names of IP addresses (PTR), for naming the sending
//! sources the analysis finds ("198.51.100.7, legacy-mta.example.net"), and the addresses of
//! MX host names ([`ReverseDns::host_addresses`]), to tell whether a TLS failure reached the
//! MX it meant. Lookups are bounded by a timeout, run a few at a time, and cached for the
//! life of the value (positive and negative answers).
//! Addresses come from reports anyone can send, so by default only globally reachable ones
//! are looked up and named ([`OutboundPolicy`]): a private or other special-purpose address
//! is never looked up, and its name, if any, is never shown.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt as _;
use hickory_resolver::proto::rr::RData;

use crate::HealthError;
use crate::dns::{DnsSettings, ResolverSetup};
use crate::outbound::OutboundPolicy;

/// PTR lookups with a cache.
pub struct ReverseDns {
    resolver: hickory_resolver::TokioResolver,
    cache: Mutex<HashMap<IpAddr, Option<String>>>,
    hosts: Mutex<HashMap<String, Option<Vec<IpAddr>>>>,
    outbound: OutboundPolicy,
}

/// Host names looked up per call of [`ReverseDns::host_addresses`] (names come from reports
/// anyone can send).
pub const MAX_HOSTS_PER_CALL: usize = 8;

impl std::fmt::Debug for ReverseDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseDns").finish_non_exhaustive()
    }
}

/// Lookups in flight at once.
const CONCURRENCY: usize = 8;

impl ReverseDns {
    /// Asks `name_servers` (empty: the system resolver), each query bounded by `timeout`
    /// with one retry. Only globally reachable addresses are looked up; see
    /// [`ReverseDns::outbound`].
    pub fn new(name_servers: Vec<SocketAddr>, timeout: Duration) -> Result<Self, HealthError> {
        let setup = ResolverSetup::new(&DnsSettings {
            name_servers,
            timeout,
            retries: 1,
        })?;
        Ok(ReverseDns {
            resolver: setup.build()?.into_resolver(),
            cache: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HashMap::new()),
            outbound: OutboundPolicy::PublicOnly,
        })
    }

    /// Which addresses are looked up (default [`OutboundPolicy::PublicOnly`]; test zones
    /// with documentation or private addresses need [`OutboundPolicy::AllowPrivate`]).
    #[must_use]
    pub fn outbound(mut self, policy: OutboundPolicy) -> Self {
        self.outbound = policy;
        self
    }

    /// The first PTR name of each address that has one (lower case, no trailing dot).
    /// Addresses without a name, whose lookup failed, or that the outbound policy does not
    /// permit (never looked up) are left out.
    pub async fn names(&self, ips: &[IpAddr]) -> BTreeMap<IpAddr, String> {
        let mut out = BTreeMap::new();
        let mut todo = Vec::new();
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ip in ips.iter().filter(|ip| self.outbound.permits(**ip)) {
                match cache.get(ip) {
                    Some(Some(name)) => {
                        out.insert(*ip, name.clone());
                    }
                    Some(None) => {}
                    None => todo.push(*ip),
                }
            }
        }
        todo.sort();
        todo.dedup();
        let found: Vec<(IpAddr, Option<String>)> = futures_util::stream::iter(todo)
            .map(|ip| async move { (ip, self.lookup(ip).await) })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (ip, name) in found {
            if let Some(n) = &name {
                out.insert(ip, n.clone());
            }
            cache.insert(ip, name);
        }
        out
    }

    /// The addresses (A and AAAA) of each host name that resolves, keyed by the name in
    /// lower case without the trailing dot. Names that are not valid host names, that do not
    /// resolve, or beyond the first [`MAX_HOSTS_PER_CALL`] distinct names are left out.
    pub async fn host_addresses(&self, hosts: &[String]) -> BTreeMap<String, Vec<IpAddr>> {
        let mut names: Vec<String> = hosts
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| valid_host(h))
            .collect();
        names.sort();
        names.dedup();
        names.truncate(MAX_HOSTS_PER_CALL);
        let mut out = BTreeMap::new();
        let mut todo = Vec::new();
        {
            let cache = self
                .hosts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for name in names {
                match cache.get(&name) {
                    Some(Some(addrs)) => {
                        out.insert(name, addrs.clone());
                    }
                    Some(None) => {}
                    None => todo.push(name),
                }
            }
        }
        let found: Vec<(String, Option<Vec<IpAddr>>)> = futures_util::stream::iter(todo)
            .map(|name| async move {
                let addrs = match self.resolver.lookup_ip(format!("{name}.")).await {
                    Ok(lookup) => {
                        let mut a: Vec<IpAddr> = lookup.iter().collect();
                        a.sort();
                        a.dedup();
                        (!a.is_empty()).then_some(a)
                    }
                    Err(_) => None,
                };
                (name, addrs)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut cache = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, addrs) in found {
            if let Some(a) = &addrs {
                out.insert(name.clone(), a.clone());
            }
            cache.insert(name, addrs);
        }
        out
    }

    async fn lookup(&self, ip: IpAddr) -> Option<String> {
        let lookup = self.resolver.reverse_lookup(ip).await.ok()?;
        lookup.answers().iter().find_map(|r| match &r.data {
            RData::PTR(ptr) => {
                let name = ptr.0.to_string();
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                (!name.is_empty()).then_some(name)
            }
            _ => None,
        })
    }
}

/// A host name worth asking about: 1–253 bytes of dot-separated labels of letters, digits
/// and hyphens (1–63 bytes each, no leading or trailing hyphen), with at least two labels.
fn valid_host(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').count() >= 2
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
