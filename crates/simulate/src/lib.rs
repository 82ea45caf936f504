//! Realistic DMARC aggregate and SMTP TLS report files and report emails, generated
//! deterministically from a seed — for benchmarks, tests and demo data.
//!
//! **API.** Building blocks, each usable on its own:
//! - [`SimRng`]: a seeded xoshiro256** generator; [`SimRng::derive`] gives independent
//!   streams per key path, so any single report can be produced on its own.
//! - [`providers()`] / [`provider`]: a catalogue of twelve reporters (Google, Microsoft,
//!   Yahoo, Mail.ru, Fastmail, GMX, Amazon SES, Mimecast, Comcast, Seznam, Zoho,
//!   Proofpoint) with their naming, packaging, XML layout and record habits, and the
//!   networks their MTAs send from ([`Cidr`]). The habits follow public sample reports;
//!   details no public source shows (some addresses, generator strings) are plausible
//!   stand-ins.
//! - [`DmarcAggregate`] → XML ([`DmarcAggregate::to_xml`], laid out by an [`XmlStyle`],
//!   values escaped by [`escape_xml`]); [`TlsRptReport`] → JSON
//!   ([`TlsRptReport::to_json`]).
//! - Packaging: [`Packaging::pack`], [`gzip`], [`gzip_zlib_body`], [`zip_single`],
//!   [`report_stem`]; [`ReportEmail`] writes a complete RFC 5322 report email (CRLF,
//!   base64 attachment in 76-column lines, `TLS-Report-*` headers when asked).
//! - [`Scenario`]: seeded monitored domains ([`DomainProfile`]: DMARC policy, sending
//!   services, MX hosts, MTA-STS mode, DANE) and, via [`Scenario::plans`], which provider
//!   reports on which domain each day — on its habitual days ([`Scenario::habit`]: big
//!   mailbox providers daily, gateways often on weekdays, small ones sporadically). Each
//!   [`ReportPlan`] renders to a report ([`Scenario::aggregate`],
//!   [`Scenario::tls_report`]), a packaged file ([`Scenario::aggregate_file`]) or the email
//!   its provider sends ([`Scenario::aggregate_email`], [`Scenario::tls_email`]). Every
//!   random choice comes from a stream derived from (seed, domain, provider, day), so any
//!   report can be produced on its own. A healthy scenario looks healthy: TLS failures in
//!   one report in thirty (one or two sessions), stable DMARC pass rates.
//! - Incidents ([`ScenarioConfig::incidents`]): [`Incident`] = an [`IncidentKind`] for one
//!   domain from one day (to an optional last day) — `CertificateExpired` on one MX,
//!   `ProviderMismatch`, `MtaStsBroken`, `LowRateDowngrade` from one network to a
//!   foreign receiver, `ReporterSilent`, `SpoofingCampaign`, `DaneBroken`, and
//!   `LegacyStarttls` (harmless steady noise: one MX host without STARTTLS). Their
//!   text form (`cert-expired:domain=0,mx=0,from=14`, see `Incident::from_str`) is what
//!   `sealwatch simulate --incident` reads. Incidents draw from streams of their own:
//!   the days before an incident are byte for byte those of the healthy scenario.
//!   [`Scenario::try_new`] checks that incidents fit the scenario; [`Scenario::describe`]
//!   says in one line what an incident does, where and when.
//! - [`write_scenario_emails`]: a whole scenario as report emails, one `.eml` per report
//!   in one directory per day, written one at a time ([`ScenarioStats`]); what
//!   `sealwatch import` and the analytics tests consume.
//! - [`Corpus`] / [`generate_corpus`]: N aggregate report files (about 60 % `.xml.gz`,
//!   30 % `.zip`, 10 % `.eml`) in batch directories of at most 2000 files, written one
//!   file at a time in constant memory. The first k files of a corpus are the same for
//!   every corpus size with the same seed and domain count.
//!
//! Same seed, same bytes: no clock, no environment and no global state is read.
//!
//! **Architecture invariants.** No network IO; the only IO is writing corpus and scenario
//! files where the caller says. This crate must not depend on the parser or the store: it
//! produces the inputs they are tested against, so sharing their code would hide their
//! bugs.

mod aggregate;
mod corpus;
mod email;
mod incident;
#[cfg(test)]
mod incident_tests;
mod net;
mod output;
mod package;
mod provider;
mod rng;
mod scenario;
mod sources;
mod tlsrpt;

use std::io;
use std::path::{Path, PathBuf};

pub use aggregate::{
    DkimAuth, DkimOrder, DmarcAggregate, PolicyField, PolicyPublished, Reason, Record, SpfAuth,
    XmlStyle, escape_xml,
};
pub use corpus::{
    Corpus, CorpusConfig, CorpusFile, CorpusStats, DirStats, FileFormat, batch_dir_name,
    generate_corpus,
};
pub use email::{Attachment, Container, ReportEmail, SubjectStyle, rfc5322_date};
pub use incident::{Incident, IncidentKind, SpecError, TlsResultType};
pub use net::{Cidr, CidrError};
pub use output::{ScenarioStats, write_scenario_emails};
pub use package::{Packaging, gzip, gzip_zlib_body, report_stem, zip_single};
pub use provider::{
    FileIdStyle, Habits, MxHostStyle, PROVIDERS, Provider, ReportIdStyle, TlsHabits,
    TlsReportIdStyle, provider, providers,
};
pub use rng::{SimRng, key_of, mix64};
pub use scenario::{
    DomainProfile, Plans, RenderedReport, ReportPlan, ReportingHabit, Scenario, ScenarioConfig,
};
pub use sources::{
    EnvelopeStyle, FORWARDERS, SERVICES, SPOOFERS, SendingService, Signer, aligned, fill_pattern,
    org_domain,
};
pub use tlsrpt::{MxHost, TlsRptFailure, TlsRptPolicy, TlsRptReport};

/// Why generating or writing failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Writing a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Compressing a payload failed.
    #[error("{what}: {source}")]
    Compress {
        what: &'static str,
        source: io::Error,
    },
    /// Building a zip archive failed.
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// The configuration cannot be carried out.
    #[error("{0}")]
    Config(String),
}

impl SimError {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> SimError + '_ {
        move |source| SimError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn io(what: &'static str) -> impl FnOnce(io::Error) -> SimError {
        move |source| SimError::Compress { what, source }
    }
}
