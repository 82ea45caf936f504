//! The audit log: one row per change made by staff (who, what, when, before and after).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entities::audit_log;
use crate::{Result, Store};

/// A change to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who: a token name and role, or `cli`.
    pub actor: String,
    pub actor_token_id: Option<i64>,
    pub tenant_id: Option<i64>,
    /// What: `create`, `update`, `deactivate`, `delete`, `review`, `verify`, `revoke`, …
    pub action: String,
    /// Which kind of object: `tenant`, `domain`, `mailbox`, `anomaly`, `token`, …
    pub entity: String,
    pub entity_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub actor: String,
    pub actor_token_id: Option<i64>,
    pub tenant_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

fn parse(text: Option<String>) -> Option<serde_json::Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t)))
}

impl Store {
    /// Appends an entry to the audit log.
    pub async fn audit(&self, entry: AuditEntry) -> Result<()> {
        audit_log::ActiveModel {
            actor: Set(entry.actor),
            actor_token_id: Set(entry.actor_token_id),
            tenant_id: Set(entry.tenant_id),
            action: Set(entry.action),
            entity: Set(entry.entity),
            entity_id: Set(entry.entity_id),
            before: Set(entry.before.map(|v| v.to_string())),
            after: Set(entry.after.map(|v| v.to_string())),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Audit entries, newest first, before id `before`; optionally of one tenant or entity.
    pub async fn audit_page(
        &self,
        tenant_id: Option<i64>,
        entity: Option<&str>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<AuditRecord>> {
        let mut q = audit_log::Entity::find().order_by_desc(audit_log::Column::Id);
        if let Some(b) = before {
            q = q.filter(audit_log::Column::Id.lt(b));
        }
        if let Some(t) = tenant_id {
            q = q.filter(audit_log::Column::TenantId.eq(t));
        }
        if let Some(e) = entity {
            q = q.filter(audit_log::Column::Entity.eq(e));
        }
        Ok(q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| AuditRecord {
                id: m.id,
                actor: m.actor,
                actor_token_id: m.actor_token_id,
                tenant_id: m.tenant_id,
                action: m.action,
                entity: m.entity,
                entity_id: m.entity_id,
                before: parse(m.before),
                after: parse(m.after),
                created_at: m.created_at,
            })
            .collect())
    }
}
