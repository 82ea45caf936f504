//! Domain model of sealwatch: the vocabulary every other crate speaks.
//!
//! **API boundary.** Newtypes that can only be built valid ([`DomainName`], [`ReportId`]),
//! lenient protocol enums that keep unknown values as [`Other`](DkimResult::Other) strings
//! instead of dropping them, and the typed reports ([`AggregateReport`], [`TlsReport`],
//! [`FailureReport`], wrapped in [`Report`]). The reports serialize to the JSON shape that
//! `sealwatch parse --json` prints, which is a public contract.
//!
//! **Architecture invariant.** This crate does no IO and knows nothing about MIME, XML, JSON
//! parsing, databases, HTTP or async runtimes. It depends only on `serde`, `chrono` and
//! `thiserror`. Anything that needs the outside world lives in another crate and converts into
//! these types at its edge.

mod domain;
mod enums;
mod ip;
mod report;
mod time;

pub use domain::{DomainName, DomainNameError, ReportId, ReportIdError};
pub use enums::{
    Alignment, DiscoveryMethod, Disposition, DkimResult, DmarcResult, Leniency, OverrideType,
    PolicyAction, SpfResult, SpfScope, TlsPolicyType, TlsResultType,
};
pub use ip::MaybeIp;
pub use report::{
    AggregateRecord, AggregateReport, AuthResults, DkimAuthResult, FailureFormat, FailureReport,
    Identifiers, PolicyEvaluated, PolicyOverrideReason, PolicyPublished, Report, ReportKind,
    SpfAuthResult, Submitter, TlsFailureDetail, TlsPolicy, TlsReport,
};
pub use time::rfc3339;
