//! Anomalies flagged by the analysis, and the staff reviews of them.
//!
//! One row per (domain, fingerprint): an ongoing problem updates its row day after day
//! instead of opening a new one. Windows and sightings are UTC day numbers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("anomalies")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(string("kind"))
                .col(string("fingerprint"))
                .col(string("severity"))
                .col(small_integer("severity_rank"))
                .col(string("status"))
                .col(double("confidence"))
                .col(integer("window_start"))
                .col(integer("window_end"))
                .col(integer("first_seen_day"))
                .col(integer("last_seen_day"))
                .col(text("summary"))
                .col(text("evidence"))
                .col(text("explanation"))
                .col(integer("occurrences").default(1))
                .col(integer("reopened").default(0))
                .col(string_null("assignee"))
                .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                .col(timestamp_with_time_zone("updated_at").default(Expr::current_timestamp()))
                .col(timestamp_with_time_zone_null("resolved_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("anomalies", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("anomalies", "domain_id")
                        .to("tenant_domains", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        for (name, cols, unique) in [
            (
                "idx_anomalies_domain_fingerprint",
                &["domain_id", "fingerprint"][..],
                true,
            ),
            (
                "idx_anomalies_queue",
                &["status", "severity_rank", "last_seen_day"][..],
                false,
            ),
            (
                "idx_anomalies_tenant_status",
                &["tenant_id", "status"][..],
                false,
            ),
            ("idx_anomalies_kind", &["kind"][..], false),
        ] {
            let mut idx = Index::create();
            idx.name(name).table("anomalies");
            for c in cols {
                idx.col(*c);
            }
            if unique {
                idx.unique();
            }
            m.create_index(idx.take()).await?;
        }

        m.create_table(
            Table::create()
                .table("anomaly_reviews")
                .col(big_pk_auto("id"))
                .col(big_integer("anomaly_id"))
                .col(string("action"))
                .col(string("from_status"))
                .col(string("to_status"))
                .col(text_null("note"))
                .col(string_null("assignee"))
                .col(string_null("actor"))
                .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                .foreign_key(
                    ForeignKey::create()
                        .from("anomaly_reviews", "anomaly_id")
                        .to("anomalies", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_anomaly_reviews_anomaly")
                .table("anomaly_reviews")
                .col("anomaly_id")
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("anomaly_reviews").to_owned())
            .await?;
        m.drop_table(Table::drop().table("anomalies").to_owned())
            .await?;
        Ok(())
    }
}
