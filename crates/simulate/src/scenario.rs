//! A seeded world of monitored domains and the reports providers send about them.
//!
//! A [`Scenario`] holds a set of [`DomainProfile`]s (policy, sending services, size, how
//! much of their mail is forwarded or spoofed). [`Scenario::plans`] lists, day by day,
//! which provider reports on which domain; every report is then a pure function of the
//! seed and its [`ReportPlan`], so reports can be produced in any order and in parallel.

use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use crate::SimError;
use crate::aggregate::{DkimAuth, DmarcAggregate, PolicyPublished, Reason, Record, SpfAuth};
use crate::email::{Attachment, Container, ReportEmail, SubjectStyle};
use crate::incident::{Incident, IncidentKind, TlsResultType};
use crate::net::Cidr;
use crate::package::{gzip, report_stem};
use crate::provider::{Habits, MxHostStyle, PROVIDERS, Provider, provider};
use crate::rng::{SimRng, key_of};
use crate::sources::{
    EnvelopeStyle, FORWARDERS, SERVICES, SPOOFERS, SendingService, Signer, aligned, fill_pattern,
};
use crate::tlsrpt::{MxHost, TlsRptFailure, TlsRptPolicy, TlsRptReport};

/// Parameters of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of monitored domains.
    pub domains: usize,
    /// First reported day (UTC).
    pub start: NaiveDate,
    /// Number of days; `None` for an endless sequence of plans.
    pub days: Option<u32>,
    /// `To:` of report emails; `None` uses `dmarc-reports@<domain>`.
    pub rua: Option<String>,
    /// What goes wrong, and when ([`Incident`]); empty for a healthy scenario.
    pub incidents: Vec<Incident>,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 7,
            domains: 50,
            start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default(),
            days: Some(28),
            rua: None,
            incidents: Vec::new(),
        }
    }
}

/// A monitored domain: its DMARC record, who sends its mail and how much.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainProfile {
    /// The domain name (also the DMARC policy domain).
    pub name: String,
    /// `p=`.
    pub p: &'static str,
    /// `sp=`, if published.
    pub sp: Option<&'static str>,
    /// `np=` (RFC 9989), if published.
    pub np: Option<&'static str>,
    /// `adkim=` (`r` or `s`).
    pub adkim: &'static str,
    /// `aspf=` (`r` or `s`).
    pub aspf: &'static str,
    /// `pct=` (RFC 7489).
    pub pct: u8,
    /// `fo=`, if published.
    pub fo: Option<&'static str>,
    /// `t=y` (RFC 9989 testing mode).
    pub testing: bool,
    /// Sending services (indices into [`SERVICES`]) with relative weights; the first is
    /// the mailbox host.
    pub services: Vec<(usize, u32)>,
    /// Relative mail volume (1.0 is a typical small business).
    pub scale: f64,
    /// Share of records (per cent) from forwarders.
    pub forward_percent: u8,
    /// Share of records (per cent) from spoofers.
    pub spoof_percent: u8,
    /// MX hosts (for TLS reports and MTA-STS policies).
    pub mx_hosts: Vec<String>,
    /// MTA-STS mode.
    pub sts_mode: &'static str,
    /// Publishes TLSA records for its MX hosts (DANE; only domains whose mail is hosted
    /// by Microsoft 365 or their own servers).
    pub dane: bool,
}

/// On which days a provider reports on a domain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReportingHabit {
    /// Every day.
    Daily,
    /// Monday to Friday (a gateway in front of offices).
    Weekdays,
    /// On each day with this probability, independently.
    Sporadic(f64),
}

/// One report to produce: which provider reports on which domain for which day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportPlan {
    /// The reported UTC day.
    pub day: NaiveDate,
    /// Index into [`Scenario::domains`].
    pub domain: usize,
    /// Index into the provider catalogue ([`crate::providers`]).
    pub provider: usize,
}

impl ReportPlan {
    /// The reporting provider.
    pub fn provider(&self) -> &'static Provider {
        &PROVIDERS[self.provider % PROVIDERS.len()]
    }

    fn keys(&self, tag: &str) -> [u64; 4] {
        [
            key_of(tag),
            self.day.to_epoch_days() as u64,
            self.domain as u64,
            self.provider as u64,
        ]
    }
}

/// A report rendered to bytes, with what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedReport {
    /// File name (without directory).
    pub file_name: String,
    /// The file's contents.
    pub bytes: Vec<u8>,
    /// Size of the uncompressed report document.
    pub document_bytes: u64,
    /// DMARC records, or TLS policies.
    pub records: u64,
    /// Messages (DMARC) or sessions (TLS) counted.
    pub messages: u64,
}

/// Metadata shared by a report and the email carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    begin: i64,
    end: i64,
    sent: DateTime<Utc>,
    report_id: String,
    stem: String,
    message_id: String,
    boundary: String,
}

/// A seeded set of domains and the reports about them.
#[derive(Debug, Clone)]
pub struct Scenario {
    config: ScenarioConfig,
    domains: Vec<DomainProfile>,
}

const NAME_FIRST: [&str; 40] = [
    "north", "blue", "silver", "red", "green", "iron", "bright", "clear", "swift", "high", "oak",
    "maple", "river", "stone", "sun", "moon", "star", "cedar", "harbor", "summit", "alpine",
    "coastal", "prairie", "urban", "metro", "pioneer", "atlas", "nova", "polar", "golden",
    "crystal", "eagle", "falcon", "copper", "granite", "willow", "lake", "delta", "echo", "orbit",
];
const NAME_SECOND: [&str; 30] = [
    "wind",
    "field",
    "bridge",
    "works",
    "labs",
    "logistics",
    "media",
    "health",
    "foods",
    "legal",
    "travel",
    "energy",
    "systems",
    "studio",
    "partners",
    "bank",
    "clinic",
    "school",
    "shop",
    "dental",
    "motors",
    "realty",
    "insure",
    "cloud",
    "data",
    "print",
    "tools",
    "farm",
    "games",
    "books",
];
const TLDS: [&str; 8] = ["com", "net", "org", "io", "de", "co.uk", "nl", "cz"];

fn domain_name(i: usize) -> String {
    let a = i % NAME_FIRST.len();
    let rest = i / NAME_FIRST.len();
    let b = (rest + 3 * a) % NAME_SECOND.len();
    let rest = rest / NAME_SECOND.len();
    let t = (rest + a) % TLDS.len();
    let round = rest / TLDS.len();
    let first = NAME_FIRST[a];
    let second = NAME_SECOND[b];
    let tld = TLDS[t];
    if round == 0 {
        format!("{first}{second}.{tld}")
    } else {
        format!("{first}{second}{round}.{tld}")
    }
}

fn pick_weighted<T: Copy>(rng: &mut SimRng, items: &[(T, u32)]) -> T {
    let weights: Vec<u32> = items.iter().map(|(_, w)| *w).collect();
    items[rng.weighted(&weights)].0
}

fn service_index(key: &str) -> usize {
    SERVICES.iter().position(|s| s.key == key).unwrap_or(0)
}

impl DomainProfile {
    fn generate(seed: u64, index: usize) -> Self {
        let mut rng = SimRng::derive(seed, &[key_of("domain"), index as u64]);
        let name = domain_name(index);
        let p = pick_weighted(
            &mut rng,
            &[("none", 45), ("quarantine", 30), ("reject", 25)],
        );
        let sp = pick_weighted(&mut rng, &[(None, 50), (Some(p), 35), (Some("none"), 15)]);
        let np = pick_weighted(&mut rng, &[(None, 70), (Some("reject"), 20), (Some(p), 10)]);
        let adkim = if rng.chance(0.1) { "s" } else { "r" };
        let aspf = if rng.chance(0.15) { "s" } else { "r" };
        let pct = if p != "none" && rng.chance(0.1) {
            *rng.pick(&[25u8, 50]).unwrap_or(&50)
        } else {
            100
        };
        let fo = pick_weighted(&mut rng, &[(None, 70), (Some("1"), 20), (Some("0"), 10)]);
        let host = pick_weighted(
            &mut rng,
            &[
                ("google-workspace", 45),
                ("microsoft-365", 40),
                ("zoho-mail", 5),
                ("own-server", 10),
            ],
        );
        let mut services = vec![(service_index(host), 60)];
        let extras = [
            "amazon-ses",
            "sendgrid",
            "mailchimp",
            "mailgun",
            "salesforce",
            "zendesk",
            "hubspot",
        ];
        let n_extra = rng.weighted(&[25, 35, 25, 10, 5]);
        let mut taken = HashSet::new();
        for _ in 0..n_extra {
            let key = extras[rng.index(extras.len())];
            if taken.insert(key) {
                services.push((service_index(key), rng.between(5, 40) as u32));
            }
        }
        let mx_hosts = match host {
            "google-workspace" => vec![
                "aspmx.l.google.com".to_owned(),
                "alt1.aspmx.l.google.com".to_owned(),
                "alt2.aspmx.l.google.com".to_owned(),
            ],
            "microsoft-365" => vec![format!(
                "{}.mail.protection.outlook.com",
                name.replace('.', "-")
            )],
            _ => vec![format!("mx1.{name}"), format!("mx2.{name}")],
        };
        DomainProfile {
            name,
            p,
            sp,
            np,
            adkim,
            aspf,
            pct,
            fo,
            testing: rng.chance(0.05),
            services,
            scale: rng.log_uniform(0.3, 3.0),
            forward_percent: rng.between(3, 12) as u8,
            spoof_percent: rng.between(5, 35) as u8,
            mx_hosts,
            sts_mode: pick_weighted(&mut rng, &[("enforce", 55), ("testing", 40), ("none", 5)]),
            dane: matches!(host, "microsoft-365" | "own-server") && rng.chance(0.3),
        }
    }

    /// The policy that applies to mail from `header_from` (`sp` for subdomains).
    fn policy_for(&self, header_from: &str) -> &'static str {
        if header_from == self.name {
            self.p
        } else {
            self.sp.unwrap_or(self.p)
        }
    }
}

/// Source classes of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Legit,
    Forwarded,
    Spoofed,
}

impl Scenario {
    /// Builds the domains of a scenario. Incidents that do not fit the scenario (see
    /// [`Scenario::try_new`]) have no effect.
    pub fn new(config: ScenarioConfig) -> Self {
        let domains = (0..config.domains)
            .map(|i| DomainProfile::generate(config.seed, i))
            .collect();
        Scenario { config, domains }
    }

    /// Builds the domains of a scenario and checks that every incident fits it: its
    /// domain and MX host exist, it starts before the scenario ends, its providers exist
    /// and send TLS reports where the incident is about TLS, its result type suits its
    /// kind, and a DANE incident's domain publishes TLSA records.
    pub fn try_new(config: ScenarioConfig) -> Result<Self, SimError> {
        let scenario = Scenario::new(config);
        for incident in &scenario.config.incidents {
            scenario
                .check(incident)
                .map_err(|e| SimError::Config(format!("incident {incident}: {e}")))?;
        }
        Ok(scenario)
    }

    fn check(&self, incident: &Incident) -> Result<(), String> {
        let Some(domain) = self.domains.get(incident.domain) else {
            return Err(format!(
                "no domain {} (the scenario has {})",
                incident.domain,
                self.domains.len()
            ));
        };
        if let Some(days) = self.config.days
            && incident.from_day >= days
        {
            return Err(format!(
                "starts on day {} but the scenario has {days} days",
                incident.from_day
            ));
        }
        let tls_provider = |key: &str| match provider(key) {
            None => Err(format!("unknown provider {key:?}")),
            Some(p) if p.tls.is_none() => Err(format!(
                "{key} sends no TLS reports (TLS reporters: {})",
                tls_reporters().join(", ")
            )),
            Some(_) => Ok(()),
        };
        match &incident.kind {
            IncidentKind::CertificateExpired { mx } => {
                if *mx >= domain.mx_hosts.len() {
                    return Err(format!(
                        "{} has {} MX hosts ({}), no mx {mx}",
                        domain.name,
                        domain.mx_hosts.len(),
                        domain.mx_hosts.join(", ")
                    ));
                }
            }
            IncidentKind::ProviderMismatch { provider, result } => {
                tls_provider(provider)?;
                if !result.is_negotiation() {
                    return Err(format!("{result} is not a negotiation failure"));
                }
            }
            IncidentKind::MtaStsBroken { result } => {
                if !result.is_sts() {
                    return Err(format!("{result} is not an MTA-STS failure"));
                }
            }
            IncidentKind::DaneBroken { result } => {
                if !result.is_dane() {
                    return Err(format!("{result} is not a DANE failure"));
                }
                if !domain.dane {
                    let dane: Vec<String> = self
                        .domains
                        .iter()
                        .enumerate()
                        .filter(|(_, d)| d.dane)
                        .map(|(i, d)| format!("{i} ({})", d.name))
                        .collect();
                    return Err(format!(
                        "{} publishes no TLSA records (domains that do: {})",
                        domain.name,
                        if dane.is_empty() {
                            "none".to_owned()
                        } else {
                            dane.join(", ")
                        }
                    ));
                }
            }
            IncidentKind::LowRateDowngrade {
                providers,
                rate_per_day,
                receiver,
                ..
            } => {
                for p in providers {
                    tls_provider(p)?;
                }
                if *rate_per_day == 0 {
                    return Err("rate must be at least 1".to_owned());
                }
                if let Some(ip) = receiver
                    && let Some(mx) = (0..domain.mx_hosts.len())
                        .find(|&mx| self.mx_ip(incident.domain, mx) == *ip)
                {
                    return Err(format!(
                        "receiver {ip} is the address of {}'s MX {}; the interceptor needs \
                         a foreign address",
                        domain.name, domain.mx_hosts[mx]
                    ));
                }
            }
            IncidentKind::LegacyStarttls {
                providers,
                rate_per_day,
                ..
            } => {
                for p in providers {
                    tls_provider(p)?;
                }
                if *rate_per_day == 0 {
                    return Err("rate must be at least 1".to_owned());
                }
            }
            IncidentKind::ReporterSilent { provider: key } => {
                if provider(key).is_none() {
                    return Err(format!("unknown provider {key:?}"));
                }
            }
            IncidentKind::SpoofingCampaign { volume_per_day, .. } => {
                if *volume_per_day == 0 {
                    return Err("volume must be at least 1".to_owned());
                }
            }
        }
        Ok(())
    }

    /// The date of day `day` of the scenario (day 0 is [`ScenarioConfig::start`]).
    pub fn date_of(&self, day: u32) -> NaiveDate {
        self.config
            .start
            .checked_add_days(Days::new(u64::from(day)))
            .unwrap_or(NaiveDate::MAX)
    }

    /// The day number of `date` (0 for dates before the start).
    pub fn day_of(&self, date: NaiveDate) -> u32 {
        u32::try_from((date - self.config.start).num_days().max(0)).unwrap_or(u32::MAX)
    }

    /// On which days provider `provider` (index into the catalogue) reports on domain
    /// `domain`, when nothing silences it. Big mailbox providers report daily; gateways
    /// often on weekdays only; small providers on some days at random.
    pub fn habit(&self, domain: usize, provider: usize) -> ReportingHabit {
        let plan = ReportPlan {
            day: self.config.start,
            domain,
            provider,
        };
        let chance = self.daily_chance(&plan);
        let key = plan.provider().key;
        let mut rng = SimRng::derive(
            self.config.seed,
            &[key_of("habit"), domain as u64, provider as u64],
        );
        if chance >= 0.8 {
            ReportingHabit::Daily
        } else if matches!(key, "mimecast" | "proofpoint") && rng.chance(0.5) {
            ReportingHabit::Weekdays
        } else if chance >= 0.5 && rng.chance(0.5) {
            ReportingHabit::Daily
        } else {
            ReportingHabit::Sporadic(chance)
        }
    }

    /// True when `plan`'s provider sends its report: on its habitual days
    /// ([`Scenario::habit`]), unless a [`IncidentKind::ReporterSilent`] incident silences
    /// it. [`Scenario::plans`] lists exactly these plans.
    pub fn reports(&self, plan: &ReportPlan) -> bool {
        let day = self.day_of(plan.day);
        let key = plan.provider().key;
        let silenced = self.config.incidents.iter().any(|i| {
            matches!(&i.kind, IncidentKind::ReporterSilent { provider } if provider == key)
                && i.active(plan.domain, day)
        });
        if silenced {
            return false;
        }
        match self.habit(plan.domain, plan.provider) {
            ReportingHabit::Daily => true,
            ReportingHabit::Weekdays => plan.day.weekday().number_from_monday() <= 5,
            ReportingHabit::Sporadic(chance) => {
                SimRng::derive(self.config.seed, &plan.keys("plan")).unit() < chance
            }
        }
    }

    /// The address MX host `mx` of domain `domain` resolves to (stable for the whole
    /// scenario): TLS-RPT `receiving-ip`.
    pub fn mx_ip(&self, domain: usize, mx: usize) -> IpAddr {
        let profile = &self.domains[domain];
        let ranges = SERVICES[profile.services[0].0].ranges;
        let v4: Vec<&Cidr> = ranges
            .iter()
            .filter(|c| matches!(c, Cidr::V4 { .. }))
            .collect();
        let mut rng = SimRng::derive(
            self.config.seed,
            &[key_of("mx-ip"), domain as u64, mx as u64],
        );
        match v4.get(rng.index(v4.len())) {
            Some(net) => net.random(&mut rng),
            None => ranges[0].random(&mut rng),
        }
    }

    /// The TLSA record published for MX host `mx` of domain `domain`.
    pub fn tlsa_record(&self, domain: usize, mx: usize) -> String {
        let mut rng = SimRng::derive(
            self.config.seed,
            &[key_of("tlsa"), domain as u64, mx as u64],
        );
        format!("3 1 1 {}", rng.hex(64))
    }

    /// The network a [`IncidentKind::SpoofingCampaign`] sends from: its own, or a /24
    /// inside one of [`SPOOFERS`] chosen by the seed and the incident. `None` for other
    /// kinds.
    pub fn campaign_network(&self, incident: &Incident) -> Option<Cidr> {
        let IncidentKind::SpoofingCampaign { network, .. } = &incident.kind else {
            return None;
        };
        if let Some(n) = network {
            return Some(*n);
        }
        let mut rng = SimRng::derive(
            self.config.seed,
            &[key_of("campaign-net"), key_of(&incident.to_string())],
        );
        let v4: Vec<&Cidr> = SPOOFERS
            .iter()
            .filter(|c| matches!(c, Cidr::V4 { .. }))
            .collect();
        let net = v4.get(rng.index(v4.len()))?;
        match net.random(&mut rng) {
            IpAddr::V4(a) => Some(Cidr::v4(a.octets(), 24)),
            IpAddr::V6(a) => Some(Cidr::v6(a.segments(), 48)),
        }
    }

    /// Where a [`IncidentKind::LowRateDowngrade`] without `receiver` is answered from:
    /// TEST-NET-2, which no MX address ([`Scenario::mx_ip`]) lies in.
    pub const DOWNGRADE_RECEIVERS: Cidr = Cidr::v4([198, 51, 100, 0], 24);

    /// The `receiving-ip` of a [`IncidentKind::LowRateDowngrade`]: the interceptor that
    /// answers instead of the real MX. Its own `receiver`, or a host of
    /// [`Scenario::DOWNGRADE_RECEIVERS`] chosen by the seed and the incident — never an
    /// MX address ([`Scenario::mx_ip`] only hands out addresses of the hosting
    /// services' networks). `None` for other kinds.
    pub fn downgrade_receiver(&self, incident: &Incident) -> Option<IpAddr> {
        let IncidentKind::LowRateDowngrade { receiver, .. } = &incident.kind else {
            return None;
        };
        if let Some(ip) = receiver {
            return Some(*ip);
        }
        let mut rng = SimRng::derive(
            self.config.seed,
            &[key_of("downgrade-receiver"), key_of(&incident.to_string())],
        );
        Some(Self::DOWNGRADE_RECEIVERS.random(&mut rng))
    }

    /// The MX host (index into [`DomainProfile::mx_hosts`]) of a
    /// [`IncidentKind::LegacyStarttls`]: its `mx`, clamped to the domain's last host.
    /// `None` for other kinds and unknown domains.
    pub fn legacy_mx(&self, incident: &Incident) -> Option<usize> {
        let IncidentKind::LegacyStarttls { mx, .. } = &incident.kind else {
            return None;
        };
        let n = self.domains.get(incident.domain)?.mx_hosts.len();
        Some((*mx).min(n.checked_sub(1)?))
    }

    /// One line describing `incident` for people: the domain, what happens, and the
    /// dates.
    pub fn describe(&self, incident: &Incident) -> String {
        let Some(domain) = self.domains.get(incident.domain) else {
            return format!("{incident}: no such domain");
        };
        let org = |key: &str| match provider(key) {
            Some(p) => format!("{} ({key})", p.org_name),
            None => key.to_owned(),
        };
        let reporters = |providers: &[String]| {
            if providers.is_empty() {
                org("google")
            } else {
                providers
                    .iter()
                    .map(|p| org(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let what = match &incident.kind {
            IncidentKind::CertificateExpired { mx } => format!(
                "certificate of MX {} ({}) expired: certificate-expired from every TLS reporter",
                domain.mx_hosts.get(*mx).map_or("?", String::as_str),
                self.mx_ip(incident.domain, *mx)
            ),
            IncidentKind::ProviderMismatch { provider, result } => {
                format!(
                    "only {} fails its TLS sessions, with {result}",
                    org(provider)
                )
            }
            IncidentKind::MtaStsBroken { result } => format!(
                "MTA-STS policy (mode {}) broken: {result} from every TLS reporter",
                domain.sts_mode
            ),
            IncidentKind::DaneBroken { result } => {
                format!("DANE broken: {result} from DANE-validating reporters")
            }
            IncidentKind::LowRateDowngrade {
                network,
                rate_per_day,
                providers,
                ..
            } => format!(
                "{rate_per_day} starttls-not-supported sessions a day from {network}, \
                 answered by {} instead of MX {}, reported by {}",
                self.downgrade_receiver(incident)
                    .map_or_else(|| "?".to_owned(), |ip| ip.to_string()),
                domain.mx_hosts[0],
                reporters(providers)
            ),
            IncidentKind::LegacyStarttls {
                rate_per_day,
                providers,
                ..
            } => {
                let mx = self.legacy_mx(incident).unwrap_or(0);
                format!(
                    "MX {} ({}) offers no STARTTLS: {rate_per_day} starttls-not-supported \
                     sessions in every report of {}",
                    domain.mx_hosts[mx],
                    self.mx_ip(incident.domain, mx),
                    reporters(providers)
                )
            }
            IncidentKind::ReporterSilent { provider } => {
                format!("{} sends no reports", org(provider))
            }
            IncidentKind::SpoofingCampaign { volume_per_day, .. } => format!(
                "spoofing campaign, about {volume_per_day} messages a day from {} (p={})",
                self.campaign_network(incident)
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                domain.p
            ),
        };
        let last = match (incident.to_day, self.config.days) {
            (Some(to), Some(days)) => Some(to.min(days.saturating_sub(1))),
            (Some(to), None) => Some(to),
            (None, Some(days)) => Some(days.saturating_sub(1)),
            (None, None) => None,
        };
        let until = last.map_or_else(|| "on".to_owned(), |d| self.date_of(d).to_string());
        format!(
            "{} (domain {}): {what}; {} .. {until}",
            domain.name,
            incident.domain,
            self.date_of(incident.from_day)
        )
    }

    /// The configuration.
    pub fn config(&self) -> &ScenarioConfig {
        &self.config
    }

    /// The monitored domains.
    pub fn domains(&self) -> &[DomainProfile] {
        &self.domains
    }

    /// Every aggregate report of the scenario, day by day, domain by domain, in catalogue
    /// order of providers. Endless when the configuration has no day limit.
    pub fn plans(&self) -> Plans<'_> {
        Plans {
            scenario: self,
            day: 0,
            domain: 0,
            provider: 0,
        }
    }

    fn daily_chance(&self, plan: &ReportPlan) -> f64 {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let boost = match (provider.key, domain.name.rsplit('.').next()) {
            ("gmx", Some("de")) => 3.0,
            ("seznam", Some("cz")) => 4.0,
            ("mailru", Some("ru")) => 5.0,
            _ => 1.0,
        };
        (f64::from(provider.daily_chance) / 100.0 * boost).min(1.0)
    }

    fn meta(&self, plan: &ReportPlan) -> Meta {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let mut rng = SimRng::derive(self.config.seed, &plan.keys("meta"));
        let begin = plan.day.to_epoch_days() as i64 * 86_400;
        let end = begin + provider.period_seconds;
        let delay = rng.between(
            u64::from(provider.delay_hours.0) * 3600,
            u64::from(provider.delay_hours.1) * 3600 + 3599,
        ) as i64;
        let sent_ts = begin + 86_400 + delay;
        let sent = DateTime::from_timestamp(sent_ts, 0).unwrap_or_default();
        let report_id = provider
            .report_id
            .generate(&mut rng, &domain.name, begin, end, sent_ts);
        let file_id = provider.file_id.generate(&mut rng, &report_id);
        let stem = report_stem(
            provider.receiver,
            &domain.name,
            begin,
            end,
            file_id.as_deref(),
        );
        let from_host = provider
            .report_from
            .rsplit('@')
            .next()
            .unwrap_or(provider.receiver)
            .trim_end_matches('>');
        let message_id = format!("{}.{}@{from_host}", rng.digits(12), rng.hex(8));
        let boundary = format!("000000000000{}", rng.hex(16));
        Meta {
            begin,
            end,
            sent,
            report_id,
            stem,
            message_id,
            boundary,
        }
    }

    /// The aggregate report of `plan`.
    pub fn aggregate(&self, plan: &ReportPlan) -> DmarcAggregate {
        let meta = self.meta(plan);
        self.aggregate_with(plan, &meta)
    }

    fn aggregate_with(&self, plan: &ReportPlan, meta: &Meta) -> DmarcAggregate {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let habits = &provider.habits;
        let mut rng = SimRng::derive(self.config.seed, &plan.keys("records"));
        let records = self.records(plan, &mut rng);
        let policy = PolicyPublished {
            domain: domain.name.clone(),
            adkim: Some(domain.adkim.to_owned()),
            aspf: Some(domain.aspf.to_owned()),
            p: domain.p.to_owned(),
            sp: domain.sp.map(str::to_owned),
            np: if habits.rfc9990 || habits.np {
                domain.np.map(str::to_owned)
            } else {
                None
            },
            pct: (!habits.rfc9990).then_some(domain.pct),
            fo: if habits.fo {
                Some(domain.fo.unwrap_or("0").to_owned())
            } else {
                None
            },
            testing: habits
                .rfc9990
                .then(|| if domain.testing { "y" } else { "n" }.to_owned()),
            discovery_method: habits.rfc9990.then(|| "psl".to_owned()),
        };
        DmarcAggregate {
            version: habits.version.map(str::to_owned),
            org_name: provider.org_name.to_owned(),
            email: provider.metadata_email.to_owned(),
            extra_contact_info: provider.extra_contact_info.map(str::to_owned),
            report_id: meta.report_id.clone(),
            begin: meta.begin,
            end: meta.end,
            errors: Vec::new(),
            generator: habits.generator.map(str::to_owned),
            policy,
            records,
        }
    }

    /// Number of records: most reports hold 5–40, one in ten up to 120, a few hundreds;
    /// scaled by the domain's size and the provider's share of its recipients.
    fn record_count(rng: &mut SimRng, provider: &Provider, domain: &DomainProfile) -> usize {
        let base = match rng.weighted(&[88, 10, 2]) {
            0 => rng.log_uniform(5.0, 40.0),
            1 => rng.log_uniform(40.0, 120.0),
            _ => rng.log_uniform(120.0, 600.0),
        };
        let size = (provider.volume * domain.scale).sqrt().clamp(0.5, 1.6);
        ((base * size).round() as usize).max(1)
    }

    fn records(&self, plan: &ReportPlan, rng: &mut SimRng) -> Vec<Record> {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let habits = &provider.habits;
        let target = Self::record_count(rng, provider, domain);
        let mut out: Vec<Record> = Vec::with_capacity(target + 4);
        let mut used = HashSet::with_capacity(target * 2);
        let legit = 100u32
            .saturating_sub(u32::from(domain.forward_percent) + u32::from(domain.spoof_percent));
        let mut attempts = 0;
        while out.len() < target && attempts < target * 4 {
            attempts += 1;
            let class = [Class::Legit, Class::Forwarded, Class::Spoofed][rng.weighted(&[
                legit,
                u32::from(domain.forward_percent),
                u32::from(domain.spoof_percent),
            ])];
            let (record, failing_share) = match class {
                Class::Legit => self.legit_record(plan, rng),
                Class::Forwarded => (forwarded_record(domain, provider, rng), None),
                Class::Spoofed => (spoofed_record(domain, rng), None),
            };
            if !used.insert(record.source_ip.clone()) {
                continue;
            }
            push_with_habits(habits, record, rng, &mut out);
            if let Some((failing, mut share_rng)) = failing_share {
                push_with_habits(habits, failing, &mut share_rng, &mut out);
            }
        }
        self.add_campaigns(plan, &mut used, &mut out);
        out
    }

    /// Appends the records of the spoofing campaigns active on `plan`'s domain and day,
    /// each drawn from a stream of its own.
    fn add_campaigns(&self, plan: &ReportPlan, used: &mut HashSet<String>, out: &mut Vec<Record>) {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let day = self.day_of(plan.day);
        let total_volume: f64 = PROVIDERS.iter().map(|p| p.volume).sum();
        for incident in &self.config.incidents {
            let IncidentKind::SpoofingCampaign { volume_per_day, .. } = &incident.kind else {
                continue;
            };
            let Some(net) = self.campaign_network(incident) else {
                continue;
            };
            if !incident.active(plan.domain, day) {
                continue;
            }
            let incident_key = key_of(&incident.to_string());
            // Constants of the campaign: its envelope domain and its addresses.
            let mut c = SimRng::derive(self.config.seed, &[key_of("campaign"), incident_key]);
            let junk = format!(
                "{}.{}",
                c.alnum(8),
                ["top", "xyz", "info", "shop", "online"][c.index(5)]
            );
            let first_host = c.below(200) as u128;
            let mut rng = SimRng::derive(
                self.config.seed,
                &[
                    key_of("campaign-day"),
                    incident_key,
                    plan.day.to_epoch_days() as u64,
                    plan.provider as u64,
                ],
            );
            let expected = *volume_per_day as f64 * provider.volume / total_volume;
            let count = ((expected * (0.8 + 0.4 * rng.unit())).round() as u64).max(1);
            let hosts = (1 + count / 40).min(8);
            let mut left = count;
            for k in 0..hosts {
                let share = if k + 1 == hosts {
                    left
                } else {
                    (count / hosts).max(1).min(left)
                };
                if share == 0 {
                    break;
                }
                left -= share;
                let ip = net.nth(first_host + u128::from(k) * 3).to_string();
                if !used.insert(ip.clone()) {
                    continue;
                }
                let dkim_results = if rng.chance(0.3) {
                    vec![DkimAuth {
                        domain: domain.name.clone(),
                        selector: Some("default".to_owned()),
                        result: "fail".to_owned(),
                        human_result: None,
                    }]
                } else {
                    Vec::new()
                };
                let observed = Record {
                    source_ip: ip,
                    count: share,
                    header_from: domain.name.clone(),
                    envelope_from: Some(junk.clone()),
                    dkim_results,
                    spf_results: vec![SpfAuth {
                        domain: junk.clone(),
                        scope: Some("mfrom".to_owned()),
                        result: ["pass", "none", "softfail"][rng.weighted(&[60, 25, 15])]
                            .to_owned(),
                    }],
                    ..Record::default()
                };
                let record = evaluate(domain, observed, false, Class::Spoofed, &mut rng);
                push_with_habits(&provider.habits, record, &mut rng, out);
            }
        }
    }

    /// A row of a legitimate sending service. When its DKIM signature fails for some
    /// messages (forwarding, content rewritten in transit), the failing share of a row of
    /// several messages is a row of its own, as receivers report it: the row itself passes,
    /// and the failing row comes back with the stream it was drawn from (derived from the
    /// row, so the rest of the report draws as before).
    fn legit_record(
        &self,
        plan: &ReportPlan,
        rng: &mut SimRng,
    ) -> (Record, Option<(Record, SimRng)>) {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let (svc_index, _) = domain.services[pick_index(rng, &domain.services)];
        let svc: &SendingService = &SERVICES[svc_index];
        // Per domain-and-service constants: IP pool, selectors, bounce domain.
        let ds_keys = [
            key_of("domain-service"),
            plan.domain as u64,
            svc_index as u64,
        ];
        let pool = 6 + (domain.scale * 12.0) as u64;
        let slot = rng.below(pool);
        let mut ip_rng = SimRng::derive(
            self.config.seed,
            &[ds_keys[0], ds_keys[1], ds_keys[2], slot],
        );
        let net = svc.ranges[ip_rng.index(svc.ranges.len())];
        let ip = net.random(&mut ip_rng);
        let mut ds = SimRng::derive(self.config.seed, &ds_keys);
        let sub = ["news", "mail", "info", "email", "m"][ds.index(5)];
        let header_from = if rng.chance(f64::from(svc.subdomain_percent) / 100.0) {
            format!("{sub}.{}", domain.name)
        } else {
            domain.name.clone()
        };
        let envelope = match svc.envelope {
            EnvelopeStyle::OwnDomain => header_from.clone(),
            EnvelopeStyle::OwnSubdomain(p) => {
                format!("{}.{}", fill_pattern(p, &mut ds), domain.name)
            }
            EnvelopeStyle::Service(p) => fill_pattern(p, &mut ds),
        };
        let mut dkim_results = Vec::with_capacity(svc.signers.len());
        for signer in svc.signers {
            match *signer {
                Signer::Own(sel) => {
                    let fail = rng.chance(f64::from(svc.dkim_fail_percent) / 100.0);
                    dkim_results.push(DkimAuth {
                        domain: header_from.clone(),
                        selector: Some(fill_pattern(sel, &mut ds)),
                        result: if fail { "fail" } else { "pass" }.to_owned(),
                        human_result: None,
                    });
                }
                Signer::Service(d, sel) => dkim_results.push(DkimAuth {
                    domain: d.to_owned(),
                    selector: Some(sel.to_owned()),
                    result: "pass".to_owned(),
                    human_result: None,
                }),
            }
        }
        let spf_result = match rng.weighted(&[970, 15, 10, 5]) {
            0 => "pass",
            1 => "softfail",
            2 => "temperror",
            _ => "neutral",
        };
        let bounce = provider.habits.helo_for_bounces && rng.chance(0.04);
        let (envelope_from, spf) = if bounce {
            (
                None,
                SpfAuth {
                    domain: format!("mail.{}", domain.name),
                    scope: Some("helo".to_owned()),
                    result: "pass".to_owned(),
                },
            )
        } else {
            (
                Some(envelope.clone()),
                SpfAuth {
                    domain: envelope.clone(),
                    scope: Some("mfrom".to_owned()),
                    result: spf_result.to_owned(),
                },
            )
        };
        let max = (300.0 * domain.scale * provider.volume).max(2.0);
        let count = rng.log_uniform(1.0, max) as u64;
        let observed = Record {
            source_ip: ip.to_string(),
            count,
            header_from,
            envelope_from,
            dkim_results,
            spf_results: vec![spf],
            ..Record::default()
        };
        let dkim_failed = observed.dkim_results.iter().any(|d| d.result == "fail");
        if !dkim_failed || count < 2 {
            let record = evaluate(
                domain,
                observed,
                provider.habits.arc_comments,
                Class::Legit,
                rng,
            );
            return (record, None);
        }
        // 2–10 % of the row's messages fail DKIM; the rest pass.
        let mut share_rng = SimRng::derive(
            self.config.seed,
            &[
                key_of("dkim-failing-share"),
                key_of(&observed.source_ip),
                plan.domain as u64,
                slot,
                count,
            ],
        );
        let share = 0.02 + 0.08 * share_rng.unit();
        let failing_count = ((count as f64 * share).round() as u64).clamp(1, count - 1);
        let mut passing = observed.clone();
        passing.count = count - failing_count;
        for d in &mut passing.dkim_results {
            d.result = "pass".to_owned();
        }
        let mut failing = observed;
        failing.count = failing_count;
        let record = evaluate(
            domain,
            passing,
            provider.habits.arc_comments,
            Class::Legit,
            rng,
        );
        let failing = evaluate(
            domain,
            failing,
            provider.habits.arc_comments,
            Class::Legit,
            &mut share_rng,
        );
        (record, Some((failing, share_rng)))
    }

    /// The aggregate report of `plan` as a file, packaged the way its provider does.
    pub fn aggregate_file(&self, plan: &ReportPlan) -> Result<RenderedReport, SimError> {
        let meta = self.meta(plan);
        let report = self.aggregate_with(plan, &meta);
        let xml = report.to_xml(&plan.provider().xml);
        let (file_name, bytes) =
            plan.provider()
                .packaging
                .pack(&meta.stem, xml.as_bytes(), meta.sent)?;
        Ok(RenderedReport {
            file_name,
            bytes,
            document_bytes: xml.len() as u64,
            records: report.records.len() as u64,
            messages: report.message_count(),
        })
    }

    /// The aggregate report of `plan` as the email its provider sends (`<stem>.eml`).
    pub fn aggregate_email(&self, plan: &ReportPlan) -> Result<RenderedReport, SimError> {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let meta = self.meta(plan);
        let report = self.aggregate_with(plan, &meta);
        let xml = report.to_xml(&provider.xml);
        let (attachment_name, data) =
            provider
                .packaging
                .pack(&meta.stem, xml.as_bytes(), meta.sent)?;
        let submitter = if provider.subject == SubjectStyle::Braced {
            provider.org_name
        } else {
            provider.receiver
        };
        let begin = DateTime::from_timestamp(meta.begin, 0).unwrap_or_default();
        let email = ReportEmail {
            from: provider.report_from.to_owned(),
            to: self.rua(domain),
            subject: provider
                .subject
                .render(&domain.name, submitter, &meta.report_id, begin),
            message_id: meta.message_id.clone(),
            date: meta.sent.fixed_offset(),
            extra_headers: Vec::new(),
            container: Container::Mixed,
            boundary: meta.boundary.clone(),
            text: format!(
                "This is an aggregate report from {}.\n\nReport domain: {}\nSubmitter: {}\nReport-ID: {}\n",
                provider.org_name, domain.name, provider.receiver, meta.report_id
            ),
            attachment: Attachment {
                filename: attachment_name,
                content_type: provider.content_type.to_owned(),
                data,
            },
        };
        Ok(RenderedReport {
            file_name: format!("{}.eml", meta.stem),
            bytes: email.to_bytes(),
            document_bytes: xml.len() as u64,
            records: report.records.len() as u64,
            messages: report.message_count(),
        })
    }

    fn rua(&self, domain: &DomainProfile) -> String {
        self.config
            .rua
            .clone()
            .unwrap_or_else(|| format!("dmarc-reports@{}", domain.name))
    }

    /// The SMTP TLS report of `plan`, or `None` when its provider sends none.
    ///
    /// One policy block: `sts` (the domain's MTA-STS policy), or `tlsa` when the
    /// reporter validates DANE and the domain publishes TLSA records. Sessions go mostly
    /// to the first MX host. A healthy report has no failures, except for one report in
    /// thirty with one or two failed sessions; active incidents add theirs.
    pub fn tls_report(&self, plan: &ReportPlan) -> Option<TlsRptReport> {
        let provider = plan.provider();
        let tls = provider.tls.as_ref()?;
        let domain = &self.domains[plan.domain];
        let day = self.day_of(plan.day);
        let mut rng = SimRng::derive(self.config.seed, &plan.keys("tls"));
        let start = DateTime::from_timestamp(plan.day.to_epoch_days() as i64 * 86_400, 0)?;
        let end = if tls.end_at_next_midnight {
            start + chrono::Duration::days(1)
        } else {
            start + chrono::Duration::seconds(86_399)
        };
        let dane = tls.dane && domain.dane;
        let policy_strings = if dane {
            (0..domain.mx_hosts.len())
                .map(|mx| self.tlsa_record(plan.domain, mx))
                .collect()
        } else {
            let mut strings = vec![
                "version: STSv1".to_owned(),
                format!("mode: {}", domain.sts_mode),
            ];
            strings.extend(domain.mx_hosts.iter().map(|m| format!("mx: {m}")));
            strings.push("max_age: 604800".to_owned());
            strings
        };
        let mx_host = match tls.mx_host {
            MxHostStyle::Single => MxHost::Single(domain.mx_hosts[0].clone()),
            MxHostStyle::List => MxHost::List(domain.mx_hosts.clone()),
            MxHostStyle::Omitted => MxHost::Omitted,
        };
        let total = rng.log_uniform(5.0, (2000.0 * domain.scale * provider.volume).max(6.0)) as u64;
        // Sessions per MX host: a few per cent to each backup, the rest to the first.
        let mut remaining: Vec<u64> = vec![0; domain.mx_hosts.len()];
        for slot in remaining.iter_mut().skip(1) {
            *slot = total * rng.between(2, 6) / 100;
        }
        remaining[0] = total - remaining.iter().sum::<u64>();
        let mut failure_details = Vec::new();
        if rng.chance(1.0 / 30.0) {
            let result = [
                TlsResultType::StarttlsNotSupported,
                TlsResultType::ValidationFailure,
                TlsResultType::CertificateHostMismatch,
            ][rng.weighted(&[50, 35, 15])];
            let mx = if rng.chance(0.8) {
                0
            } else {
                rng.index(domain.mx_hosts.len())
            };
            let count = rng.between(1, 2);
            failure_details.extend(self.negotiation_failures(plan, result, mx, count, &mut rng));
        }
        let report_id = tls
            .report_id
            .generate(&mut rng, tls.receiver, &domain.name, start);
        for incident in &self.config.incidents {
            if !incident.active(plan.domain, day) {
                continue;
            }
            let mut rng = SimRng::derive(
                self.config.seed,
                &[
                    key_of("incident"),
                    key_of(&incident.to_string()),
                    plan.day.to_epoch_days() as u64,
                    plan.domain as u64,
                    plan.provider as u64,
                ],
            );
            match &incident.kind {
                IncidentKind::CertificateExpired { mx } if *mx < remaining.len() => {
                    let failed = remaining[*mx].max(1);
                    remaining[*mx] = 0;
                    failure_details.extend(self.negotiation_failures(
                        plan,
                        TlsResultType::CertificateExpired,
                        *mx,
                        failed,
                        &mut rng,
                    ));
                }
                IncidentKind::ProviderMismatch {
                    provider: key,
                    result,
                } if key == provider.key => {
                    for mx in 0..remaining.len() {
                        let failed = if mx == 0 {
                            remaining[0].max(1)
                        } else {
                            remaining[mx]
                        };
                        remaining[mx] = 0;
                        if failed > 0 {
                            failure_details.extend(
                                self.negotiation_failures(plan, *result, mx, failed, &mut rng),
                            );
                        }
                    }
                }
                IncidentKind::MtaStsBroken { result } if !dane => {
                    let failed = remaining.iter().sum::<u64>().max(1);
                    remaining.iter_mut().for_each(|r| *r = 0);
                    failure_details.push(self.policy_failure(plan, *result, failed, &mut rng));
                }
                IncidentKind::DaneBroken { result } if dane => {
                    let failed = remaining.iter().sum::<u64>().max(1);
                    remaining.iter_mut().for_each(|r| *r = 0);
                    failure_details.push(self.policy_failure(plan, *result, failed, &mut rng));
                }
                IncidentKind::LowRateDowngrade {
                    network,
                    rate_per_day,
                    providers,
                    ..
                } if reports_for(providers, provider.key) => {
                    failure_details.push(TlsRptFailure {
                        result_type: TlsResultType::StarttlsNotSupported.as_str().to_owned(),
                        sending_mta_ip: Some(network.random(&mut rng).to_string()),
                        receiving_mx_hostname: Some(domain.mx_hosts[0].clone()),
                        receiving_mx_helo: None,
                        receiving_ip: self.downgrade_receiver(incident).map(|ip| ip.to_string()),
                        failed_session_count: (*rate_per_day).max(1),
                        additional_information: None,
                        failure_reason_code: None,
                    });
                }
                IncidentKind::LegacyStarttls {
                    rate_per_day,
                    providers,
                    ..
                } if reports_for(providers, provider.key) => {
                    let mx = self.legacy_mx(incident).unwrap_or(0);
                    let failed = (*rate_per_day).max(1);
                    // The sessions that fail are the reporter's own: its successful ones
                    // drop by as many, first those to the host, then to the others.
                    let mut left = failed;
                    let others = (0..remaining.len()).filter(|&i| i != mx);
                    for i in std::iter::once(mx).chain(others) {
                        let taken = left.min(remaining[i]);
                        remaining[i] -= taken;
                        left -= taken;
                    }
                    let net = &provider.sending_ranges[rng.index(provider.sending_ranges.len())];
                    failure_details.push(TlsRptFailure {
                        result_type: TlsResultType::StarttlsNotSupported.as_str().to_owned(),
                        sending_mta_ip: Some(net.random(&mut rng).to_string()),
                        receiving_mx_hostname: Some(domain.mx_hosts[mx].clone()),
                        receiving_mx_helo: None,
                        receiving_ip: Some(self.mx_ip(plan.domain, mx).to_string()),
                        failed_session_count: failed,
                        additional_information: None,
                        failure_reason_code: None,
                    });
                }
                _ => {}
            }
        }
        let failed = failure_details.iter().map(|f| f.failed_session_count).sum();
        Some(TlsRptReport {
            organization_name: tls.org_name.to_owned(),
            start,
            end,
            contact_info: tls.contact_info.map(str::to_owned),
            report_id,
            policies: vec![TlsRptPolicy {
                policy_type: if dane { "tlsa" } else { "sts" }.to_owned(),
                policy_strings: Some(policy_strings),
                policy_domain: Some(domain.name.clone()),
                mx_host,
                successful_sessions: remaining.iter().sum(),
                failed_sessions: failed,
                failure_details,
                empty_failure_details: !tls.omit_empty_failure_details,
            }],
        })
    }

    /// `count` failed sessions to MX host `mx`, from one to three of the reporter's own
    /// sending addresses.
    fn negotiation_failures(
        &self,
        plan: &ReportPlan,
        result: TlsResultType,
        mx: usize,
        count: u64,
        rng: &mut SimRng,
    ) -> Vec<TlsRptFailure> {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let senders = rng.between(1, 3).min(count.max(1));
        let mut left = count;
        let mut out = Vec::with_capacity(senders as usize);
        for k in 0..senders {
            let share = if k + 1 == senders {
                left
            } else {
                (count / senders).max(1).min(left)
            };
            left -= share;
            let net = &provider.sending_ranges[rng.index(provider.sending_ranges.len())];
            out.push(TlsRptFailure {
                result_type: result.as_str().to_owned(),
                sending_mta_ip: Some(net.random(rng).to_string()),
                receiving_mx_hostname: Some(domain.mx_hosts[mx].clone()),
                receiving_mx_helo: None,
                receiving_ip: Some(self.mx_ip(plan.domain, mx).to_string()),
                failed_session_count: share,
                additional_information: None,
                failure_reason_code: result.reason_code().map(str::to_owned),
            });
        }
        out
    }

    /// A policy failure (MTA-STS or DANE) covering `count` sessions; reporters with
    /// `bare_fetch_errors` leave addresses and host names out.
    fn policy_failure(
        &self,
        plan: &ReportPlan,
        result: TlsResultType,
        count: u64,
        rng: &mut SimRng,
    ) -> TlsRptFailure {
        let provider = plan.provider();
        let domain = &self.domains[plan.domain];
        let bare = provider.tls.is_some_and(|t| t.bare_fetch_errors) && result.is_sts();
        let net = &provider.sending_ranges[rng.index(provider.sending_ranges.len())];
        TlsRptFailure {
            result_type: result.as_str().to_owned(),
            sending_mta_ip: (!bare).then(|| net.random(rng).to_string()),
            receiving_mx_hostname: (!bare).then(|| domain.mx_hosts[0].clone()),
            receiving_mx_helo: None,
            receiving_ip: (!bare).then(|| self.mx_ip(plan.domain, 0).to_string()),
            failed_session_count: count,
            additional_information: None,
            failure_reason_code: None,
        }
    }

    /// The TLS report of `plan` as the email its provider sends (`multipart/report`,
    /// `application/tlsrpt+gzip`), or `None` when the provider sends no TLS reports.
    pub fn tls_email(&self, plan: &ReportPlan) -> Result<Option<RenderedReport>, SimError> {
        match self.tls_report(plan) {
            Some(report) => self.tls_email_of(plan, &report),
            None => Ok(None),
        }
    }

    /// `report` (the TLS report of `plan`) as the email its provider sends.
    pub(crate) fn tls_email_of(
        &self,
        plan: &ReportPlan,
        report: &TlsRptReport,
    ) -> Result<Option<RenderedReport>, SimError> {
        let provider = plan.provider();
        let Some(tls) = provider.tls.as_ref() else {
            return Ok(None);
        };
        let domain = &self.domains[plan.domain];
        let mut rng = SimRng::derive(self.config.seed, &plan.keys("tls-mail"));
        let json = report.to_json_bytes();
        let stem = report_stem(
            tls.receiver,
            &domain.name,
            report.start.timestamp(),
            report.end.timestamp(),
            Some(&format!("{:03}", rng.between(1, 999))),
        );
        let sent = report.end + chrono::Duration::seconds(rng.between(600, 6 * 3600) as i64);
        let data = gzip(&json, None, sent)?;
        let email = ReportEmail {
            from: tls.report_from.to_owned(),
            to: self
                .config
                .rua
                .clone()
                .unwrap_or_else(|| format!("tlsrpt@{}", domain.name)),
            subject: tls.subject.render(
                &domain.name,
                tls.receiver,
                &report.report_id,
                report.start,
            ),
            message_id: format!("{}tls@{}", rng.hex(24), tls.receiver),
            date: sent.fixed_offset(),
            extra_headers: vec![
                ("TLS-Report-Domain".to_owned(), domain.name.clone()),
                ("TLS-Report-Submitter".to_owned(), tls.receiver.to_owned()),
            ],
            container: Container::Report {
                report_type: "tlsrpt".to_owned(),
            },
            boundary: format!("000000000000{}", rng.hex(16)),
            text: format!("This is an aggregate TLS report from {}", tls.receiver),
            attachment: Attachment {
                filename: format!("{stem}.json.gz"),
                content_type: "application/tlsrpt+gzip".to_owned(),
                data,
            },
        };
        Ok(Some(RenderedReport {
            file_name: format!("{stem}.eml"),
            bytes: email.to_bytes(),
            document_bytes: json.len() as u64,
            records: report.policies.len() as u64,
            messages: report.successful_sessions() + report.failed_sessions(),
        }))
    }
}

/// True when an incident naming `providers` (empty: `google`) affects reporter `key`.
fn reports_for(providers: &[String], key: &str) -> bool {
    if providers.is_empty() {
        key == "google"
    } else {
        providers.iter().any(|p| p == key)
    }
}

/// Keys of the providers that send TLS reports.
fn tls_reporters() -> Vec<&'static str> {
    PROVIDERS
        .iter()
        .filter(|p| p.tls.is_some())
        .map(|p| p.key)
        .collect()
}

fn pick_index(rng: &mut SimRng, items: &[(usize, u32)]) -> usize {
    let weights: Vec<u32> = items.iter().map(|(_, w)| *w).collect();
    rng.weighted(&weights)
}

/// Applies a reporter's record habits (which identifiers and results it writes, whether
/// it splits records by recipient domain) and appends the result.
fn push_with_habits(habits: &Habits, mut record: Record, rng: &mut SimRng, out: &mut Vec<Record>) {
    if !habits.envelope_from {
        record.envelope_from = None;
    }
    if !habits.spf_scope {
        for s in &mut record.spf_results {
            s.scope = None;
        }
    }
    if habits.spf_only_percent > 0 && rng.chance(f64::from(habits.spf_only_percent) / 100.0) {
        record.dkim_results.clear();
    }
    if habits.envelope_to_domains.is_empty() {
        out.push(record);
        return;
    }
    let parts = (1 + rng.weighted(&[50, 30, 20]))
        .min(record.count as usize)
        .max(1);
    let mut left = record.count;
    let first = rng.index(habits.envelope_to_domains.len());
    for k in 0..parts {
        let share = if k + 1 == parts {
            left
        } else {
            rng.between(1, left - (parts - k - 1) as u64)
        };
        left -= share;
        let mut r = record.clone();
        r.count = share;
        r.envelope_to = Some(
            habits.envelope_to_domains[(first + k) % habits.envelope_to_domains.len()].to_owned(),
        );
        out.push(r);
    }
}

fn forwarded_record(domain: &DomainProfile, provider: &Provider, rng: &mut SimRng) -> Record {
    let net = FORWARDERS[rng.index(FORWARDERS.len())];
    let ip = net.random(rng);
    let selector = match SERVICES[domain.services[0].0].signers.first() {
        Some(Signer::Own(s)) => s.replace(['#', '*'], "1"),
        _ => "default".to_owned(),
    };
    let dkim_ok = rng.chance(0.75);
    let spf_result = ["fail", "softfail", "neutral", "none"][rng.weighted(&[40, 40, 10, 10])];
    let observed = Record {
        source_ip: ip.to_string(),
        count: rng.log_uniform(1.0, 30.0) as u64,
        header_from: domain.name.clone(),
        envelope_from: Some(domain.name.clone()),
        dkim_results: vec![DkimAuth {
            domain: domain.name.clone(),
            selector: Some(selector),
            result: if dkim_ok { "pass" } else { "fail" }.to_owned(),
            human_result: None,
        }],
        spf_results: vec![SpfAuth {
            domain: domain.name.clone(),
            scope: Some("mfrom".to_owned()),
            result: spf_result.to_owned(),
        }],
        ..Record::default()
    };
    evaluate(
        domain,
        observed,
        provider.habits.arc_comments,
        Class::Forwarded,
        rng,
    )
}

fn spoofed_record(domain: &DomainProfile, rng: &mut SimRng) -> Record {
    let net = SPOOFERS[rng.index(SPOOFERS.len())];
    let ip = net.random(rng);
    let header_from = if rng.chance(0.9) {
        domain.name.clone()
    } else {
        format!(
            "{}.{}",
            ["secure", "billing", "account", "support"][rng.index(4)],
            domain.name
        )
    };
    let junk_len = rng.between(5, 10) as usize;
    let junk = format!(
        "{}.{}",
        rng.alnum(junk_len),
        ["com", "top", "xyz", "ru", "info", "net"][rng.index(6)]
    );
    let own_envelope = rng.chance(0.4);
    let envelope = if own_envelope {
        domain.name.clone()
    } else {
        junk.clone()
    };
    let dkim_results = match rng.weighted(&[60, 25, 15]) {
        0 => Vec::new(),
        1 => vec![DkimAuth {
            domain: domain.name.clone(),
            selector: Some("default".to_owned()),
            result: "fail".to_owned(),
            human_result: None,
        }],
        _ => vec![DkimAuth {
            domain: junk.clone(),
            selector: Some(["s1", "default", "dkim", "mail"][rng.index(4)].to_owned()),
            result: "pass".to_owned(),
            human_result: None,
        }],
    };
    let spf_result = if own_envelope {
        ["fail", "softfail"][rng.index(2)]
    } else {
        ["pass", "none", "neutral", "softfail"][rng.weighted(&[40, 30, 15, 15])]
    };
    let observed = Record {
        source_ip: ip.to_string(),
        count: rng.log_uniform(1.0, 15.0) as u64,
        header_from,
        envelope_from: Some(envelope.clone()),
        dkim_results,
        spf_results: vec![SpfAuth {
            domain: envelope,
            scope: Some("mfrom".to_owned()),
            result: spf_result.to_owned(),
        }],
        ..Record::default()
    };
    evaluate(domain, observed, false, Class::Spoofed, rng)
}

/// Fills in `policy_evaluated` of an observed record (source, identifiers and
/// authentication results) from the domain's policy.
fn evaluate(
    domain: &DomainProfile,
    observed: Record,
    arc_comments: bool,
    class: Class,
    rng: &mut SimRng,
) -> Record {
    let Record {
        source_ip,
        count,
        header_from,
        envelope_from,
        dkim_results,
        spf_results,
        ..
    } = observed;
    let strict_dkim = domain.adkim == "s";
    let strict_spf = domain.aspf == "s";
    let dkim_pass = dkim_results
        .iter()
        .any(|d| d.result == "pass" && aligned(&d.domain, &header_from, strict_dkim));
    let spf_pass = spf_results.iter().any(|s| {
        s.result == "pass"
            && s.scope.as_deref() != Some("helo")
            && aligned(&s.domain, &header_from, strict_spf)
    });
    let mut reasons = Vec::new();
    let disposition = if dkim_pass || spf_pass {
        "none"
    } else {
        let policy = domain.policy_for(&header_from);
        if policy != "none" && domain.pct < 100 && rng.chance(1.0 - f64::from(domain.pct) / 100.0) {
            reasons.push(Reason {
                kind: "sampled_out".to_owned(),
                comment: None,
            });
            "none"
        } else if policy != "none" && class == Class::Forwarded && rng.chance(0.5) {
            if arc_comments {
                reasons.push(Reason {
                    kind: "local_policy".to_owned(),
                    comment: Some("arc=pass as.1.google.com=pass".to_owned()),
                });
            } else {
                reasons.push(Reason {
                    kind: ["forwarded", "mailing_list", "trusted_forwarder"]
                        [rng.weighted(&[60, 30, 10])]
                    .to_owned(),
                    comment: None,
                });
            }
            "none"
        } else {
            policy
        }
    };
    Record {
        source_ip,
        count: count.max(1),
        disposition: disposition.to_owned(),
        dkim: if dkim_pass { "pass" } else { "fail" }.to_owned(),
        spf: if spf_pass { "pass" } else { "fail" }.to_owned(),
        reasons,
        envelope_to: None,
        envelope_from,
        header_from,
        dkim_results,
        spf_results,
    }
}

/// Iterator over the [`ReportPlan`]s of a scenario.
#[derive(Debug, Clone)]
pub struct Plans<'s> {
    scenario: &'s Scenario,
    day: u64,
    domain: usize,
    provider: usize,
}

impl Iterator for Plans<'_> {
    type Item = ReportPlan;

    fn next(&mut self) -> Option<ReportPlan> {
        let s = self.scenario;
        if s.domains.is_empty() {
            return None;
        }
        loop {
            if let Some(days) = s.config.days
                && self.day >= u64::from(days)
            {
                return None;
            }
            let day = s.config.start.checked_add_days(Days::new(self.day))?;
            let plan = ReportPlan {
                day,
                domain: self.domain,
                provider: self.provider,
            };
            self.provider += 1;
            if self.provider == PROVIDERS.len() {
                self.provider = 0;
                self.domain += 1;
                if self.domain == s.domains.len() {
                    self.domain = 0;
                    self.day += 1;
                }
            }
            if s.reports(&plan) {
                return Some(plan);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::new(ScenarioConfig {
            domains: 12,
            days: Some(3),
            ..ScenarioConfig::default()
        })
    }

    #[test]
    fn domain_names_are_unique() {
        let names: HashSet<String> = (0..20_000).map(domain_name).collect();
        assert_eq!(names.len(), 20_000);
    }

    #[test]
    fn plans_are_deterministic_and_bounded() {
        let s = scenario();
        let a: Vec<ReportPlan> = s.plans().collect();
        let b: Vec<ReportPlan> = scenario().plans().collect();
        assert_eq!(a, b);
        assert!(!a.is_empty());
        let unique: HashSet<&ReportPlan> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        assert!(a.iter().all(|p| p.day < s.config().start + Days::new(3)));
    }

    #[test]
    fn records_are_consistent() {
        let s = scenario();
        for plan in s.plans().take(60) {
            let r = s.aggregate(&plan);
            assert!(!r.records.is_empty());
            assert_eq!(r.end - r.begin, plan.provider().period_seconds);
            for rec in &r.records {
                assert!(rec.count >= 1);
                assert!(rec.source_ip.parse::<IpAddr>().is_ok());
                let passes = rec.dkim == "pass" || rec.spf == "pass";
                if passes {
                    assert_eq!(rec.disposition, "none");
                }
                if !plan.provider().habits.envelope_from {
                    assert!(rec.envelope_from.is_none());
                }
                if !plan.provider().habits.envelope_to_domains.is_empty() {
                    assert!(rec.envelope_to.is_some());
                }
            }
        }
    }

    #[test]
    fn same_plan_same_bytes() {
        let s = scenario();
        let plan = s.plans().nth(5).expect("plans");
        let a = s.aggregate_file(&plan).expect("render");
        let b = scenario().aggregate_file(&plan).expect("render");
        assert_eq!(a, b);
        let e1 = s.aggregate_email(&plan).expect("render");
        let e2 = scenario().aggregate_email(&plan).expect("render");
        assert_eq!(e1, e2);
    }

    #[test]
    fn tls_emails_come_from_tls_reporters_only() {
        let s = scenario();
        let mut seen = 0;
        for plan in s.plans().take(80) {
            let email = s.tls_email(&plan).expect("render");
            match (plan.provider().tls, email) {
                (None, None) => {}
                (Some(_), Some(e)) => {
                    seen += 1;
                    let text = String::from_utf8_lossy(&e.bytes);
                    assert!(text.contains("TLS-Report-Domain: "));
                    assert!(text.contains("report-type=tlsrpt"));
                    assert!(e.file_name.ends_with(".eml"));
                }
                (tls, email) => panic!("{tls:?} vs {:?}", email.map(|e| e.file_name)),
            }
        }
        assert!(seen > 0);
    }
}
