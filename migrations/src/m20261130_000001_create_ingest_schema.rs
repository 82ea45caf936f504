//! Tenants, their domains, staff and tokens, mailboxes, raw messages, parsed reports,
//! quarantine and ingest runs.
//!
//! Report date ranges are stored as Unix seconds (`*_ts`) and UTC day numbers since the
//! epoch (`*_day`): compact, portable across both engines, and what rollups group by.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

fn fk(
    table: &'static str,
    col: &'static str,
    target: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(target, "id")
        .on_delete(on_delete)
        .take()
}

fn created_at() -> ColumnDef {
    timestamp_with_time_zone("created_at")
        .default(Expr::current_timestamp())
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tenants")
                .col(big_pk_auto("id"))
                .col(string_uniq("name"))
                .col(boolean("active").default(true))
                .col(text("digest_recipients").default("[]"))
                .col(small_integer("digest_weekday").default(2))
                .col(small_integer("digest_hour").default(8))
                .col(string("timezone").default("UTC"))
                .col(created_at())
                .col(timestamp_with_time_zone("updated_at").default(Expr::current_timestamp()))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("tenant_domains")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(string_uniq("domain"))
                .col(string("verification").default("pending"))
                .col(timestamp_with_time_zone_null("verified_at"))
                .col(created_at())
                .foreign_key(&mut fk(
                    "tenant_domains",
                    "tenant_id",
                    "tenants",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        index(m, "tenant_domains", &["tenant_id"]).await?;

        m.create_table(
            Table::create()
                .table("staff_users")
                .col(big_pk_auto("id"))
                .col(string_uniq("email"))
                .col(string("name"))
                .col(string("role"))
                .col(boolean("active").default(true))
                .col(created_at())
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("api_tokens")
                .col(big_pk_auto("id"))
                .col(string("name"))
                .col(string_uniq("prefix"))
                .col(text("secret_hash"))
                .col(string("role"))
                .col(big_integer_null("staff_user_id"))
                .col(big_integer_null("tenant_id"))
                .col(created_at())
                .col(timestamp_with_time_zone_null("last_used_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .foreign_key(&mut fk(
                    "api_tokens",
                    "staff_user_id",
                    "staff_users",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "api_tokens",
                    "tenant_id",
                    "tenants",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("mailboxes")
                .col(big_pk_auto("id"))
                .col(big_integer_null("tenant_id"))
                .col(string_uniq("name"))
                .col(string("host"))
                .col(integer("port"))
                .col(string("tls_mode"))
                .col(string("username"))
                .col(string_null("password_env"))
                .col(text_null("password_secret"))
                .col(string("folder").default("INBOX"))
                .col(string("after_action"))
                .col(string_null("after_folder"))
                .col(boolean("enabled").default(true))
                .col(big_integer_null("uidvalidity"))
                .col(big_integer("last_uid").default(0))
                .col(timestamp_with_time_zone_null("last_poll_at"))
                .col(string_null("last_status"))
                .col(text_null("last_error"))
                .col(integer("consecutive_failures").default(0))
                .col(string_null("lease_owner"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(created_at())
                .foreign_key(&mut fk(
                    "mailboxes",
                    "tenant_id",
                    "tenants",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("raw_messages")
                .col(big_pk_auto("id"))
                .col(string_uniq("sha256"))
                .col(big_integer("size"))
                .col(string("source"))
                .col(big_integer_null("mailbox_id"))
                .col(text_null("origin"))
                .col(text_null("message_id"))
                .col(string("outcome"))
                .col(blob("bytes"))
                .col(timestamp_with_time_zone("received_at").default(Expr::current_timestamp()))
                .foreign_key(&mut fk(
                    "raw_messages",
                    "mailbox_id",
                    "mailboxes",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        index(m, "raw_messages", &["received_at"]).await?;

        // What the poller has finished with: a message is acted on (moved, flagged,
        // deleted) only after its row here is committed.
        m.create_table(
            Table::create()
                .table("mailbox_messages")
                .col(big_pk_auto("id"))
                .col(big_integer("mailbox_id"))
                .col(big_integer("uidvalidity"))
                .col(big_integer("uid"))
                .col(big_integer("raw_message_id"))
                .col(created_at())
                .foreign_key(&mut fk(
                    "mailbox_messages",
                    "mailbox_id",
                    "mailboxes",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "mailbox_messages",
                    "raw_message_id",
                    "raw_messages",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        unique_index(m, "mailbox_messages", &["mailbox_id", "uidvalidity", "uid"]).await?;

        m.create_table(
            Table::create()
                .table("dmarc_reports")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(big_integer_null("raw_message_id"))
                .col(string_uniq("dedupe_key"))
                .col(string("content_hash"))
                .col(string("org_name"))
                .col(string_null("reporter_email"))
                .col(string("report_id"))
                .col(string("policy_domain"))
                .col(big_integer("begin_ts"))
                .col(big_integer("end_ts"))
                .col(integer("begin_day"))
                .col(integer("end_day"))
                .col(big_integer("message_count"))
                .col(integer("record_count"))
                .col(string_null("adkim"))
                .col(string_null("aspf"))
                .col(string_null("p"))
                .col(string_null("sp"))
                .col(string_null("np"))
                .col(small_integer_null("pct"))
                .col(string_null("fo"))
                .col(boolean_null("testing"))
                .col(string_null("discovery_method"))
                .col(string_null("xml_namespace"))
                .col(text("errors"))
                .col(text("warnings"))
                .col(text("submitter"))
                .col(created_at())
                .foreign_key(&mut fk(
                    "dmarc_reports",
                    "tenant_id",
                    "tenants",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "dmarc_reports",
                    "domain_id",
                    "tenant_domains",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "dmarc_reports",
                    "raw_message_id",
                    "raw_messages",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        index(m, "dmarc_reports", &["domain_id", "begin_day"]).await?;
        index(m, "dmarc_reports", &["tenant_id", "begin_ts"]).await?;
        index(m, "dmarc_reports", &["org_name"]).await?;

        m.create_table(
            Table::create()
                .table("dmarc_records")
                .col(big_pk_auto("id"))
                .col(big_integer("report_id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(integer("day"))
                .col(string("source_ip"))
                .col(big_integer("count"))
                .col(string_null("disposition"))
                .col(string_null("dkim_result"))
                .col(string_null("spf_result"))
                .col(string_null("header_from"))
                .col(string_null("envelope_from"))
                .col(string_null("envelope_to"))
                .col(text_null("reasons"))
                .col(text("dkim_auth"))
                .col(text("spf_auth"))
                .foreign_key(&mut fk(
                    "dmarc_records",
                    "report_id",
                    "dmarc_reports",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        index(m, "dmarc_records", &["report_id"]).await?;
        index(m, "dmarc_records", &["domain_id", "day"]).await?;
        index(m, "dmarc_records", &["source_ip"]).await?;

        m.create_table(
            Table::create()
                .table("tls_reports")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(big_integer_null("raw_message_id"))
                .col(string_uniq("dedupe_key"))
                .col(string("content_hash"))
                .col(string("org_name"))
                .col(string_null("contact_info"))
                .col(string("report_id"))
                .col(big_integer("begin_ts"))
                .col(big_integer("end_ts"))
                .col(integer("begin_day"))
                .col(integer("end_day"))
                .col(big_integer("successful_sessions"))
                .col(big_integer("failed_sessions"))
                .col(text("warnings"))
                .col(text("submitter"))
                .col(created_at())
                .foreign_key(&mut fk(
                    "tls_reports",
                    "tenant_id",
                    "tenants",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "tls_reports",
                    "domain_id",
                    "tenant_domains",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "tls_reports",
                    "raw_message_id",
                    "raw_messages",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        index(m, "tls_reports", &["domain_id", "begin_day"]).await?;
        index(m, "tls_reports", &["tenant_id", "begin_ts"]).await?;
        index(m, "tls_reports", &["org_name"]).await?;

        m.create_table(
            Table::create()
                .table("tls_policies")
                .col(big_pk_auto("id"))
                .col(big_integer("tls_report_id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(string("policy_type"))
                .col(string_null("policy_domain"))
                .col(text("policy_strings"))
                .col(text("mx_hosts"))
                .col(string_null("sts_mode"))
                .col(big_integer("successful_sessions"))
                .col(big_integer("failed_sessions"))
                .foreign_key(&mut fk(
                    "tls_policies",
                    "tls_report_id",
                    "tls_reports",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        index(m, "tls_policies", &["tls_report_id"]).await?;

        m.create_table(
            Table::create()
                .table("tls_failure_details")
                .col(big_pk_auto("id"))
                .col(big_integer("tls_policy_id"))
                .col(big_integer("tls_report_id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(integer("day"))
                .col(string("result_type"))
                .col(string_null("sending_mta_ip"))
                .col(string_null("receiving_mx_hostname"))
                .col(string_null("receiving_mx_helo"))
                .col(string_null("receiving_ip"))
                .col(big_integer("failed_sessions"))
                .col(text_null("additional_information"))
                .col(string_null("failure_reason_code"))
                .foreign_key(&mut fk(
                    "tls_failure_details",
                    "tls_policy_id",
                    "tls_policies",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        index(m, "tls_failure_details", &["tls_policy_id"]).await?;
        index(m, "tls_failure_details", &["domain_id", "day"]).await?;
        index(m, "tls_failure_details", &["result_type", "day"]).await?;
        index(m, "tls_failure_details", &["sending_mta_ip"]).await?;

        m.create_table(
            Table::create()
                .table("failure_reports")
                .col(big_pk_auto("id"))
                .col(big_integer("tenant_id"))
                .col(big_integer("domain_id"))
                .col(big_integer_null("raw_message_id"))
                .col(string_uniq("dedupe_key"))
                .col(string_null("org_name"))
                .col(string_null("feedback_type"))
                .col(string("reported_domain"))
                .col(string_null("source_ip"))
                .col(big_integer_null("arrival_ts"))
                .col(integer_null("day"))
                .col(string_null("auth_failure"))
                .col(text("fields"))
                .col(text("warnings"))
                .col(text("submitter"))
                .col(created_at())
                .foreign_key(&mut fk(
                    "failure_reports",
                    "tenant_id",
                    "tenants",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "failure_reports",
                    "domain_id",
                    "tenant_domains",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "failure_reports",
                    "raw_message_id",
                    "raw_messages",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        index(m, "failure_reports", &["domain_id", "day"]).await?;

        m.create_table(
            Table::create()
                .table("quarantine")
                .col(big_pk_auto("id"))
                .col(big_integer("raw_message_id"))
                .col(big_integer_null("tenant_id"))
                .col(string("reason"))
                .col(text("detail"))
                .col(text_null("part"))
                .col(integer("retry_count").default(0))
                .col(created_at())
                .col(timestamp_with_time_zone_null("resolved_at"))
                .foreign_key(&mut fk(
                    "quarantine",
                    "raw_message_id",
                    "raw_messages",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "quarantine",
                    "tenant_id",
                    "tenants",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        index(m, "quarantine", &["reason"]).await?;
        index(m, "quarantine", &["tenant_id"]).await?;
        index(m, "quarantine", &["raw_message_id"]).await?;

        m.create_table(
            Table::create()
                .table("ingest_runs")
                .col(big_pk_auto("id"))
                .col(string("kind"))
                .col(big_integer_null("mailbox_id"))
                .col(timestamp_with_time_zone("started_at").default(Expr::current_timestamp()))
                .col(timestamp_with_time_zone_null("finished_at"))
                .col(string("status"))
                .col(big_integer("messages").default(0))
                .col(big_integer("stored").default(0))
                .col(big_integer("duplicates").default(0))
                .col(big_integer("quarantined").default(0))
                .col(text("quarantine_reasons").default("{}"))
                .col(text_null("error"))
                .foreign_key(&mut fk(
                    "ingest_runs",
                    "mailbox_id",
                    "mailboxes",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        index(m, "ingest_runs", &["mailbox_id", "started_at"]).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "ingest_runs",
            "quarantine",
            "failure_reports",
            "tls_failure_details",
            "tls_policies",
            "tls_reports",
            "dmarc_records",
            "dmarc_reports",
            "mailbox_messages",
            "raw_messages",
            "mailboxes",
            "api_tokens",
            "staff_users",
            "tenant_domains",
            "tenants",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

async fn index(
    m: &SchemaManager<'_>,
    table: &'static str,
    cols: &[&'static str],
) -> Result<(), DbErr> {
    create_index(m, table, cols, false).await
}

async fn unique_index(
    m: &SchemaManager<'_>,
    table: &'static str,
    cols: &[&'static str],
) -> Result<(), DbErr> {
    create_index(m, table, cols, true).await
}

async fn create_index(
    m: &SchemaManager<'_>,
    table: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let name = format!("idx_{}_{}", table, cols.join("_"));
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for c in cols {
        stmt.col(*c);
    }
    if unique {
        stmt.unique();
    }
    m.create_index(stmt.take()).await
}
