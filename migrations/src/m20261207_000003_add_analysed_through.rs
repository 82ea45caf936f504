//! The analysis watermark of each domain: the last day whose analysis is done
//! (`analysed_through`, days since 1970-01-01). An analysis evaluates every day after it in
//! order, up to today; a report stored for a day at or before it moves it back, so that day
//! is judged again with the report. `NULL`: never analysed (a catch-up window applies).

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tenant_domains")
                .add_column(ColumnDef::new("analysed_through").integer().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tenant_domains")
                .drop_column("analysed_through")
                .to_owned(),
        )
        .await
    }
}
