//! Bearer tokens: `sw_<prefix>_<secret>`. The prefix finds the row; the secret is checked
//! against its argon2 hash.
//!
//! Verified tokens are remembered for a minute (so a busy client costs one argon2 run per
//! minute, not one per request), which is also how often `last_used_at` is written. Every
//! process compares the database's authentication revision (bumped by every revocation and
//! tenant deactivation) at most every couple of seconds and drops its cache when it moved,
//! so a token revoked through one process stops working in all of them within seconds.
//!
//! Failed attempts never block a valid token: a token is verified first, and only a
//! failure is counted — per client address (see [`crate::client`]) and per token prefix —
//! and answered 429 with `Retry-After` once either is over the limit. The cost of
//! verifying is bounded: argon2 runs at most [`ARGON2_PERMITS`] at a time; attempts from a
//! client or for a prefix that is over its failure limit queue for one separate permit
//! (with a small waiting room, beyond which they are answered 429 at once), so a guessing
//! flood against a known prefix costs at most one core while other tokens still pass.
//! A prefix that does not exist costs a database lookup and, when the separate permit is
//! free, an argon2 run against a dummy hash, so that answers do not tell apart existing
//! prefixes by their timing.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use sealwatch_store::{ApiToken, NewToken, Role, Scope, Store};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::AppState;
use crate::error::ApiError;

/// How long a verified token is trusted without looking at the database again.
const CACHE_TTL: Duration = Duration::from_secs(60);
const PREFIX_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;
/// Concurrent argon2 verifications of tokens in good standing.
pub const ARGON2_PERMITS: usize = 2;
/// Attempts from over-limit clients or prefixes waiting for their single permit; beyond
/// this they are answered 429 without verifying.
const SUSPECT_WAITING_ROOM: usize = 8;
/// Length of the failure-counting window.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Keys each failure counter tracks; past this, idle keys are dropped first.
const MAX_TRACKED_KEYS: usize = 100_000;
/// Verified tokens cached per process.
const MAX_CACHED: usize = 10_000;
/// No revision read yet.
const UNKNOWN_REVISION: i64 = i64::MIN;

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read (every role; tenant tokens see their own tenant only).
    Read,
    /// Review anomalies (admin, analyst).
    Review,
    /// Change anything else, read the audit log (admin).
    Admin,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: i64,
    pub name: String,
    pub role: Role,
    pub tenant_id: Option<i64>,
}

impl Principal {
    /// Which tenants this caller may see.
    pub fn scope(&self) -> Scope {
        match (self.role, self.tenant_id) {
            (Role::Tenant, Some(t)) => Scope::Tenant(t),
            (Role::Tenant, None) => Scope::Tenant(-1),
            _ => Scope::All,
        }
    }

    /// Refuses (403) a role without the right.
    pub fn require(&self, need: Need) -> Result<Scope, ApiError> {
        let ok = match need {
            Need::Read => true,
            Need::Review => matches!(self.role, Role::Admin | Role::Analyst),
            Need::Admin => self.role == Role::Admin,
        };
        if ok {
            Ok(self.scope())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        format!("token:{} ({})", self.name, self.role.as_str())
    }
}

#[derive(Debug)]
struct Cached {
    principal: Principal,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Failures per key in fixed one-minute windows.
#[derive(Debug)]
struct FailureCounter<K> {
    map: Mutex<HashMap<K, Window>>,
    limit: u32,
}

impl<K: Hash + Eq> FailureCounter<K> {
    fn new(limit: u32) -> Self {
        FailureCounter {
            map: Mutex::new(HashMap::new()),
            limit: limit.max(1),
        }
    }

    fn retry_after(w: &Window) -> u64 {
        FAILURE_WINDOW
            .saturating_sub(w.start.elapsed())
            .as_secs()
            .max(1)
    }

    /// `Some(retry after, in seconds)` when the key is over its limit now.
    fn over(&self, key: &K) -> Option<u64> {
        let map = self.map.lock().ok()?;
        let w = map.get(key)?;
        (w.start.elapsed() < FAILURE_WINDOW && w.count > self.limit).then(|| Self::retry_after(w))
    }

    /// Counts one failure; `Some(retry after)` when the key is now over its limit.
    fn fail(&self, key: K) -> Option<u64> {
        let mut map = self.map.lock().ok()?;
        if map.len() >= MAX_TRACKED_KEYS && !map.contains_key(&key) {
            map.retain(|_, w| w.start.elapsed() < FAILURE_WINDOW);
            if map.len() >= MAX_TRACKED_KEYS {
                // Full of live keys: the other counter (client address) still applies.
                return None;
            }
        }
        let w = map.entry(key).or_insert(Window {
            start: Instant::now(),
            count: 0,
        });
        if w.start.elapsed() >= FAILURE_WINDOW {
            *w = Window {
                start: Instant::now(),
                count: 0,
            };
        }
        w.count = w.count.saturating_add(1);
        (w.count > self.limit).then(|| Self::retry_after(w))
    }
}

/// The key of a client address: IPv4 as is, IPv6 by its /64 (what one host usually gets).
fn client_key(ip: IpAddr) -> IpAddr {
    crate::intake::address_key(ip)
}

/// Why a presented token was not accepted.
enum Refusal {
    /// The token is wrong, revoked, or its tenant deactivated (counts as a failure).
    Invalid(String),
    /// Something else failed (database, worker pool): not the caller's fault.
    Error(ApiError),
}

impl From<sealwatch_store::StoreError> for Refusal {
    fn from(e: sealwatch_store::StoreError) -> Self {
        Refusal::Error(e.into())
    }
}

/// Verified-token cache, revision check, failure counters and verification lanes, shared
/// by the workers of one process.
#[derive(Debug)]
pub struct Authenticator {
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// The authentication revision the cache is valid for.
    revision: AtomicI64,
    /// When the revision was last read; held while it is read (single-flight).
    revision_read_at: tokio::sync::Mutex<Option<Instant>>,
    revision_check: Duration,
    by_client: FailureCounter<IpAddr>,
    by_prefix: FailureCounter<String>,
    /// argon2 runs for tokens in good standing.
    lane: Semaphore,
    /// argon2 runs for over-limit clients and prefixes, and dummy runs.
    suspect_lane: Semaphore,
    suspect_waiting: AtomicUsize,
}

/// Leaves the suspect waiting room when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hash to verify against when the prefix does not exist (same cost as a real one).
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        Argon2::default()
            .hash_password(b"sealwatch dummy secret for unknown prefixes")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

impl Authenticator {
    /// `failures_per_minute` per client address and per token prefix; the authentication
    /// revision is read at most every `revision_check`.
    pub fn new(failures_per_minute: u32, revision_check: Duration) -> Self {
        Authenticator {
            cache: Mutex::new(HashMap::new()),
            revision: AtomicI64::new(UNKNOWN_REVISION),
            revision_read_at: tokio::sync::Mutex::new(None),
            revision_check,
            by_client: FailureCounter::new(failures_per_minute),
            by_prefix: FailureCounter::new(failures_per_minute),
            lane: Semaphore::new(ARGON2_PERMITS),
            suspect_lane: Semaphore::new(1),
            suspect_waiting: AtomicUsize::new(0),
        }
    }

    /// Forgets cached verifications of a token (after it is revoked).
    pub fn forget(&self, token_id: i64) {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, v| v.principal.token_id != token_id);
        }
    }

    /// Forgets cached verifications of a tenant's tokens (after it is deactivated).
    pub fn forget_tenant(&self, tenant_id: i64) {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, v| v.principal.tenant_id != Some(tenant_id));
        }
    }

    fn forget_all(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    /// Reads the authentication revision when the last read is older than the check
    /// interval, dropping the cache if it moved; returns the revision the cache is valid
    /// for. One request reads while concurrent ones wait for its answer. When the read
    /// fails, the cache is kept (its entries still expire) and the next request retries.
    async fn current_revision(&self, store: &Store) -> i64 {
        let mut read_at = self.revision_read_at.lock().await;
        if read_at.is_some_and(|at| at.elapsed() < self.revision_check) {
            return self.revision.load(Ordering::Acquire);
        }
        match store.auth_revision().await {
            Ok(now) => {
                let before = self.revision.swap(now, Ordering::AcqRel);
                if before != now {
                    self.forget_all();
                }
                *read_at = Some(Instant::now());
                now
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the authentication revision");
                self.revision.load(Ordering::Acquire)
            }
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let cache = self.cache.lock().ok()?;
        let c = cache.get(key)?;
        (c.at.elapsed() < CACHE_TTL).then(|| c.principal.clone())
    }

    fn remember(&self, key: [u8; 32], principal: &Principal, revision: i64) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        // A revision read while this token was being verified may have revoked it: cache
        // only what was verified under the revision the cache is valid for.
        if self.revision.load(Ordering::Acquire) != revision {
            return;
        }
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, v| v.at.elapsed() < CACHE_TTL);
            if cache.len() >= MAX_CACHED {
                return;
            }
        }
        cache.insert(
            key,
            Cached {
                principal: principal.clone(),
                at: Instant::now(),
            },
        );
    }

    /// Counts a failure against the client and the prefix: 429 once either is over its
    /// limit, else 401 with `detail`.
    fn failed(&self, client: Option<IpAddr>, prefix: Option<&str>, detail: String) -> ApiError {
        let by_client = client.and_then(|ip| self.by_client.fail(client_key(ip)));
        let by_prefix = prefix.and_then(|p| self.by_prefix.fail(p.to_owned()));
        match by_client.max(by_prefix) {
            Some(retry_after_secs) => ApiError::TooManyAttempts { retry_after_secs },
            None => ApiError::Unauthenticated { detail },
        }
    }

    /// Authenticates a bearer token presented by `client`.
    pub async fn authenticate(
        &self,
        store: &Store,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, ApiError> {
        let revision = self.current_revision(store).await;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = self.cached(&key) {
            return Ok(principal);
        }
        let Some((prefix, secret)) = split_token(token) else {
            return Err(self.failed(client, None, "the bearer token is not valid".into()));
        };
        let over = client
            .and_then(|ip| self.by_client.over(&client_key(ip)))
            .max(self.by_prefix.over(&prefix.to_owned()));
        let outcome = match over {
            None => {
                let _permit = self
                    .lane
                    .acquire()
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                self.verify(store, prefix, secret).await
            }
            Some(retry_after_secs) => {
                if self.suspect_waiting.fetch_add(1, Ordering::AcqRel) >= SUSPECT_WAITING_ROOM {
                    self.suspect_waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(ApiError::TooManyAttempts { retry_after_secs });
                }
                let waiting = Waiting(&self.suspect_waiting);
                let _permit = self
                    .suspect_lane
                    .acquire()
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                drop(waiting);
                self.verify(store, prefix, secret).await
            }
        };
        match outcome {
            Ok(principal) => {
                // Written at most once per cache period per token and process.
                if let Err(e) = store
                    .touch_token(principal.token_id, chrono::Utc::now())
                    .await
                {
                    tracing::warn!(error = %e, "could not record token use");
                }
                self.remember(key, &principal, revision);
                Ok(principal)
            }
            Err(Refusal::Invalid(detail)) => Err(self.failed(client, Some(prefix), detail)),
            Err(Refusal::Error(e)) => Err(e),
        }
    }

    /// Checks a well-formed token against the database and its hash.
    async fn verify(
        &self,
        store: &Store,
        prefix: &str,
        secret: &str,
    ) -> Result<Principal, Refusal> {
        let invalid = || Refusal::Invalid("the bearer token is not valid".into());
        let Some(cred) = store.token_credential(prefix).await? else {
            // Cost about what a wrong secret costs, when that does not take a permit from
            // anyone: prefixes should not be told apart by timing.
            if let Ok(_permit) = self.suspect_lane.try_acquire() {
                let secret = secret.to_owned();
                let _ = web::block(move || {
                    Argon2::default().verify_password(secret.as_bytes(), dummy_hash())
                })
                .await;
            }
            return Err(invalid());
        };
        let secret = secret.to_owned();
        let hash = cred.secret_hash.clone();
        let matches = web::block(move || {
            Argon2::default()
                .verify_password(secret.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(|e| Refusal::Error(ApiError::Internal(e.to_string())))?;
        if !matches {
            return Err(invalid());
        }
        if cred.token.revoked_at.is_some() {
            return Err(Refusal::Invalid("the bearer token was revoked".into()));
        }
        if !cred.tenant_active {
            return Err(Refusal::Invalid("the token's tenant is deactivated".into()));
        }
        Ok(Principal {
            token_id: cred.token.id,
            name: cred.token.name,
            role: cred.token.role,
            tenant_id: cred.token.tenant_id,
        })
    }
}

/// `sw_<prefix>_<secret>` → (prefix, secret).
fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("sw_")?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == PREFIX_BYTES * 2
        && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        && !secret.is_empty()
        && secret.len() <= 128)
        .then_some((prefix, secret))
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(buf)
}

/// Creates a token and returns it with its secret form — the only time it is shown.
pub async fn issue_token(
    store: &Store,
    name: &str,
    role: Role,
    tenant_id: Option<i64>,
) -> Result<(ApiToken, String), ApiError> {
    let prefix: String = random::<PREFIX_BYTES>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<SECRET_BYTES>()?);
    let to_hash = secret.clone();
    let hash = web::block(move || {
        Argon2::default()
            .hash_password(to_hash.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let token = store
        .create_token(NewToken {
            name: name.to_owned(),
            prefix: prefix.clone(),
            secret_hash: hash,
            role,
            tenant_id,
        })
        .await?;
    Ok((token, format!("sw_{prefix}_{secret}")))
}

impl FromRequest for Principal {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let client = state
            .as_ref()
            .and_then(|s| crate::client_address(req, &s.config));
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("no application state".into()))?;
            let Some(header) = header else {
                return Err(ApiError::Unauthenticated {
                    detail: "send Authorization: Bearer <token>".into(),
                }
                .into());
            };
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .map(str::trim)
                .unwrap_or_default();
            let principal = state.auth.authenticate(&state.store, token, client).await?;
            let span = tracing::Span::current();
            span.record("role", principal.role.as_str());
            if let Some(t) = principal.tenant_id {
                span.record("tenant_id", t);
            }
            Ok(principal)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_into_prefix_and_secret() {
        assert_eq!(
            split_token("sw_0123456789ab_s3cr-t_x"),
            Some(("0123456789ab", "s3cr-t_x"))
        );
        assert_eq!(split_token("sw_0123_abc"), None);
        assert_eq!(split_token("xx_0123456789ab_abc"), None);
        assert_eq!(split_token("sw_0123456789ab_"), None);
        assert_eq!(split_token(""), None);
    }
}
