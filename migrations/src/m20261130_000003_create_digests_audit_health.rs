//! Weekly digests (one row per tenant and ISO week: the exactly-once key), the audit log of
//! staff changes, and stored domain health-check runs.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

fn now_col(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(name)
        .default(Expr::current_timestamp())
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per (tenant, ISO week). The unique key is what makes building and sending
        // a digest exactly-once: schedulers firing twice or racing workers all land on the
        // same row, and a send is claimed by moving `status` with a conditional UPDATE.
        //
        // status: pending → built → sending → sent; a failed send goes back to `built`
        // with `attempts`, `last_error` and `next_attempt_at` set, or to `failed` when the
        // retry budget is spent.
        m.create_table(
            Table::create()
                .table("digests")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string("iso_week"))
                .col(string("status"))
                .col(text_null("subject"))
                .col(text_null("text_body"))
                .col(text_null("html_body"))
                .col(text("recipients").default("[]"))
                .col(string_null("message_id"))
                .col(integer("attempts").default(0))
                .col(text_null("last_error"))
                .col(string_null("claimed_by"))
                .col(timestamp_with_time_zone_null("claimed_until"))
                .col(timestamp_with_time_zone_null("next_attempt_at"))
                .col(timestamp_with_time_zone_null("built_at"))
                .col(timestamp_with_time_zone_null("sent_at"))
                .col(now_col("created_at"))
                .col(now_col("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("digests", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_digests_tenant_week")
                .table("digests")
                .col("tenant_id")
                .col("iso_week")
                .unique()
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_digests_status")
                .table("digests")
                .col("status")
                .col("next_attempt_at")
                .take(),
        )
        .await?;

        // Every change made through the admin API or CLI: who, what, when, before/after.
        m.create_table(
            Table::create()
                .table("audit_log")
                .col(big_pk_auto("id"))
                .col(string("actor"))
                .col(big_integer_null("actor_token_id"))
                .col(big_integer_null("tenant_id"))
                .col(string("action"))
                .col(string("entity"))
                .col(string_null("entity_id"))
                .col(text_null("before"))
                .col(text_null("after"))
                .col(now_col("created_at"))
                .take(),
        )
        .await?;
        for (name, cols) in [
            ("idx_audit_log_created", &["created_at"][..]),
            ("idx_audit_log_tenant", &["tenant_id", "id"][..]),
        ] {
            let mut idx = Index::create();
            idx.name(name).table("audit_log");
            for c in cols {
                idx.col(*c);
            }
            m.create_index(idx.take()).await?;
        }

        // One row per health-check run of a domain; `report` is the full JSON report, so a
        // later run can be diffed against it ("what changed since last week").
        m.create_table(
            Table::create()
                .table("health_checks")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(integer("score"))
                .col(string("grade"))
                .col(text("report"))
                .col(now_col("checked_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("health_checks", "domain_id")
                        .to("tenant_domains", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("health_checks", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_health_checks_domain_checked")
                .table("health_checks")
                .col("domain_id")
                .col("checked_at")
                .take(),
        )
        .await?;

        // What the DNS verification of an onboarded domain found, as JSON.
        m.alter_table(
            Table::alter()
                .table("tenant_domains")
                .add_column(text_null("verification_detail"))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tenant_domains")
                .drop_column("verification_detail")
                .take(),
        )
        .await?;
        for table in ["health_checks", "audit_log", "digests"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
