//! Tenants (subscribers) and the domains they own.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use sealwatch_model::DomainName;

use crate::entities::{tenant, tenant_domain};
use crate::{Result, Scope, Store, StoreError, TenantRow};

/// A tenant with its domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub domains: Vec<String>,
}

/// One row of the routing table: a domain a tenant owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub domain: DomainName,
    pub domain_id: i64,
    pub tenant_id: i64,
}

impl Store {
    /// Creates a tenant with its domains, atomically.
    pub async fn create_tenant(&self, name: &str, domains: &[DomainName]) -> Result<Tenant> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("tenant name is empty".into()));
        }
        let txn = self.db.begin().await?;
        if tenant::Entity::find()
            .filter(tenant::Column::Name.eq(name))
            .one(&txn)
            .await?
            .is_some()
        {
            return Err(StoreError::TenantExists(name.to_owned()));
        }
        let now = Utc::now();
        let t = tenant::ActiveModel {
            name: Set(name.to_owned()),
            active: Set(true),
            digest_recipients: Set("[]".to_owned()),
            digest_weekday: Set(2),
            digest_hour: Set(8),
            timezone: Set("UTC".to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        for d in domains {
            if tenant_domain::Entity::find()
                .filter(tenant_domain::Column::Domain.eq(d.as_str()))
                .one(&txn)
                .await?
                .is_some()
            {
                return Err(StoreError::DomainTaken(d.to_string()));
            }
            tenant_domain::ActiveModel {
                tenant_id: Set(t.id),
                domain: Set(d.to_string()),
                verification: Set("pending".to_owned()),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(Tenant {
            id: t.id,
            name: t.name,
            active: t.active,
            domains: domains.iter().map(ToString::to_string).collect(),
        })
    }

    /// The tenant's domain-ownership token: the stored one, or else `candidate`, stored now
    /// (the caller makes it random). Stable once stored, whatever process asks first.
    pub async fn tenant_verification_token(
        &self,
        scope: Scope,
        id: i64,
        candidate: &str,
    ) -> Result<String> {
        self.tenant_get(scope, id).await?;
        tenant::Entity::update_many()
            .col_expr(tenant::Column::VerificationToken, Expr::value(candidate))
            .filter(tenant::Column::Id.eq(id))
            .filter(tenant::Column::VerificationToken.is_null())
            .exec(&self.db)
            .await?;
        tenant::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .and_then(|t| t.verification_token)
            .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
    }

    /// Deactivates a tenant (its reports are no longer routed, its tokens stop working);
    /// returns it before and after. Bumps the authentication revision in the same
    /// transaction, so every API process drops its cached verifications within seconds.
    pub async fn tenant_deactivate(&self, scope: Scope, id: i64) -> Result<(TenantRow, TenantRow)> {
        let before = self.tenant_get(scope, id).await?;
        let txn = self.db.begin().await?;
        tenant::Entity::update_many()
            .col_expr(tenant::Column::Active, Expr::value(false))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenant::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        crate::tokens::bump_auth_revision(&txn).await?;
        txn.commit().await?;
        let after = self.tenant_get(scope, id).await?;
        Ok((before, after))
    }

    /// Every tenant with its domains, by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let tenants = tenant::Entity::find()
            .order_by_asc(tenant::Column::Name)
            .all(&self.db)
            .await?;
        let domains = tenant_domain::Entity::find()
            .order_by_asc(tenant_domain::Column::Domain)
            .all(&self.db)
            .await?;
        Ok(tenants
            .into_iter()
            .map(|t| Tenant {
                domains: domains
                    .iter()
                    .filter(|d| d.tenant_id == t.id)
                    .map(|d| d.domain.clone())
                    .collect(),
                id: t.id,
                name: t.name,
                active: t.active,
            })
            .collect())
    }

    /// Finds a tenant by name.
    pub async fn find_tenant(&self, name: &str) -> Result<Option<Tenant>> {
        let Some(t) = tenant::Entity::find()
            .filter(tenant::Column::Name.eq(name))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let domains = tenant_domain::Entity::find()
            .filter(tenant_domain::Column::TenantId.eq(t.id))
            .order_by_asc(tenant_domain::Column::Domain)
            .all(&self.db)
            .await?;
        Ok(Some(Tenant {
            id: t.id,
            name: t.name,
            active: t.active,
            domains: domains.into_iter().map(|d| d.domain).collect(),
        }))
    }

    /// The routing table for reports posted over HTTPS: only the verified domains of active
    /// tenants (anyone can post, so an unverified claim on a domain must not attract reports).
    pub async fn verified_routing_entries(&self) -> Result<Vec<RouteEntry>> {
        let verified: std::collections::HashSet<i64> = tenant_domain::Entity::find()
            .filter(tenant_domain::Column::Verification.eq("verified"))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        Ok(self
            .routing_entries()
            .await?
            .into_iter()
            .filter(|e| verified.contains(&e.domain_id))
            .collect())
    }

    /// The routing table: every domain of every active tenant.
    pub async fn routing_entries(&self) -> Result<Vec<RouteEntry>> {
        let active: Vec<i64> = tenant::Entity::find()
            .filter(tenant::Column::Active.eq(true))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        let rows = tenant_domain::Entity::find()
            .filter(tenant_domain::Column::TenantId.is_in(active))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(RouteEntry {
                    domain: DomainName::parse(&r.domain).ok()?,
                    domain_id: r.id,
                    tenant_id: r.tenant_id,
                })
            })
            .collect())
    }
}
