//! sea-orm entities, one module per table. Plain data; the repositories in this crate are
//! the only code that reads or writes them.

#![allow(missing_docs)]

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod tenant {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        pub active: bool,
        pub digest_recipients: String,
        pub digest_weekday: i16,
        pub digest_hour: i16,
        pub timezone: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// Domain-ownership token (`_sealwatch.<domain> TXT`), made on first use.
        pub verification_token: Option<String>,
    }
    no_relations!();
}

pub mod tenant_domain {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_domains")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: i64,
        #[sea_orm(unique)]
        pub domain: String,
        pub verification: String,
        pub verified_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub verification_detail: Option<String>,
        /// The last day whose analysis is done (days since 1970-01-01); `None`: never.
        pub analysed_through: Option<i32>,
    }
    no_relations!();
}

pub mod mailbox {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mailboxes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: Option<i64>,
        #[sea_orm(unique)]
        pub name: String,
        pub host: String,
        pub port: i32,
        pub tls_mode: String,
        pub username: String,
        pub password_env: Option<String>,
        pub password_secret: Option<String>,
        pub folder: String,
        pub after_action: String,
        pub after_folder: Option<String>,
        pub enabled: bool,
        pub uidvalidity: Option<i64>,
        pub last_uid: i64,
        pub last_poll_at: Option<DateTimeUtc>,
        pub last_status: Option<String>,
        pub last_error: Option<String>,
        pub consecutive_failures: i32,
        pub lease_owner: Option<String>,
        pub lease_until: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod raw_message {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "raw_messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub sha256: String,
        pub size: i64,
        pub source: String,
        pub mailbox_id: Option<i64>,
        pub origin: Option<String>,
        pub message_id: Option<String>,
        pub outcome: String,
        pub bytes: Vec<u8>,
        pub received_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod mailbox_message {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mailbox_messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub mailbox_id: i64,
        pub uidvalidity: i64,
        pub uid: i64,
        pub raw_message_id: i64,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod dmarc_report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dmarc_reports")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub raw_message_id: Option<i64>,
        #[sea_orm(unique)]
        pub dedupe_key: String,
        pub content_hash: String,
        pub org_name: String,
        pub reporter_email: Option<String>,
        pub report_id: String,
        pub policy_domain: String,
        pub begin_ts: i64,
        pub end_ts: i64,
        pub begin_day: i32,
        pub end_day: i32,
        pub message_count: i64,
        pub record_count: i32,
        pub adkim: Option<String>,
        pub aspf: Option<String>,
        pub p: Option<String>,
        pub sp: Option<String>,
        pub np: Option<String>,
        pub pct: Option<i16>,
        pub fo: Option<String>,
        pub testing: Option<bool>,
        pub discovery_method: Option<String>,
        pub xml_namespace: Option<String>,
        pub errors: String,
        pub warnings: String,
        pub submitter: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod dmarc_record {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dmarc_records")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub report_id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub day: i32,
        pub source_ip: String,
        pub count: i64,
        pub disposition: Option<String>,
        pub dkim_result: Option<String>,
        pub spf_result: Option<String>,
        pub header_from: Option<String>,
        pub envelope_from: Option<String>,
        pub envelope_to: Option<String>,
        pub reasons: Option<String>,
        pub dkim_auth: String,
        pub spf_auth: String,
    }
    no_relations!();
}

pub mod tls_report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tls_reports")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub raw_message_id: Option<i64>,
        #[sea_orm(unique)]
        pub dedupe_key: String,
        pub content_hash: String,
        pub org_name: String,
        pub contact_info: Option<String>,
        pub report_id: String,
        pub begin_ts: i64,
        pub end_ts: i64,
        pub begin_day: i32,
        pub end_day: i32,
        pub successful_sessions: i64,
        pub failed_sessions: i64,
        pub warnings: String,
        pub submitter: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod tls_policy {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tls_policies")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tls_report_id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub policy_type: String,
        pub policy_domain: Option<String>,
        pub policy_strings: String,
        pub mx_hosts: String,
        pub sts_mode: Option<String>,
        pub successful_sessions: i64,
        pub failed_sessions: i64,
    }
    no_relations!();
}

pub mod tls_failure_detail {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tls_failure_details")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tls_policy_id: i64,
        pub tls_report_id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub day: i32,
        pub result_type: String,
        pub sending_mta_ip: Option<String>,
        pub receiving_mx_hostname: Option<String>,
        pub receiving_mx_helo: Option<String>,
        pub receiving_ip: Option<String>,
        pub failed_sessions: i64,
        pub additional_information: Option<String>,
        pub failure_reason_code: Option<String>,
    }
    no_relations!();
}

pub mod failure_report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "failure_reports")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub raw_message_id: Option<i64>,
        #[sea_orm(unique)]
        pub dedupe_key: String,
        pub org_name: Option<String>,
        pub feedback_type: Option<String>,
        pub reported_domain: String,
        pub source_ip: Option<String>,
        pub arrival_ts: Option<i64>,
        pub day: Option<i32>,
        pub auth_failure: Option<String>,
        pub fields: String,
        pub warnings: String,
        pub submitter: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod quarantine {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quarantine")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub raw_message_id: i64,
        pub tenant_id: Option<i64>,
        pub reason: String,
        pub detail: String,
        pub part: Option<String>,
        pub retry_count: i32,
        pub created_at: DateTimeUtc,
        pub resolved_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod ingest_run {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ingest_runs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub mailbox_id: Option<i64>,
        pub started_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
        pub status: String,
        pub messages: i64,
        pub stored: i64,
        pub duplicates: i64,
        pub quarantined: i64,
        pub quarantine_reasons: String,
        pub error: Option<String>,
    }
    no_relations!();
}

pub mod anomaly {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "anomalies")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub kind: String,
        pub fingerprint: String,
        pub severity: String,
        pub severity_rank: i16,
        pub status: String,
        pub confidence: f64,
        pub window_start: i32,
        pub window_end: i32,
        pub first_seen_day: i32,
        pub last_seen_day: i32,
        pub summary: String,
        pub evidence: String,
        pub explanation: String,
        pub occurrences: i32,
        pub reopened: i32,
        pub assignee: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub resolved_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod anomaly_review {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "anomaly_reviews")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub anomaly_id: i64,
        pub action: String,
        pub from_status: String,
        pub to_status: String,
        pub note: Option<String>,
        pub assignee: Option<String>,
        pub actor: Option<String>,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod staff_user {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "staff_users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub email: String,
        pub name: String,
        pub role: String,
        pub active: bool,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod api_token {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        #[sea_orm(unique)]
        pub prefix: String,
        pub secret_hash: String,
        pub role: String,
        pub staff_user_id: Option<i64>,
        pub tenant_id: Option<i64>,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

/// One row (`id` = 1): bumped on every token revocation and tenant deactivation.
pub mod auth_revision {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_revision")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub revision: i64,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod digest {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "digests")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: i64,
        pub iso_week: String,
        pub status: String,
        pub subject: Option<String>,
        pub text_body: Option<String>,
        pub html_body: Option<String>,
        pub recipients: String,
        pub message_id: Option<String>,
        pub attempts: i32,
        pub last_error: Option<String>,
        pub claimed_by: Option<String>,
        pub claimed_until: Option<DateTimeUtc>,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub built_at: Option<DateTimeUtc>,
        pub sent_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod audit_log {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub actor: String,
        pub actor_token_id: Option<i64>,
        pub tenant_id: Option<i64>,
        pub action: String,
        pub entity: String,
        pub entity_id: Option<String>,
        pub before: Option<String>,
        pub after: Option<String>,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod health_check {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "health_checks")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: i64,
        pub domain_id: i64,
        pub score: i32,
        pub grade: String,
        pub report: String,
        pub checked_at: DateTimeUtc,
    }
    no_relations!();
}
