//! The result of a check: findings, the score, and the records as observed.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sealwatch_model::DomainName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::record::dmarc::Policy;

/// The area a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Mx,
    Spf,
    Dmarc,
    Dkim,
    MtaSts,
    TlsRpt,
    Bimi,
    Blocklist,
}

impl Category {
    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Mx => "MX",
            Self::Spf => "SPF",
            Self::Dmarc => "DMARC",
            Self::Dkim => "DKIM",
            Self::MtaSts => "MTA-STS",
            Self::TlsRpt => "TLS-RPT",
            Self::Bimi => "BIMI",
            Self::Blocklist => "Blocklists",
        }
    }
}

macro_rules! check_ids {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal in $cat:ident, )*) => {
        /// Stable identifier of a finding (kebab-case on the wire; never renamed once released).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum CheckId {
            $( $(#[$doc])* $variant, )*
        }

        impl CheckId {
            /// Every check id, in report order.
            pub const ALL: &'static [CheckId] = &[$(CheckId::$variant),*];

            /// The kebab-case id.
            pub fn as_str(self) -> &'static str {
                match self { $(CheckId::$variant => $id,)* }
            }

            /// The area it belongs to.
            pub fn category(self) -> Category {
                match self { $(CheckId::$variant => Category::$cat,)* }
            }

            /// The id for a kebab-case string.
            pub fn from_id(id: &str) -> Option<Self> {
                match id { $($id => Some(CheckId::$variant),)* _ => None }
            }
        }
    };
}

check_ids! {
    /// The domain does not exist (NXDOMAIN).
    DomainNotFound = "domain-not-found" in Mx,
    MxOk = "mx-ok" in Mx,
    MxMissing = "mx-missing" in Mx,
    MxNull = "mx-null" in Mx,
    MxNullMixed = "mx-null-mixed" in Mx,
    MxHostUnresolvable = "mx-host-unresolvable" in Mx,
    MxHostIpLiteral = "mx-host-ip-literal" in Mx,
    MxCouldNotCheck = "mx-could-not-check" in Mx,
    SpfOk = "spf-ok" in Spf,
    SpfMissing = "spf-missing" in Spf,
    SpfMultiple = "spf-multiple-records" in Spf,
    SpfSyntax = "spf-syntax" in Spf,
    SpfTooManyLookups = "spf-too-many-lookups" in Spf,
    SpfTooManyVoidLookups = "spf-too-many-void-lookups" in Spf,
    SpfIncludeMissing = "spf-include-missing" in Spf,
    SpfIncludeLoop = "spf-include-loop" in Spf,
    SpfPassAll = "spf-pass-all" in Spf,
    SpfNeutralAll = "spf-neutral-all" in Spf,
    SpfSoftFailAll = "spf-softfail-all" in Spf,
    SpfNoAll = "spf-no-all" in Spf,
    SpfPtr = "spf-ptr-mechanism" in Spf,
    SpfCouldNotCheck = "spf-could-not-check" in Spf,
    DmarcOk = "dmarc-ok" in Dmarc,
    DmarcMissing = "dmarc-missing" in Dmarc,
    DmarcMultiple = "dmarc-multiple-records" in Dmarc,
    DmarcSyntax = "dmarc-syntax" in Dmarc,
    DmarcInherited = "dmarc-inherited" in Dmarc,
    DmarcPolicyNone = "dmarc-policy-none" in Dmarc,
    DmarcWeakerSubdomainPolicy = "dmarc-weaker-subdomain-policy" in Dmarc,
    DmarcPartialPct = "dmarc-partial-pct" in Dmarc,
    DmarcTestMode = "dmarc-test-mode" in Dmarc,
    DmarcNoRua = "dmarc-no-rua" in Dmarc,
    DmarcRuaNotUs = "dmarc-rua-not-us" in Dmarc,
    DmarcRuaUnauthorised = "dmarc-rua-unauthorised" in Dmarc,
    DmarcCouldNotCheck = "dmarc-could-not-check" in Dmarc,
    DkimOk = "dkim-ok" in Dkim,
    DkimNotFound = "dkim-not-found" in Dkim,
    DkimKeyWeak = "dkim-key-weak" in Dkim,
    DkimKeyRevoked = "dkim-key-revoked" in Dkim,
    DkimTestMode = "dkim-test-mode" in Dkim,
    DkimInvalid = "dkim-invalid" in Dkim,
    DkimCouldNotCheck = "dkim-could-not-check" in Dkim,
    MtaStsOk = "mta-sts-ok" in MtaSts,
    MtaStsMissing = "mta-sts-missing" in MtaSts,
    MtaStsNotApplicable = "mta-sts-not-applicable" in MtaSts,
    MtaStsMultiple = "mta-sts-multiple-records" in MtaSts,
    MtaStsTxtInvalid = "mta-sts-txt-invalid" in MtaSts,
    MtaStsPolicyUnavailable = "mta-sts-policy-unavailable" in MtaSts,
    MtaStsCertificateInvalid = "mta-sts-certificate-invalid" in MtaSts,
    MtaStsPolicyInvalid = "mta-sts-policy-invalid" in MtaSts,
    MtaStsContentType = "mta-sts-content-type" in MtaSts,
    MtaStsModeTesting = "mta-sts-mode-testing" in MtaSts,
    MtaStsModeNone = "mta-sts-mode-none" in MtaSts,
    MtaStsMxMismatch = "mta-sts-mx-mismatch" in MtaSts,
    MtaStsMaxAgeShort = "mta-sts-max-age-short" in MtaSts,
    MtaStsCouldNotCheck = "mta-sts-could-not-check" in MtaSts,
    TlsRptOk = "tls-rpt-ok" in TlsRpt,
    TlsRptMissing = "tls-rpt-missing" in TlsRpt,
    TlsRptNotApplicable = "tls-rpt-not-applicable" in TlsRpt,
    TlsRptMultiple = "tls-rpt-multiple-records" in TlsRpt,
    TlsRptInvalid = "tls-rpt-invalid" in TlsRpt,
    TlsRptNotUs = "tls-rpt-not-us" in TlsRpt,
    TlsRptCouldNotCheck = "tls-rpt-could-not-check" in TlsRpt,
    BimiOk = "bimi-ok" in Bimi,
    BimiMissing = "bimi-missing" in Bimi,
    BimiDeclined = "bimi-declined" in Bimi,
    BimiInvalid = "bimi-invalid" in Bimi,
    BimiNoCertificate = "bimi-no-certificate" in Bimi,
    BimiDmarcNotEnforced = "bimi-dmarc-not-enforced" in Bimi,
    BimiCouldNotCheck = "bimi-could-not-check" in Bimi,
    BlocklistClean = "blocklist-clean" in Blocklist,
    BlocklistMxListed = "blocklist-mx-listed" in Blocklist,
    BlocklistDomainListed = "blocklist-domain-listed" in Blocklist,
    BlocklistUnusable = "blocklist-unusable" in Blocklist,
    BlocklistCouldNotCheck = "blocklist-could-not-check" in Blocklist,
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CheckId::from_id(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown check id {s:?}")))
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Checked and right.
    Ok,
    /// Worth knowing; nothing to fix.
    Info,
    /// Should be fixed: weaker protection, lost reports, or a future breakage.
    Warning,
    /// Broken now: mail is lost, spoofable, or a protection silently does not apply.
    Critical,
    /// Could not be checked (a DNS or network failure); never means "missing".
    Unknown,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Unknown => "unknown",
        }
    }

    /// Points this severity costs in [`score`].
    pub fn penalty(self) -> u32 {
        match self {
            Self::Critical => 30,
            Self::Warning => 10,
            Self::Unknown => 5,
            Self::Ok | Self::Info => 0,
        }
    }

    /// Order for display: critical first, ok last.
    pub fn rank(self) -> u8 {
        match self {
            Self::Critical => 0,
            Self::Warning => 1,
            Self::Unknown => 2,
            Self::Info => 3,
            Self::Ok => 4,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record (or file) to publish instead of what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fix {
    /// A DNS record: owner name (no trailing dot), type, and the value as it goes in the zone
    /// (TXT values unquoted).
    Dns {
        name: String,
        rtype: String,
        value: String,
    },
    /// A file served over HTTPS (the MTA-STS policy).
    File { url: String, content: String },
}

impl Fix {
    pub(crate) fn txt(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Dns {
            name: name.into(),
            rtype: "TXT".to_owned(),
            value: value.into(),
        }
    }
}

/// Zone-file form (`name. IN TXT "..."`, long TXT values split into 255-byte strings), or
/// the URL followed by the file.
impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns { name, rtype, value } if rtype == "TXT" => {
                write!(f, "{name}. IN TXT ")?;
                let chunks = split_txt(value);
                for (i, c) in chunks.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "\"{}\"", c.replace('\\', "\\\\").replace('"', "\\\""))?;
                }
                Ok(())
            }
            Self::Dns { name, rtype, value } => write!(f, "{name}. IN {rtype} {value}"),
            Self::File { url, content } => write!(f, "{url}\n{}", content.replace('\r', "")),
        }
    }
}

fn split_txt(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while rest.len() > 255 {
        let mut cut = 255;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

/// One result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable kebab-case id, e.g. `spf-too-many-lookups`.
    pub check: CheckId,
    pub category: Category,
    pub severity: Severity,
    /// What the finding is about: a DNS name, a host, a URL.
    pub subject: String,
    /// The record (or file) as found, when there is one.
    pub found: Option<String>,
    /// One line.
    pub summary: String,
    /// What is wrong and why it matters, in plain English.
    pub explanation: String,
    /// What to publish instead, when it can be computed.
    pub fixes: Vec<Fix>,
}

impl Finding {
    pub(crate) fn new(
        check: CheckId,
        severity: Severity,
        subject: impl Into<String>,
        summary: impl Into<String>,
        explanation: impl Into<String>,
    ) -> Self {
        Self {
            check,
            category: check.category(),
            severity,
            subject: subject.into(),
            found: None,
            summary: summary.into(),
            explanation: explanation.into(),
            fixes: Vec::new(),
        }
    }

    pub(crate) fn found(mut self, record: impl Into<String>) -> Self {
        self.found = Some(record.into());
        self
    }

    pub(crate) fn fix(mut self, fix: Fix) -> Self {
        self.fixes.push(fix);
        self
    }
}

/// What a DNS query (or the policy fetch) returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "values", rename_all = "kebab-case")]
pub enum Observed {
    /// The records, sorted.
    Found(Vec<String>),
    /// The name or type does not exist (NXDOMAIN or no data; for the policy, a 404).
    Absent,
    /// The query failed: nothing is known (the diff ignores it).
    Failed(String),
}

/// One observed record set, for "what changed since last time".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRecord {
    /// Owner name (no trailing dot), or the policy URL.
    pub name: String,
    /// `MX`, `TXT`, `A`, `AAAA`, or `POLICY` for the MTA-STS policy file.
    pub rtype: String,
    pub observed: Observed,
}

/// An MX host as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxHost {
    pub preference: u16,
    pub host: String,
    pub addresses: Vec<std::net::IpAddr>,
}

/// The MTA-STS posture, which decides how to read TLS reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MtaStsState {
    Enforce,
    Testing,
    None,
    Absent,
    /// A record is published but the policy is unusable (unreachable, bad certificate,
    /// invalid): senders act as if there were none.
    Broken,
    NotApplicable,
    Unknown,
}

/// Whether TLS reports are requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsRptState {
    Present,
    Absent,
    Broken,
    NotApplicable,
    Unknown,
}

/// A letter for the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    E,
    F,
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Everything a check found about one domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthReport {
    #[serde(deserialize_with = "domain_name")]
    pub domain: DomainName,
    pub checked_at: DateTime<Utc>,
    /// 0–100, see [`score`].
    pub score: u8,
    pub grade: Grade,
    /// False when some check could not be done (a finding with severity `unknown`).
    pub complete: bool,
    /// `p=` of the DMARC record that applies, when there is one.
    pub dmarc_policy: Option<Policy>,
    pub mta_sts: MtaStsState,
    pub tls_rpt: TlsRptState,
    pub mx: Vec<MxHost>,
    /// Ordered by category, then severity (worst first).
    pub findings: Vec<Finding>,
    /// The records the findings are based on, sorted by name and type.
    pub records: Vec<ObservedRecord>,
}

fn domain_name<'de, D: Deserializer<'de>>(d: D) -> Result<DomainName, D::Error> {
    let s = String::deserialize(d)?;
    DomainName::parse(&s).map_err(|e| serde::de::Error::custom(format!("domain {s:?}: {e}")))
}

/// The findings that mean a published MTA-STS policy does not work: senders cannot fetch
/// it (certificate, HTTP or connection problem), cannot use it (invalid policy or TXT
/// record), or it does not cover the real MX hosts.
pub const STS_POLICY_BROKEN: &[CheckId] = &[
    CheckId::MtaStsCertificateInvalid,
    CheckId::MtaStsPolicyUnavailable,
    CheckId::MtaStsPolicyInvalid,
    CheckId::MtaStsMxMismatch,
    CheckId::MtaStsTxtInvalid,
    CheckId::MtaStsMultiple,
];

/// What one report says about the domain's MTA-STS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsPolicyHealth<'a> {
    /// A published policy does not work; the findings, worst first.
    Broken(Vec<&'a Finding>),
    /// Nothing is broken: the policy works, or MTA-STS is not published (or not applicable).
    Healthy,
    /// The check could not tell (a DNS or network failure on our side).
    Unknown,
}

impl HealthReport {
    /// Whether the MTA-STS policy is broken, healthy, or could not be checked. Pure.
    pub fn sts_policy_health(&self) -> StsPolicyHealth<'_> {
        let mut broken: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| STS_POLICY_BROKEN.contains(&f.check))
            .filter(|f| matches!(f.severity, Severity::Warning | Severity::Critical))
            .collect();
        if !broken.is_empty() {
            broken.sort_by_key(|f| f.severity.rank());
            return StsPolicyHealth::Broken(broken);
        }
        if self.mta_sts == MtaStsState::Unknown || self.has(CheckId::MtaStsCouldNotCheck) {
            return StsPolicyHealth::Unknown;
        }
        StsPolicyHealth::Healthy
    }

    /// The MTA-STS mode this run read from the published policy, when it could read one.
    pub fn sts_mode(&self) -> Option<crate::record::mtasts::StsMode> {
        use crate::record::mtasts::StsMode;
        match self.mta_sts {
            MtaStsState::Enforce => Some(StsMode::Enforce),
            MtaStsState::Testing => Some(StsMode::Testing),
            MtaStsState::None => Some(StsMode::None),
            MtaStsState::Absent
            | MtaStsState::Broken
            | MtaStsState::NotApplicable
            | MtaStsState::Unknown => None,
        }
    }

    /// Findings with this id.
    pub fn findings_for(&self, check: CheckId) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.check == check)
    }

    /// True when a finding with this id exists.
    pub fn has(&self, check: CheckId) -> bool {
        self.findings_for(check).next().is_some()
    }
}

/// The score of a set of findings: 100 minus a penalty for every distinct check id at its
/// worst severity — critical 30, warning 10, unknown ("could not check") 5, info and ok 0 —
/// never below 0. Counting each id once keeps a problem repeated on several hosts or
/// selectors from sinking the score on its own. Pure: same findings, same score.
pub fn score(findings: &[Finding]) -> u8 {
    let mut worst: BTreeMap<CheckId, u32> = BTreeMap::new();
    for f in findings {
        let p = f.severity.penalty();
        let slot = worst.entry(f.check).or_insert(0);
        *slot = (*slot).max(p);
    }
    let total: u32 = worst.values().sum();
    u8::try_from(100u32.saturating_sub(total)).unwrap_or(0)
}

/// The grade of a score: A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, E ≥ 50, F below. One critical
/// problem (70) is at best a C; one warning (90) keeps an A.
pub fn grade(score: u8) -> Grade {
    match score {
        90.. => Grade::A,
        80..=89 => Grade::B,
        70..=79 => Grade::C,
        60..=69 => Grade::D,
        50..=59 => Grade::E,
        _ => Grade::F,
    }
}

/// One difference between two reports of the same domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A record set exists now that did not before.
    RecordAppeared {
        name: String,
        rtype: String,
        after: Vec<String>,
    },
    /// A record set is gone.
    RecordVanished {
        name: String,
        rtype: String,
        before: Vec<String>,
    },
    /// A record set has different values.
    RecordChanged {
        name: String,
        rtype: String,
        before: Vec<String>,
        after: Vec<String>,
    },
    /// The MTA-STS policy file changed but the `_mta-sts` id did not: senders that cached the
    /// old policy keep using it until it expires.
    StsPolicyChangedWithoutNewId {
        url: String,
    },
    /// A warning or critical problem that was not there before.
    ProblemAppeared {
        check: CheckId,
        severity: Severity,
        subject: String,
    },
    /// A warning or critical problem that is gone.
    ProblemResolved {
        check: CheckId,
        subject: String,
    },
    ScoreChanged {
        before: u8,
        after: u8,
    },
}

impl Change {
    /// One plain-English sentence, e.g. "TXT _dmarc.example.com changed from
    /// \"v=DMARC1; p=none\" to \"v=DMARC1; p=reject\"".
    pub fn describe(&self) -> String {
        let values = |v: &[String]| {
            v.iter()
                .map(|x| format!("\"{}\"", x.replace('\n', "; ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::RecordAppeared { name, rtype, after } if rtype == "POLICY" => {
                format!("the MTA-STS policy at {name} appeared: {}", values(after))
            }
            Self::RecordVanished { name, rtype, .. } if rtype == "POLICY" => {
                format!("the MTA-STS policy at {name} vanished")
            }
            Self::RecordChanged {
                name,
                rtype,
                before,
                after,
            } if rtype == "POLICY" => format!(
                "the MTA-STS policy at {name} changed from {} to {}",
                values(before),
                values(after)
            ),
            Self::RecordAppeared { name, rtype, after } => {
                format!("{rtype} {name} appeared: {}", values(after))
            }
            Self::RecordVanished {
                name,
                rtype,
                before,
            } => format!("{rtype} {name} vanished (was {})", values(before)),
            Self::RecordChanged {
                name,
                rtype,
                before,
                after,
            } => format!(
                "{rtype} {name} changed from {} to {}",
                values(before),
                values(after)
            ),
            Self::StsPolicyChangedWithoutNewId { url } => format!(
                "the MTA-STS policy at {url} changed but the id= of the _mta-sts record did not: \
                 senders keep the cached policy until it expires"
            ),
            Self::ProblemAppeared {
                check,
                severity,
                subject,
            } => format!("new {severity} problem: {check} ({subject})"),
            Self::ProblemResolved { check, subject } => {
                format!("problem resolved: {check} ({subject})")
            }
            Self::ScoreChanged { before, after } => {
                format!("score changed from {before} to {after}")
            }
        }
    }
}

/// What changed from `previous` to `current` (pure). Record sets that could not be looked up
/// in either run are skipped: a failed lookup is not a vanished record, and a problem with a
/// record that could not be read now is not a resolved one.
pub fn diff(previous: &HealthReport, current: &HealthReport) -> Vec<Change> {
    let index = |r: &HealthReport| -> BTreeMap<(String, String), Observed> {
        r.records
            .iter()
            .map(|o| ((o.name.clone(), o.rtype.clone()), o.observed.clone()))
            .collect()
    };
    let (before, after) = (index(previous), index(current));
    let mut changes = Vec::new();
    let mut keys: Vec<&(String, String)> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut policy_changed = None;
    let mut sts_txt_changed = false;
    for key in keys {
        let (name, rtype) = (key.0.clone(), key.1.clone());
        let old = before.get(key).unwrap_or(&Observed::Absent);
        let new = after.get(key).unwrap_or(&Observed::Absent);
        let change = match (old, new) {
            (Observed::Failed(_), _) | (_, Observed::Failed(_)) => None,
            (Observed::Absent, Observed::Found(v)) => Some(Change::RecordAppeared {
                name: name.clone(),
                rtype: rtype.clone(),
                after: v.clone(),
            }),
            (Observed::Found(v), Observed::Absent) => Some(Change::RecordVanished {
                name: name.clone(),
                rtype: rtype.clone(),
                before: v.clone(),
            }),
            (Observed::Found(a), Observed::Found(b)) if a != b => Some(Change::RecordChanged {
                name: name.clone(),
                rtype: rtype.clone(),
                before: a.clone(),
                after: b.clone(),
            }),
            _ => None,
        };
        if let Some(c) = change {
            if rtype == "POLICY" && matches!(c, Change::RecordChanged { .. }) {
                policy_changed = Some(name.clone());
            }
            if rtype == "TXT" && name.starts_with("_mta-sts.") {
                sts_txt_changed = true;
            }
            changes.push(c);
        }
    }
    if let Some(url) = policy_changed
        && !sts_txt_changed
    {
        changes.push(Change::StsPolicyChangedWithoutNewId { url });
    }
    let problems = |r: &HealthReport| -> BTreeMap<(CheckId, String), Severity> {
        r.findings
            .iter()
            .filter(|f| matches!(f.severity, Severity::Warning | Severity::Critical))
            .map(|f| ((f.check, f.subject.clone()), f.severity))
            .collect()
    };
    let (old_p, new_p) = (problems(previous), problems(current));
    for ((check, subject), severity) in &new_p {
        if !old_p.contains_key(&(*check, subject.clone())) {
            changes.push(Change::ProblemAppeared {
                check: *check,
                severity: *severity,
                subject: subject.clone(),
            });
        }
    }
    // A problem about a record (or policy file) that could not be read this time is not
    // resolved: nothing is known about it.
    let unreadable = |subject: &str| {
        current
            .records
            .iter()
            .any(|r| r.name == subject && matches!(r.observed, Observed::Failed(_)))
    };
    for (check, subject) in old_p.keys() {
        if !new_p.contains_key(&(*check, subject.clone())) && !unreadable(subject) {
            changes.push(Change::ProblemResolved {
                check: *check,
                subject: subject.clone(),
            });
        }
    }
    if previous.score != current.score {
        changes.push(Change::ScoreChanged {
            before: previous.score,
            after: current.score,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(check: CheckId, severity: Severity) -> Finding {
        Finding::new(check, severity, "x.test", "s", "e")
    }

    #[test]
    fn check_ids_are_unique_kebab_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for id in CheckId::ALL {
            let s = id.as_str();
            assert!(seen.insert(s), "duplicate id {s}");
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{s} is not kebab-case"
            );
            assert_eq!(CheckId::from_id(s), Some(*id));
        }
    }

    #[test]
    fn scoring_counts_each_check_once_at_its_worst() {
        assert_eq!(score(&[]), 100);
        let f = vec![
            finding(CheckId::SpfOk, Severity::Ok),
            finding(CheckId::BimiMissing, Severity::Info),
        ];
        assert_eq!(score(&f), 100);
        let f = vec![
            finding(CheckId::MxHostUnresolvable, Severity::Critical),
            finding(CheckId::MxHostUnresolvable, Severity::Critical),
            finding(CheckId::DmarcPolicyNone, Severity::Warning),
            finding(CheckId::DkimCouldNotCheck, Severity::Unknown),
        ];
        assert_eq!(score(&f), 55);
        let f: Vec<Finding> = CheckId::ALL
            .iter()
            .map(|c| finding(*c, Severity::Critical))
            .collect();
        assert_eq!(score(&f), 0);
    }

    #[test]
    fn grades_follow_the_score() {
        assert_eq!(grade(100), Grade::A);
        assert_eq!(grade(90), Grade::A);
        assert_eq!(grade(89), Grade::B);
        assert_eq!(grade(70), Grade::C);
        assert_eq!(grade(60), Grade::D);
        assert_eq!(grade(50), Grade::E);
        assert_eq!(grade(0), Grade::F);
    }

    #[test]
    fn fixes_render_as_zone_lines() {
        let f = Fix::txt("_dmarc.x.test", "v=DMARC1; p=reject");
        assert_eq!(
            f.to_string(),
            "_dmarc.x.test. IN TXT \"v=DMARC1; p=reject\""
        );
        let long = Fix::txt("k._domainkey.x.test", "a".repeat(300));
        assert_eq!(long.to_string().matches('"').count(), 4);
    }

    fn report(records: Vec<(&str, &str, Observed)>, findings: Vec<Finding>) -> HealthReport {
        let s = score(&findings);
        HealthReport {
            domain: DomainName::parse("x.test").expect("valid"),
            checked_at: DateTime::<Utc>::UNIX_EPOCH,
            score: s,
            grade: grade(s),
            complete: true,
            dmarc_policy: None,
            mta_sts: MtaStsState::Absent,
            tls_rpt: TlsRptState::Absent,
            mx: Vec::new(),
            findings,
            records: records
                .into_iter()
                .map(|(n, t, o)| ObservedRecord {
                    name: n.to_owned(),
                    rtype: t.to_owned(),
                    observed: o,
                })
                .collect(),
        }
    }

    fn found(v: &str) -> Observed {
        Observed::Found(vec![v.to_owned()])
    }

    #[test]
    fn diff_reports_appeared_vanished_and_changed_records() {
        let before = report(
            vec![
                ("_dmarc.x.test", "TXT", found("v=DMARC1; p=none")),
                (
                    "_smtp._tls.x.test",
                    "TXT",
                    found("v=TLSRPTv1; rua=mailto:a@b.test"),
                ),
                ("_mta-sts.x.test", "TXT", Observed::Absent),
                ("x.test", "MX", Observed::Failed("timeout".into())),
            ],
            vec![finding(CheckId::DmarcPolicyNone, Severity::Warning)],
        );
        let after = report(
            vec![
                ("_dmarc.x.test", "TXT", found("v=DMARC1; p=reject")),
                ("_smtp._tls.x.test", "TXT", Observed::Absent),
                ("_mta-sts.x.test", "TXT", found("v=STSv1; id=1")),
                ("x.test", "MX", found("10 mx.x.test")),
            ],
            vec![finding(CheckId::TlsRptMissing, Severity::Warning)],
        );
        let changes = diff(&before, &after);
        assert!(changes.contains(&Change::RecordChanged {
            name: "_dmarc.x.test".into(),
            rtype: "TXT".into(),
            before: vec!["v=DMARC1; p=none".into()],
            after: vec!["v=DMARC1; p=reject".into()],
        }));
        assert!(changes.contains(&Change::RecordVanished {
            name: "_smtp._tls.x.test".into(),
            rtype: "TXT".into(),
            before: vec!["v=TLSRPTv1; rua=mailto:a@b.test".into()],
        }));
        assert!(changes.contains(&Change::RecordAppeared {
            name: "_mta-sts.x.test".into(),
            rtype: "TXT".into(),
            after: vec!["v=STSv1; id=1".into()],
        }));
        // a failed lookup is not a change
        assert!(
            !changes
                .iter()
                .any(|c| matches!(c, Change::RecordAppeared { name, .. } if name == "x.test"))
        );
        assert!(changes.contains(&Change::ProblemAppeared {
            check: CheckId::TlsRptMissing,
            severity: Severity::Warning,
            subject: "x.test".into(),
        }));
        assert!(changes.contains(&Change::ProblemResolved {
            check: CheckId::DmarcPolicyNone,
            subject: "x.test".into(),
        }));
        assert_eq!(diff(&after, &after), Vec::new());
    }

    fn full_report() -> HealthReport {
        let mut r = report(
            vec![
                ("_dmarc.x.test", "TXT", found("v=DMARC1; p=reject")),
                ("x.test", "MX", Observed::Failed("timeout".into())),
                (
                    "https://mta-sts.x.test/.well-known/mta-sts.txt",
                    "POLICY",
                    Observed::Absent,
                ),
            ],
            vec![
                finding(CheckId::SpfOk, Severity::Ok),
                Finding::new(
                    CheckId::MtaStsMxMismatch,
                    Severity::Critical,
                    "https://mta-sts.x.test/.well-known/mta-sts.txt",
                    "the policy does not cover MX host mx2.x.test",
                    "In enforce mode, senders refuse to deliver.",
                )
                .found("version: STSv1\nmode: enforce")
                .fix(Fix::File {
                    url: "https://mta-sts.x.test/.well-known/mta-sts.txt".into(),
                    content: "version: STSv1\n".into(),
                })
                .fix(Fix::txt("_mta-sts.x.test", "v=STSv1; id=2")),
            ],
        );
        r.dmarc_policy = Some(Policy::Reject);
        r.mta_sts = MtaStsState::Enforce;
        r.mx = vec![MxHost {
            preference: 10,
            host: "mx1.x.test".into(),
            addresses: vec![
                "192.0.2.1".parse().expect("ip"),
                "2001:db8::1".parse().expect("ip"),
            ],
        }];
        r
    }

    #[test]
    fn a_report_reads_back_from_its_json() {
        let r = full_report();
        let json = serde_json::to_string(&r).expect("serialise");
        let back: HealthReport = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back.domain, r.domain);
        assert_eq!(back.checked_at, r.checked_at);
        assert_eq!((back.score, back.grade), (r.score, r.grade));
        assert_eq!(back.dmarc_policy, Some(Policy::Reject));
        assert_eq!(back.mta_sts, MtaStsState::Enforce);
        assert_eq!(back.mx, r.mx);
        assert_eq!(back.findings, r.findings);
        assert_eq!(back.records, r.records);
        // the same JSON again, and nothing differs between the two
        assert_eq!(serde_json::to_string(&back).expect("serialise"), json);
        assert_eq!(diff(&r, &back), Vec::new());
        // changes read back too (the digest stores or passes them as JSON)
        let changes = vec![
            Change::ScoreChanged {
                before: 1,
                after: 2,
            },
            Change::ProblemAppeared {
                check: CheckId::MtaStsMxMismatch,
                severity: Severity::Critical,
                subject: "u".into(),
            },
        ];
        let json = serde_json::to_string(&changes).expect("serialise");
        let back: Vec<Change> = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, changes);
    }

    #[test]
    fn unknown_check_ids_and_bad_domains_are_rejected_when_reading() {
        let r = full_report();
        let json = serde_json::to_string(&r).expect("serialise");
        let bad_id = json.replace("\"spf-ok\"", "\"no-such-check\"");
        let err = serde_json::from_str::<HealthReport>(&bad_id).expect_err("unknown id");
        assert!(err.to_string().contains("no-such-check"), "{err}");
        let bad_domain = json.replace("\"domain\":\"x.test\"", "\"domain\":\"a b\"");
        assert!(serde_json::from_str::<HealthReport>(&bad_domain).is_err());
    }

    #[test]
    fn sts_policy_health_follows_the_findings() {
        let r = full_report();
        match r.sts_policy_health() {
            StsPolicyHealth::Broken(f) => {
                assert_eq!(f.len(), 1);
                assert_eq!(f[0].check, CheckId::MtaStsMxMismatch);
            }
            other => panic!("expected broken, got {other:?}"),
        }
        assert_eq!(r.sts_mode(), Some(crate::record::mtasts::StsMode::Enforce));
        let mut ok = report(vec![], vec![finding(CheckId::MtaStsOk, Severity::Ok)]);
        ok.mta_sts = MtaStsState::Enforce;
        assert_eq!(ok.sts_policy_health(), StsPolicyHealth::Healthy);
        // testing mode and a short max_age are weaknesses, not a broken policy
        let mut weak = report(
            vec![],
            vec![
                finding(CheckId::MtaStsModeTesting, Severity::Warning),
                finding(CheckId::MtaStsMaxAgeShort, Severity::Warning),
            ],
        );
        weak.mta_sts = MtaStsState::Testing;
        assert_eq!(weak.sts_policy_health(), StsPolicyHealth::Healthy);
        // not published at all: nothing is broken
        let absent = report(
            vec![],
            vec![finding(CheckId::MtaStsMissing, Severity::Warning)],
        );
        assert_eq!(absent.sts_policy_health(), StsPolicyHealth::Healthy);
        assert_eq!(absent.sts_mode(), None);
        // a failed lookup says nothing either way
        let mut unknown = report(
            vec![],
            vec![finding(CheckId::MtaStsCouldNotCheck, Severity::Unknown)],
        );
        unknown.mta_sts = MtaStsState::Unknown;
        assert_eq!(unknown.sts_policy_health(), StsPolicyHealth::Unknown);
        // certificate problems: worst first
        let mut cert = report(
            vec![],
            vec![
                finding(CheckId::MtaStsContentType, Severity::Warning),
                finding(CheckId::MtaStsCertificateInvalid, Severity::Critical),
            ],
        );
        cert.mta_sts = MtaStsState::Broken;
        assert!(matches!(cert.sts_policy_health(),
            StsPolicyHealth::Broken(f) if f.len() == 1 && f[0].check == CheckId::MtaStsCertificateInvalid));
    }

    #[test]
    fn changes_read_as_sentences() {
        let c = Change::RecordChanged {
            name: "_dmarc.x.test".into(),
            rtype: "TXT".into(),
            before: vec!["v=DMARC1; p=none".into()],
            after: vec!["v=DMARC1; p=reject".into()],
        };
        assert_eq!(
            c.describe(),
            "TXT _dmarc.x.test changed from \"v=DMARC1; p=none\" to \"v=DMARC1; p=reject\""
        );
        let v = Change::RecordVanished {
            name: "_smtp._tls.x.test".into(),
            rtype: "TXT".into(),
            before: vec!["v=TLSRPTv1; rua=mailto:a@b.test".into()],
        };
        assert_eq!(
            v.describe(),
            "TXT _smtp._tls.x.test vanished (was \"v=TLSRPTv1; rua=mailto:a@b.test\")"
        );
        let p = Change::RecordChanged {
            name: "https://mta-sts.x.test/.well-known/mta-sts.txt".into(),
            rtype: "POLICY".into(),
            before: vec!["mode: testing\nmx: a".into()],
            after: vec!["mode: enforce\nmx: a".into()],
        };
        assert!(
            p.describe()
                .starts_with("the MTA-STS policy at https://mta-sts.x.test")
        );
        assert!(p.describe().contains("\"mode: testing; mx: a\""));
        assert_eq!(
            Change::ScoreChanged {
                before: 90,
                after: 100
            }
            .describe(),
            "score changed from 90 to 100"
        );
    }

    #[test]
    fn a_problem_with_an_unreadable_record_is_not_resolved() {
        let url = "https://mta-sts.x.test/.well-known/mta-sts.txt";
        let mismatch = Finding::new(CheckId::MtaStsMxMismatch, Severity::Critical, url, "s", "e");
        let cert = Finding::new(
            CheckId::MtaStsCertificateInvalid,
            Severity::Critical,
            url,
            "s",
            "e",
        );
        let before = report(
            vec![(url, "POLICY", found("mode: enforce"))],
            vec![mismatch.clone()],
        );
        let after = report(
            vec![(
                url,
                "POLICY",
                Observed::Failed("certificate expired".into()),
            )],
            vec![cert],
        );
        let changes = diff(&before, &after);
        assert!(
            !changes
                .iter()
                .any(|c| matches!(c, Change::ProblemResolved { .. })),
            "{changes:?}"
        );
        assert!(changes.contains(&Change::ProblemAppeared {
            check: CheckId::MtaStsCertificateInvalid,
            severity: Severity::Critical,
            subject: url.into(),
        }));
        // once the policy reads again without the mismatch, it is resolved
        let fixed = report(vec![(url, "POLICY", found("mode: enforce"))], vec![]);
        assert!(diff(&before, &fixed).contains(&Change::ProblemResolved {
            check: CheckId::MtaStsMxMismatch,
            subject: url.into(),
        }));
    }

    #[test]
    fn diff_flags_a_policy_change_without_a_new_id() {
        let url = "https://mta-sts.x.test/.well-known/mta-sts.txt";
        let txt = ("_mta-sts.x.test", "TXT", found("v=STSv1; id=1"));
        let before = report(
            vec![txt.clone(), (url, "POLICY", found("mode: testing"))],
            vec![],
        );
        let after = report(vec![txt, (url, "POLICY", found("mode: enforce"))], vec![]);
        let changes = diff(&before, &after);
        assert!(changes.contains(&Change::StsPolicyChangedWithoutNewId { url: url.into() }));
    }
}
