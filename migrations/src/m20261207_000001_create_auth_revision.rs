//! The authentication revision: one row whose counter is bumped whenever a token is revoked
//! or a tenant is deactivated. Every API process keeps a cache of verified tokens and
//! compares this counter every few seconds; a change drops its cache, so a revocation made
//! through one process takes effect in all of them within seconds.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("auth_revision")
                .col(integer("id").primary_key())
                .col(big_integer("revision").default(0))
                .col(
                    timestamp_with_time_zone("updated_at")
                        .default(Expr::current_timestamp())
                        .take(),
                )
                .take(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table("auth_revision")
                .columns(["id", "revision"])
                .values_panic([1.into(), 0i64.into()])
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("auth_revision").to_owned())
            .await
    }
}
