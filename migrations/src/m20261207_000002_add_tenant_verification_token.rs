//! A per-tenant domain-ownership token: a tenant proves it controls a domain it adds by
//! publishing `_sealwatch.<domain> TXT "sealwatch-verification=<token>"`. Nullable: the
//! token is made the first time a tenant adds a domain.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tenants")
                .add_column(ColumnDef::new("verification_token").string().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tenants")
                .drop_column("verification_token")
                .to_owned(),
        )
        .await
    }
}
