//! API tokens: stored by public prefix with a hash of the secret, never the secret itself.
//! Hashing and verification belong to the caller (the API); this module only keeps rows.
//!
//! The authentication revision (table `auth_revision`, one row) is bumped in the same
//! transaction as every revocation and tenant deactivation: API processes cache verified
//! tokens and drop their cache when the revision they last read has changed.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};

use crate::entities::{api_token, auth_revision, tenant};
use crate::{Result, Store, StoreError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, across tenants.
    Admin,
    /// Read everything and review anomalies, across tenants.
    Analyst,
    /// Read-only, one tenant.
    Tenant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Tenant => "tenant",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "tenant" => Ok(Role::Tenant),
            other => Err(StoreError::Invalid(format!(
                "role {other:?} is not one of admin, analyst, tenant"
            ))),
        }
    }
}

/// A token row (without its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub role: Role,
    pub tenant_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token row with the stored hash of its secret, for verification.
#[derive(Debug, Clone)]
pub struct TokenCredential {
    pub token: ApiToken,
    pub secret_hash: String,
    /// Whether the token's tenant (if any) is active.
    pub tenant_active: bool,
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub role: Role,
    /// Required for [`Role::Tenant`], refused otherwise.
    pub tenant_id: Option<i64>,
}

fn to_token(m: api_token::Model) -> Result<ApiToken> {
    Ok(ApiToken {
        id: m.id,
        name: m.name,
        prefix: m.prefix,
        role: m.role.parse()?,
        tenant_id: m.tenant_id,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
        revoked_at: m.revoked_at,
    })
}

impl Store {
    /// Stores a token. A tenant token must name an existing tenant; staff tokens must not.
    pub async fn create_token(&self, new: NewToken) -> Result<ApiToken> {
        match (new.role, new.tenant_id) {
            (Role::Tenant, None) => {
                return Err(StoreError::Invalid("a tenant token needs a tenant".into()));
            }
            (Role::Tenant, Some(t)) => {
                if tenant::Entity::find_by_id(t).one(&self.db).await?.is_none() {
                    return Err(StoreError::NotFound(format!("tenant {t}")));
                }
            }
            (_, Some(_)) => {
                return Err(StoreError::Invalid(
                    "only tenant tokens belong to a tenant".into(),
                ));
            }
            (_, None) => {}
        }
        let m = api_token::ActiveModel {
            name: Set(new.name),
            prefix: Set(new.prefix),
            secret_hash: Set(new.secret_hash),
            role: Set(new.role.as_str().to_owned()),
            staff_user_id: Set(None),
            tenant_id: Set(new.tenant_id),
            created_at: Set(Utc::now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        to_token(m)
    }

    /// The token with this prefix and its hash, if any.
    pub async fn token_credential(&self, prefix: &str) -> Result<Option<TokenCredential>> {
        let Some(m) = api_token::Entity::find()
            .filter(api_token::Column::Prefix.eq(prefix))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let tenant_active = match m.tenant_id {
            None => true,
            Some(t) => tenant::Entity::find_by_id(t)
                .one(&self.db)
                .await?
                .is_some_and(|t| t.active),
        };
        let secret_hash = m.secret_hash.clone();
        Ok(Some(TokenCredential {
            token: to_token(m)?,
            secret_hash,
            tenant_active,
        }))
    }

    /// Records that a token was used (callers throttle this).
    pub async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::value(at))
            .filter(api_token::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Revokes a token; returns it before and after. Bumps the authentication revision in
    /// the same transaction, so every process drops its cached verifications.
    pub async fn revoke_token(&self, id: i64) -> Result<(ApiToken, ApiToken)> {
        let txn = self.db.begin().await?;
        let m = api_token::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))?;
        let before = to_token(m.clone())?;
        let mut am: api_token::ActiveModel = m.into();
        if before.revoked_at.is_none() {
            am.revoked_at = Set(Some(Utc::now()));
        }
        let after = to_token(am.update(&txn).await?)?;
        bump_auth_revision(&txn).await?;
        txn.commit().await?;
        Ok((before, after))
    }

    /// The authentication revision: changes whenever a token is revoked or a tenant is
    /// deactivated (anywhere). Cheap: one row by primary key.
    pub async fn auth_revision(&self) -> Result<i64> {
        Ok(auth_revision::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .map_or(0, |r| r.revision))
    }

    /// Tokens by id, after `after`.
    pub async fn token_page(&self, after: Option<i64>, limit: u64) -> Result<Vec<ApiToken>> {
        let mut q = api_token::Entity::find().order_by_asc(api_token::Column::Id);
        if let Some(a) = after {
            q = q.filter(api_token::Column::Id.gt(a));
        }
        q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_token)
            .collect()
    }
}

/// Bumps the authentication revision (inside the caller's transaction).
pub(crate) async fn bump_auth_revision(db: &impl ConnectionTrait) -> Result<()> {
    let updated = auth_revision::Entity::update_many()
        .col_expr(
            auth_revision::Column::Revision,
            Expr::col(auth_revision::Column::Revision).add(1),
        )
        .col_expr(auth_revision::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(auth_revision::Column::Id.eq(1))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        // The row is created by the migration; recreate it if someone removed it.
        auth_revision::ActiveModel {
            id: Set(1),
            revision: Set(1),
            updated_at: Set(Utc::now()),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}
