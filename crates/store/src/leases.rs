//! Mailbox leases: each mailbox is polled by one process at a time. A lease is a
//! conditional UPDATE on the mailbox row (free, expired, or already ours), atomic on both
//! engines; a crashed poller's lease simply expires and another process takes the mailbox.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::mailbox;
use crate::{Result, Store};

impl Store {
    /// Takes or renews the lease of a mailbox for `owner` until `until`. `false` when
    /// another owner holds an unexpired lease.
    pub async fn acquire_mailbox_lease(
        &self,
        mailbox_id: i64,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let res = mailbox::Entity::update_many()
            .col_expr(mailbox::Column::LeaseOwner, Expr::value(owner))
            .col_expr(mailbox::Column::LeaseUntil, Expr::value(until))
            .filter(mailbox::Column::Id.eq(mailbox_id))
            .filter(
                Condition::any()
                    .add(mailbox::Column::LeaseUntil.is_null())
                    .add(mailbox::Column::LeaseUntil.lt(now))
                    .add(mailbox::Column::LeaseOwner.eq(owner)),
            )
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Gives a lease back (only if `owner` still holds it).
    pub async fn release_mailbox_lease(&self, mailbox_id: i64, owner: &str) -> Result<()> {
        mailbox::Entity::update_many()
            .col_expr(
                mailbox::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                mailbox::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(mailbox::Column::Id.eq(mailbox_id))
            .filter(mailbox::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
