//! Retrying a quarantined input: its raw bytes are parsed and routed again (after a parser
//! fix, or once the domain it was for has been onboarded) and whatever now works is stored.

use sealwatch_parser::Parser;
use sealwatch_store::{MessageSource, Scope, Store, WriteOutcome};

use crate::{Result, Router, prepare};

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOutcome {
    /// The raw message the entry belonged to.
    pub raw_message_id: i64,
    /// Reports stored, duplicates, and what is quarantined again (with reasons).
    pub outcome: WriteOutcome,
}

/// Parses and routes a quarantined message again and stores the result (see
/// [`Store::reprocess_quarantined`]). The entry is looked up within `scope`: another
/// tenant's entry is "not found". A message from a tenant's own mailbox is routed to that
/// tenant's domains only, as the poller did.
pub async fn retry_quarantined(
    store: &Store,
    parser: &Parser,
    scope: Scope,
    quarantine_id: i64,
) -> Result<RetryOutcome> {
    let (entry, bytes) = store.quarantine_get(scope, quarantine_id).await?;
    let only_tenant = store.raw_message_tenant(entry.raw_message_id).await?;
    let router = Router::new(store.routing_entries().await?);
    let raw_message_id = entry.raw_message_id;
    let prepared = prepare(
        parser,
        &router,
        bytes,
        None,
        MessageSource::File {
            origin: format!("quarantine retry of {quarantine_id}"),
        },
        only_tenant,
    );
    let outcome = store
        .reprocess_quarantined(raw_message_id, prepared.message.items)
        .await?;
    Ok(RetryOutcome {
        raw_message_id,
        outcome,
    })
}
