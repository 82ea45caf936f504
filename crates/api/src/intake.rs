//! The TLS-RPT intake's defences: rate limits per client address and per claimed domain,
//! and the routing table kept in memory.
//!
//! Anyone may post a TLS report (RFC 8460 §5.3 has no authentication), so the intake must
//! not let a stranger flood the store, spend the database on every post, or learn from the
//! answers which domains are verified. The limits are GCRA buckets from `governor`, keyed
//! by the client address (IPv6 by its /64, which is what one host usually gets) and by the
//! domain a post claims (the verified domain it routes to, or else the claimed name
//! itself), applied alike whatever the domain's state so a 429 reveals nothing. Both key
//! maps are pruned of idle keys and capped in size; past the cap every post is refused
//! until idle keys expire, rather than letting memory grow.
//!
//! The routing table (verified domains of active tenants) is read from the database at
//! most once per refresh interval, by one request at a time, and at once after a change
//! made through this process ([`Intake::invalidate_routes`]).
//!
//! No arithmetic here can overflow on what a stranger sends (lint below).

#![deny(clippy::arithmetic_side_effects)]

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sealwatch_ingest::Router;
use sealwatch_store::Store;

/// Settings of the intake.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Posts accepted per client address per minute (burst of the same size).
    pub per_address_per_minute: u32,
    /// Posts accepted per claimed domain per hour (burst of the same size).
    pub per_domain_per_hour: u32,
    /// How long the in-memory routing table is used before it is read again.
    pub route_refresh: Duration,
    /// Distinct keys each limiter tracks before it refuses posts from new keys.
    pub max_tracked_keys: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            per_address_per_minute: 120,
            per_domain_per_hour: 240,
            route_refresh: Duration::from_secs(10),
            max_tracked_keys: 100_000,
        }
    }
}

/// What a post is limited by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainKey {
    /// A verified domain (by id): every name that routes to it shares one bucket.
    Routed(i64),
    /// A name that routes nowhere.
    Claimed(String),
}

/// A refused post: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

/// Rate limiters and the cached routing table, shared by every worker.
pub struct Intake {
    config: IntakeConfig,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_domain: DefaultKeyedRateLimiter<DomainKey>,
    clock: DefaultClock,
    routes: tokio::sync::Mutex<Option<(Instant, Arc<Router>)>>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn quota(n: u32, period: Duration) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    let per_cell = period.checked_div(n.get()).unwrap_or(period);
    Quota::with_period(per_cell.max(Duration::from_micros(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(n)
}

/// The key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Intake {
    pub fn new(config: IntakeConfig) -> Self {
        Intake {
            per_address: DefaultKeyedRateLimiter::keyed(quota(
                config.per_address_per_minute,
                Duration::from_secs(60),
            )),
            per_domain: DefaultKeyedRateLimiter::keyed(quota(
                config.per_domain_per_hour,
                Duration::from_secs(3600),
            )),
            clock: DefaultClock::default(),
            routes: tokio::sync::Mutex::new(None),
            config,
        }
    }

    /// Counts a post from `client` (before anything else is done with it).
    pub fn check_address(&self, client: IpAddr) -> Result<(), Limited> {
        check(
            &self.per_address,
            &address_key(client),
            &self.clock,
            self.config.max_tracked_keys,
        )
    }

    /// Counts a post for each domain it claims; refused if any of them is over its limit.
    pub fn check_domains(&self, keys: &[DomainKey]) -> Result<(), Limited> {
        let mut refused: Option<Limited> = None;
        for key in keys {
            if let Err(l) = check(
                &self.per_domain,
                key,
                &self.clock,
                self.config.max_tracked_keys,
            ) {
                refused = Some(match refused {
                    Some(r) if r.retry_after_secs >= l.retry_after_secs => r,
                    _ => l,
                });
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// The routing table, read again when older than the refresh interval (by one caller;
    /// the others wait for its answer).
    pub async fn router(&self, store: &Store) -> Result<Arc<Router>, sealwatch_store::StoreError> {
        let mut slot = self.routes.lock().await;
        if let Some((at, router)) = slot.as_ref()
            && at.elapsed() < self.config.route_refresh
        {
            return Ok(router.clone());
        }
        let router = Arc::new(Router::new(store.verified_routing_entries().await?));
        *slot = Some((Instant::now(), router.clone()));
        Ok(router)
    }

    /// Forgets the cached routing table (a domain was verified, removed, or a tenant
    /// changed state through this process).
    pub async fn invalidate_routes(&self) {
        *self.routes.lock().await = None;
    }
}

fn check<K>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    clock: &DefaultClock,
    max_keys: usize,
) -> Result<(), Limited>
where
    K: Clone + std::hash::Hash + Eq,
{
    if limiter.len() >= max_keys {
        limiter.retain_recent();
        limiter.shrink_to_fit();
        if limiter.len() >= max_keys {
            return Err(Limited {
                retry_after_secs: 60,
            });
        }
    }
    limiter.check_key(key).map_err(|not_until| Limited {
        retry_after_secs: not_until
            .wait_time_from(clock.now())
            .as_secs()
            .saturating_add(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            address_key(mapped),
            "192.0.2.7".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn a_burst_past_the_limit_is_refused_with_a_retry_time() {
        let intake = Intake::new(IntakeConfig {
            per_address_per_minute: 3,
            per_domain_per_hour: 2,
            ..IntakeConfig::default()
        });
        let ip: IpAddr = "198.51.100.9".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(intake.check_address(ip), Ok(()));
        }
        let refused = intake
            .check_address(ip)
            .expect_err("fourth post in a minute");
        assert!((1..=60).contains(&refused.retry_after_secs), "{refused:?}");
        // another client is not affected
        assert_eq!(
            intake.check_address("198.51.100.10".parse().expect("ip")),
            Ok(())
        );

        let victim = DomainKey::Routed(7);
        let unknown = DomainKey::Claimed("nowhere.example".into());
        for _ in 0..2 {
            assert_eq!(intake.check_domains(std::slice::from_ref(&victim)), Ok(()));
            assert_eq!(intake.check_domains(std::slice::from_ref(&unknown)), Ok(()));
        }
        // a verified and an unknown domain are refused alike
        let a = intake.check_domains(std::slice::from_ref(&victim));
        let b = intake.check_domains(std::slice::from_ref(&unknown));
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
        assert_eq!(
            intake.check_domains(&[DomainKey::Routed(8)]),
            Ok(()),
            "another domain still goes through"
        );
    }

    #[test]
    fn past_the_key_cap_new_keys_are_refused_until_old_ones_expire() {
        let intake = Intake::new(IntakeConfig {
            per_address_per_minute: 1,
            max_tracked_keys: 4,
            ..IntakeConfig::default()
        });
        for i in 0..4u8 {
            assert_eq!(intake.check_address(IpAddr::from([203, 0, 113, i])), Ok(()));
        }
        assert!(
            intake
                .check_address(IpAddr::from([203, 0, 113, 200]))
                .is_err()
        );
    }
}
