//! The database schema of sealwatch, as sea-orm migrations that run unchanged on SQLite
//! (the embedded default) and PostgreSQL (the scale-out engine).
//!
//! **API boundary.** [`Migrator`] lists every migration in order; `sealwatch migrate` and
//! the store's `migrate()` apply it. Migrations are append-only: a released migration is
//! never edited, a change is a new file `mYYYYMMDD_NNNNNN_<verb>_<noun>.rs`.
//!
//! **Architecture invariant.** Depends on `sea-orm-migration` only. It knows table shapes,
//! not the Rust types that fill them (those live in `sealwatch-store`).

pub use sea_orm_migration::prelude::*;

mod m20261130_000001_create_ingest_schema;
mod m20261130_000002_create_anomalies;
mod m20261130_000003_create_digests_audit_health;
mod m20261207_000001_create_auth_revision;
mod m20261207_000002_add_tenant_verification_token;
mod m20261207_000003_add_analysed_through;

/// All migrations, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261130_000001_create_ingest_schema::Migration),
            Box::new(m20261130_000002_create_anomalies::Migration),
            Box::new(m20261130_000003_create_digests_audit_health::Migration),
            Box::new(m20261207_000001_create_auth_revision::Migration),
            Box::new(m20261207_000002_add_tenant_verification_token::Migration),
            Box::new(m20261207_000003_add_analysed_through::Migration),
        ]
    }
}
