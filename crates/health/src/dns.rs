//! DNS access for the checks: a small trait (so the checks run against an in-memory zone in
//! unit tests) and its hickory-resolver implementation.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use crate::HealthError;

/// The outcome of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer<T> {
    /// At least one record.
    Records(T),
    /// The name exists but has no record of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// No usable answer (timeout, SERVFAIL, REFUSED, network error): nothing is known.
    Failed(String),
}

impl<T> Answer<T> {
    /// True for NXDOMAIN or no data: the records definitely do not exist.
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Self::NoData | Self::NxDomain)
    }
}

/// An MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MxRecord {
    pub preference: u16,
    /// Lower case, no trailing dot; empty for the null MX (`.`).
    pub exchange: String,
}

/// The queries the checks make. Names are absolute, without the trailing dot.
pub(crate) trait Dns: Sync {
    /// TXT records, each one's strings concatenated.
    fn txt(&self, name: &str) -> impl Future<Output = Answer<Vec<String>>> + Send;
    fn mx(&self, name: &str) -> impl Future<Output = Answer<Vec<MxRecord>>> + Send;
    fn a(&self, name: &str) -> impl Future<Output = Answer<Vec<Ipv4Addr>>> + Send;
    fn aaaa(&self, name: &str) -> impl Future<Output = Answer<Vec<Ipv6Addr>>> + Send;
}

/// Resolver settings.
#[derive(Debug, Clone)]
pub(crate) struct DnsSettings {
    pub name_servers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub retries: usize,
}

/// hickory-resolver behind [`Dns`]. Each check builds a fresh one, so a run never sees
/// answers cached by an earlier run.
pub(crate) struct HickoryDns {
    resolver: TokioResolver,
}

/// The configuration used to build resolvers, validated once.
#[derive(Debug, Clone)]
pub(crate) struct ResolverSetup {
    config: ResolverConfig,
    opts: ResolverOpts,
}

impl ResolverSetup {
    pub(crate) fn new(settings: &DnsSettings) -> Result<Self, HealthError> {
        let (config, mut opts) = if settings.name_servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| HealthError::Resolver(e.to_string()))?
        } else {
            let servers = settings
                .name_servers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            (
                ResolverConfig::from_parts(None, Vec::new(), servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = settings.timeout;
        opts.attempts = settings.retries;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        opts.try_tcp_on_error = true;
        Ok(Self { config, opts })
    }

    pub(crate) fn build(&self) -> Result<HickoryDns, HealthError> {
        let resolver =
            Resolver::builder_with_config(self.config.clone(), TokioRuntimeProvider::default())
                .with_options(self.opts.clone())
                .build()
                .map_err(|e| HealthError::Resolver(e.to_string()))?;
        Ok(HickoryDns { resolver })
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn classify<T>(err: &NetError) -> Answer<T> {
    match err {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => Answer::NxDomain,
            ResponseCode::NoError => Answer::NoData,
            other => Answer::Failed(format!("the name server answered {other}")),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => {
            Answer::Failed(format!("the name server answered {code}"))
        }
        NetError::Timeout => Answer::Failed("the DNS query timed out".to_owned()),
        other => Answer::Failed(format!("the DNS query failed: {other}")),
    }
}

impl HickoryDns {
    /// The resolver itself (for lookups outside the [`Dns`] trait, such as PTR).
    pub(crate) fn into_resolver(self) -> TokioResolver {
        self.resolver
    }

    async fn query<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Answer<Vec<T>> {
        match self.resolver.lookup(fqdn(name), rtype).await {
            Ok(lookup) => {
                let items: Vec<T> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| pick(&r.data))
                    .collect();
                if items.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Records(items)
                }
            }
            Err(e) => classify(&e),
        }
    }
}

impl Dns for HickoryDns {
    async fn txt(&self, name: &str) -> Answer<Vec<String>> {
        self.query(name, RecordType::TXT, |d| match d {
            RData::TXT(t) => {
                let bytes: Vec<u8> = t.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        })
        .await
    }

    async fn mx(&self, name: &str) -> Answer<Vec<MxRecord>> {
        self.query(name, RecordType::MX, |d| match d {
            RData::MX(mx) => Some(MxRecord {
                preference: mx.preference,
                exchange: mx
                    .exchange
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            }),
            _ => None,
        })
        .await
    }

    async fn a(&self, name: &str) -> Answer<Vec<Ipv4Addr>> {
        self.query(name, RecordType::A, |d| match d {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    async fn aaaa(&self, name: &str) -> Answer<Vec<Ipv6Addr>> {
        self.query(name, RecordType::AAAA, |d| match d {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .await
    }
}

/// Both address families of a host: `Records` if either has addresses, `Failed` if a
/// query failed and nothing was found, absent otherwise.
pub(crate) async fn addresses<D: Dns>(dns: &D, host: &str) -> Answer<Vec<IpAddr>> {
    let (v4, v6) = tokio::join!(dns.a(host), dns.aaaa(host));
    let mut out: Vec<IpAddr> = Vec::new();
    if let Answer::Records(r) = &v4 {
        out.extend(r.iter().copied().map(IpAddr::V4));
    }
    if let Answer::Records(r) = &v6 {
        out.extend(r.iter().copied().map(IpAddr::V6));
    }
    if !out.is_empty() {
        return Answer::Records(out);
    }
    match (v4, v6) {
        (Answer::Failed(e), _) | (_, Answer::Failed(e)) => Answer::Failed(e),
        (Answer::NxDomain, _) | (_, Answer::NxDomain) => Answer::NxDomain,
        _ => Answer::NoData,
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory zone for unit tests.

    use std::collections::HashMap;

    use super::*;

    #[derive(Debug, Default, Clone)]
    pub(crate) struct FakeDns {
        txt: HashMap<String, Vec<String>>,
        mx: HashMap<String, Vec<MxRecord>>,
        a: HashMap<String, Vec<Ipv4Addr>>,
        aaaa: HashMap<String, Vec<Ipv6Addr>>,
        failing: Vec<String>,
    }

    impl FakeDns {
        pub(crate) fn txt(mut self, name: &str, value: &str) -> Self {
            self.txt.entry(name.into()).or_default().push(value.into());
            self
        }
        pub(crate) fn mx(mut self, name: &str, pref: u16, host: &str) -> Self {
            self.mx.entry(name.into()).or_default().push(MxRecord {
                preference: pref,
                exchange: host.into(),
            });
            self
        }
        pub(crate) fn a(mut self, name: &str, ip: &str) -> Self {
            let ip = ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            self.a.entry(name.into()).or_default().push(ip);
            self
        }
        pub(crate) fn aaaa(mut self, name: &str, ip: &str) -> Self {
            let ip = ip.parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
            self.aaaa.entry(name.into()).or_default().push(ip);
            self
        }
        /// Every query for this name fails (as on a timeout).
        pub(crate) fn failing(mut self, name: &str) -> Self {
            self.failing.push(name.into());
            self
        }

        fn exists(&self, name: &str) -> bool {
            let below = |k: &String| k == name || k.ends_with(&format!(".{name}"));
            self.txt.keys().any(below)
                || self.mx.keys().any(below)
                || self.a.keys().any(below)
                || self.aaaa.keys().any(below)
        }

        fn get<T: Clone>(&self, map: &HashMap<String, Vec<T>>, name: &str) -> Answer<Vec<T>> {
            if self.failing.iter().any(|f| f == name) {
                return Answer::Failed("the DNS query timed out".into());
            }
            match map.get(name) {
                Some(v) if !v.is_empty() => Answer::Records(v.clone()),
                _ if self.exists(name) => Answer::NoData,
                _ => Answer::NxDomain,
            }
        }
    }

    impl Dns for FakeDns {
        async fn txt(&self, name: &str) -> Answer<Vec<String>> {
            self.get(&self.txt, name)
        }
        async fn mx(&self, name: &str) -> Answer<Vec<MxRecord>> {
            self.get(&self.mx, name)
        }
        async fn a(&self, name: &str) -> Answer<Vec<Ipv4Addr>> {
            self.get(&self.a, name)
        }
        async fn aaaa(&self, name: &str) -> Answer<Vec<Ipv6Addr>> {
            self.get(&self.aaaa, name)
        }
    }
}
