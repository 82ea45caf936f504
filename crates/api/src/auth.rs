//! Bearer tokens: `sw_<prefix>_<secret>`. The prefix finds the row; the secret is checked
//! against its argon2 hash. Verified tokens are remembered for a minute (so a busy client
//! costs one argon2 run per minute, not one per request), which is also how often
//! `last_used_at` is written. Failed authentications are counted per client address.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use sealwatch_store::{ApiToken, NewToken, Role, Scope, Store};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// How long a verified token is trusted without looking at the database again.
const CACHE_TTL: Duration = Duration::from_secs(60);
const PREFIX_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

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

#[derive(Debug)]
struct Failures {
    window_start: Instant,
    count: u32,
}

/// Verified-token cache and failure counters, shared by the workers.
#[derive(Debug)]
pub struct Authenticator {
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    failures_per_minute: u32,
}

impl Authenticator {
    pub fn new(failures_per_minute: u32) -> Self {
        Authenticator {
            cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            failures_per_minute: failures_per_minute.max(1),
        }
    }

    /// Forgets cached verifications of a token (after it is revoked).
    pub fn forget(&self, token_id: i64) {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, v| v.principal.token_id != token_id);
        }
    }

    fn blocked(&self, ip: Option<IpAddr>) -> Option<u64> {
        let ip = ip?;
        let map = self.failures.lock().ok()?;
        let f = map.get(&ip)?;
        let elapsed = f.window_start.elapsed();
        (elapsed < Duration::from_secs(60) && f.count >= self.failures_per_minute)
            .then(|| 60u64.saturating_sub(elapsed.as_secs()).max(1))
    }

    fn failed(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                map.retain(|_, f| f.window_start.elapsed() < Duration::from_secs(60));
            }
            let f = map.entry(ip).or_insert(Failures {
                window_start: Instant::now(),
                count: 0,
            });
            if f.window_start.elapsed() >= Duration::from_secs(60) {
                f.window_start = Instant::now();
                f.count = 0;
            }
            f.count += 1;
        }
    }

    /// Authenticates a bearer token.
    pub async fn authenticate(
        &self,
        store: &Store,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<Principal, ApiError> {
        if let Some(retry_after_secs) = self.blocked(ip) {
            return Err(ApiError::TooManyAttempts { retry_after_secs });
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(&key)
            && c.at.elapsed() < CACHE_TTL
        {
            return Ok(c.principal.clone());
        }
        match self.verify(store, token).await {
            Ok(principal) => {
                // Written at most once per cache period per token and process.
                if let Err(e) = store
                    .touch_token(principal.token_id, chrono::Utc::now())
                    .await
                {
                    tracing::warn!(error = %e, "could not record token use");
                }
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() > 10_000 {
                        cache.retain(|_, v| v.at.elapsed() < CACHE_TTL);
                    }
                    cache.insert(
                        key,
                        Cached {
                            principal: principal.clone(),
                            at: Instant::now(),
                        },
                    );
                }
                Ok(principal)
            }
            Err(e) => {
                if matches!(e, ApiError::Unauthenticated { .. }) {
                    self.failed(ip);
                }
                Err(e)
            }
        }
    }

    async fn verify(&self, store: &Store, token: &str) -> Result<Principal, ApiError> {
        let invalid = || ApiError::Unauthenticated {
            detail: "the bearer token is not valid".into(),
        };
        let (prefix, secret) = split_token(token).ok_or_else(invalid)?;
        let cred = store.token_credential(prefix).await?.ok_or_else(invalid)?;
        let secret = secret.to_owned();
        let hash = cred.secret_hash.clone();
        let matches = web::block(move || {
            Argon2::default()
                .verify_password(secret.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        if !matches {
            return Err(invalid());
        }
        if cred.token.revoked_at.is_some() {
            return Err(ApiError::Unauthenticated {
                detail: "the bearer token was revoked".into(),
            });
        }
        if !cred.tenant_active {
            return Err(ApiError::Unauthenticated {
                detail: "the token's tenant is deactivated".into(),
            });
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

fn random<const N: usize>() -> Result<[u8; N], ApiError> {
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
        let ip = req.peer_addr().map(|a| a.ip());
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
            let principal = state.auth.authenticate(&state.store, token, ip).await?;
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
