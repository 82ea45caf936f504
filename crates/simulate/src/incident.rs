//! Incidents a scenario can inject, as plain data, and their one-line text form
//! (`cert-expired:domain=0,mx=0,from=14`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::net::Cidr;
use crate::provider::PROVIDERS;

/// Something that goes wrong for one domain from one day on.
///
/// Days are counted from the scenario's start (day 0). Every effect of an incident is
/// drawn from random streams of its own, so the reports of the days before `from_day`
/// are byte for byte those of the same scenario without the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// What goes wrong.
    pub kind: IncidentKind,
    /// Index into [`crate::Scenario::domains`].
    pub domain: usize,
    /// First affected day.
    pub from_day: u32,
    /// Last affected day (inclusive); `None` for "until the end of the scenario".
    pub to_day: Option<u32>,
}

/// The kinds of incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentKind {
    /// The certificate of MX host `mx` (index into [`crate::DomainProfile::mx_hosts`])
    /// expired: every TLS reporter reports `certificate-expired` for all its sessions to
    /// that host (with `receiving-mx-hostname`, the host's stable `receiving-ip` and
    /// `sending-mta-ip` from the reporter's own networks); its successful sessions drop
    /// by as many.
    CertificateExpired { mx: usize },
    /// One reporter (a provider key such as `google`) fails every session with
    /// `result` (`validation-failure` comes with a `failure-reason-code`) while the
    /// other reporters keep succeeding. The provider must send TLS reports.
    ProviderMismatch {
        provider: String,
        result: TlsResultType,
    },
    /// The MTA-STS policy cannot be used: every reporter reports `result`
    /// (`sts-policy-fetch-error`, `sts-policy-invalid` or `sts-webpki-invalid`) for all
    /// its sessions under the `sts` policy, whose `mode` is the domain's
    /// ([`crate::DomainProfile::sts_mode`]). Reporters that apply DANE to the domain
    /// report a `tlsa` policy instead and are not affected.
    MtaStsBroken { result: TlsResultType },
    /// STARTTLS stripped on one path: an interceptor answers instead of the real MX. A
    /// small steady number of `starttls-not-supported` failures whose `sending-mta-ip`
    /// lies in `network` (not a network the reporter normally sends from):
    /// `rate_per_day` failed sessions in each report of each reporter in `providers`
    /// (provider keys; empty means `google`, which reports every day). Their
    /// `receiving-mx-hostname` is the domain's first MX host, but their `receiving-ip`
    /// is the interceptor's, `receiver`, an address that is none of the domain's MX
    /// addresses (`None`: a stable host in 198.51.100.0/24 chosen by seed and incident,
    /// see [`crate::Scenario::downgrade_receiver`]).
    LowRateDowngrade {
        network: Cidr,
        rate_per_day: u64,
        providers: Vec<String>,
        receiver: Option<IpAddr>,
    },
    /// Steady, long-standing, harmless noise: MX host `mx` (index into
    /// [`crate::DomainProfile::mx_hosts`]; [`IncidentKind::LAST_MX`], the default, and
    /// any index past the end mean the last host) does not offer STARTTLS. Each TLS
    /// report of each reporter in `providers` (provider keys; empty means `google`)
    /// carries `rate_per_day` `starttls-not-supported` failed sessions to that host
    /// (its real `receiving-ip`, `sending-mta-ip` from the reporter's own networks);
    /// the reporter's successful sessions drop by as many.
    LegacyStarttls {
        mx: usize,
        rate_per_day: u64,
        providers: Vec<String>,
    },
    /// The reporter sends no reports (aggregate and TLS) about the domain.
    ReporterSilent { provider: String },
    /// A new unauthenticated source sends as the domain: records from a handful of
    /// addresses in `network` (`None`: a /24 inside one of [`crate::SPOOFERS`], chosen
    /// by seed) with DKIM and SPF failing alignment and the disposition the domain's
    /// policy asks for. `volume_per_day` messages a day are spread over the aggregate
    /// reporters in proportion to their volume ([`crate::Provider::volume`]), so the
    /// reports of one day add up to about that many when all of them report.
    SpoofingCampaign {
        volume_per_day: u64,
        network: Option<Cidr>,
    },
    /// DANE fails: reporters that apply DANE (Microsoft) report `result` (`tlsa-invalid`,
    /// `dnssec-invalid` or `dane-required`) for all their sessions under the `tlsa`
    /// policy. Only for domains that publish TLSA records ([`crate::DomainProfile::dane`]).
    DaneBroken { result: TlsResultType },
}

/// The failure result types of RFC 8460 §4.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsResultType {
    StarttlsNotSupported,
    CertificateHostMismatch,
    CertificateExpired,
    CertificateNotTrusted,
    ValidationFailure,
    TlsaInvalid,
    DnssecInvalid,
    DaneRequired,
    StsPolicyFetchError,
    StsPolicyInvalid,
    StsWebpkiInvalid,
}

impl TlsResultType {
    /// Every result type, in RFC order.
    pub const ALL: [TlsResultType; 11] = [
        TlsResultType::StarttlsNotSupported,
        TlsResultType::CertificateHostMismatch,
        TlsResultType::CertificateExpired,
        TlsResultType::CertificateNotTrusted,
        TlsResultType::ValidationFailure,
        TlsResultType::TlsaInvalid,
        TlsResultType::DnssecInvalid,
        TlsResultType::DaneRequired,
        TlsResultType::StsPolicyFetchError,
        TlsResultType::StsPolicyInvalid,
        TlsResultType::StsWebpkiInvalid,
    ];

    /// The `result-type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsResultType::StarttlsNotSupported => "starttls-not-supported",
            TlsResultType::CertificateHostMismatch => "certificate-host-mismatch",
            TlsResultType::CertificateExpired => "certificate-expired",
            TlsResultType::CertificateNotTrusted => "certificate-not-trusted",
            TlsResultType::ValidationFailure => "validation-failure",
            TlsResultType::TlsaInvalid => "tlsa-invalid",
            TlsResultType::DnssecInvalid => "dnssec-invalid",
            TlsResultType::DaneRequired => "dane-required",
            TlsResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            TlsResultType::StsPolicyInvalid => "sts-policy-invalid",
            TlsResultType::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }

    /// An MTA-STS policy failure (`sts-*`).
    pub fn is_sts(self) -> bool {
        matches!(
            self,
            TlsResultType::StsPolicyFetchError
                | TlsResultType::StsPolicyInvalid
                | TlsResultType::StsWebpkiInvalid
        )
    }

    /// A DANE failure (`tlsa-invalid`, `dnssec-invalid`, `dane-required`).
    pub fn is_dane(self) -> bool {
        matches!(
            self,
            TlsResultType::TlsaInvalid | TlsResultType::DnssecInvalid | TlsResultType::DaneRequired
        )
    }

    /// A failure of the TLS negotiation with an MX host (not of a policy lookup).
    pub fn is_negotiation(self) -> bool {
        !self.is_sts() && !self.is_dane()
    }

    /// The `failure-reason-code` reporters add to this result type, if any.
    pub fn reason_code(self) -> Option<&'static str> {
        match self {
            TlsResultType::ValidationFailure => {
                Some("X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY")
            }
            TlsResultType::CertificateNotTrusted => Some("X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN"),
            _ => None,
        }
    }
}

impl fmt::Display for TlsResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsResultType {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TlsResultType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                SpecError(format!(
                    "unknown TLS result type {s:?} (one of: {})",
                    TlsResultType::ALL.map(TlsResultType::as_str).join(", ")
                ))
            })
    }
}

impl IncidentKind {
    /// [`IncidentKind::LegacyStarttls`]'s `mx` for "the domain's last MX host" (the
    /// default of the text form, which leaves `mx=` out for it).
    pub const LAST_MX: usize = usize::MAX;

    /// The kind's name in the text form (`cert-expired`, `provider-mismatch`, …).
    pub fn name(&self) -> &'static str {
        match self {
            IncidentKind::CertificateExpired { .. } => "cert-expired",
            IncidentKind::ProviderMismatch { .. } => "provider-mismatch",
            IncidentKind::MtaStsBroken { .. } => "mta-sts-broken",
            IncidentKind::LowRateDowngrade { .. } => "downgrade",
            IncidentKind::LegacyStarttls { .. } => "legacy-starttls",
            IncidentKind::ReporterSilent { .. } => "silent",
            IncidentKind::SpoofingCampaign { .. } => "spoofing",
            IncidentKind::DaneBroken { .. } => "dane-broken",
        }
    }
}

impl Incident {
    /// True when the incident affects `domain` on day `day` (counted from the start).
    pub fn active(&self, domain: usize, day: u32) -> bool {
        self.domain == domain && day >= self.from_day && self.to_day.is_none_or(|t| day <= t)
    }
}

/// A malformed incident specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// The keys each kind accepts (besides `domain`, `from` and `to`), for messages.
const KINDS: &[(&str, &[&str])] = &[
    ("cert-expired", &["mx"]),
    ("provider-mismatch", &["provider", "result"]),
    ("mta-sts-broken", &["result"]),
    ("downgrade", &["network", "rate", "provider", "receiver"]),
    ("legacy-starttls", &["mx", "rate", "provider"]),
    ("silent", &["provider"]),
    ("spoofing", &["volume", "network"]),
    ("dane-broken", &["result"]),
];

fn provider_key(value: &str) -> Result<String, SpecError> {
    PROVIDERS
        .iter()
        .find(|p| p.key.eq_ignore_ascii_case(value))
        .map(|p| p.key.to_owned())
        .ok_or_else(|| {
            SpecError(format!(
                "unknown provider {value:?} (one of: {})",
                PROVIDERS
                    .iter()
                    .map(|p| p.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn number<T: FromStr>(key: &str, value: &str) -> Result<T, SpecError> {
    value.parse().map_err(|_| {
        SpecError(format!(
            "{key}={value:?} is not a non-negative whole number"
        ))
    })
}

impl FromStr for Incident {
    type Err = SpecError;

    /// Reads `KIND:key=value,key=value…`. Common keys: `domain` (index, default 0),
    /// `from` (first day, default 0), `to` (last day, inclusive; default: the end).
    /// Kinds and their keys:
    /// - `cert-expired`: `mx` (index, default 0);
    /// - `provider-mismatch`: `provider` (required), `result` (default
    ///   `validation-failure`);
    /// - `mta-sts-broken`: `result` (default `sts-policy-fetch-error`);
    /// - `downgrade`: `network` (required, CIDR), `rate` (sessions a day, default 3),
    ///   `provider` (`google+microsoft`; default `google`), `receiver` (the
    ///   interceptor's IPv4 or IPv6 address, reported as `receiving-ip`; default a host
    ///   in 198.51.100.0/24 chosen by seed);
    /// - `legacy-starttls`: `mx` (index, default: the domain's last MX host; larger
    ///   indices mean the last), `rate` (sessions per report, default 2), `provider`
    ///   (`google+microsoft`; default `google`);
    /// - `silent`: `provider` (required);
    /// - `spoofing`: `volume` (messages a day, default 500), `network` (CIDR, default
    ///   chosen by seed);
    /// - `dane-broken`: `result` (default `tlsa-invalid`).
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let kind = kind.trim().to_ascii_lowercase();
        let Some((_, keys)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            return Err(SpecError(format!(
                "unknown incident kind {kind:?} in {spec:?} (one of: {})",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            )));
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(SpecError(format!("{part:?} in {spec:?} is not key=value")));
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().to_owned();
            if !["domain", "from", "to"].contains(&key.as_str()) && !keys.contains(&key.as_str()) {
                return Err(SpecError(format!(
                    "{kind} has no key {key:?} (keys: domain, from, to, {})",
                    keys.join(", ")
                )));
            }
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(SpecError(format!("{key} given twice in {spec:?}")));
            }
            if value.is_empty() {
                return Err(SpecError(format!("{key} has no value in {spec:?}")));
            }
            pairs.push((key, value));
        }
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let required = |key: &str| {
            get(key).ok_or_else(|| SpecError(format!("{kind} needs {key}= (in {spec:?})")))
        };
        let domain = get("domain").map_or(Ok(0), |v| number("domain", v))?;
        let from_day = get("from").map_or(Ok(0), |v| number("from", v))?;
        let to_day = get("to").map(|v| number("to", v)).transpose()?;
        if let Some(to) = to_day
            && to < from_day
        {
            return Err(SpecError(format!(
                "to={to} is before from={from_day} in {spec:?}"
            )));
        }
        let result = |default: TlsResultType, ok: fn(TlsResultType) -> bool, what: &str| {
            let r = get("result").map_or(Ok(default), str::parse::<TlsResultType>)?;
            if ok(r) {
                Ok(r)
            } else {
                Err(SpecError(format!("{kind} needs {what}, not result={r}")))
            }
        };
        let network = |v: &str| {
            v.parse::<Cidr>()
                .map_err(|e| SpecError(format!("network: {e}")))
        };
        let providers = || {
            get("provider")
                .map(|v| v.split('+').map(provider_key).collect())
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let kind = match kind.as_str() {
            "cert-expired" => IncidentKind::CertificateExpired {
                mx: get("mx").map_or(Ok(0), |v| number("mx", v))?,
            },
            "provider-mismatch" => IncidentKind::ProviderMismatch {
                provider: provider_key(required("provider")?)?,
                result: result(
                    TlsResultType::ValidationFailure,
                    TlsResultType::is_negotiation,
                    "a negotiation failure (e.g. certificate-host-mismatch, validation-failure)",
                )?,
            },
            "mta-sts-broken" => IncidentKind::MtaStsBroken {
                result: result(
                    TlsResultType::StsPolicyFetchError,
                    TlsResultType::is_sts,
                    "an sts-* result",
                )?,
            },
            "downgrade" => IncidentKind::LowRateDowngrade {
                network: network(required("network")?)?,
                rate_per_day: get("rate").map_or(Ok(3), |v| number("rate", v))?,
                providers: providers()?,
                receiver: get("receiver")
                    .map(|v| {
                        v.parse::<IpAddr>().map_err(|_| {
                            SpecError(format!("receiver={v:?} is not an IPv4 or IPv6 address"))
                        })
                    })
                    .transpose()?,
            },
            "legacy-starttls" => IncidentKind::LegacyStarttls {
                mx: get("mx").map_or(Ok(IncidentKind::LAST_MX), |v| number("mx", v))?,
                rate_per_day: get("rate").map_or(Ok(2), |v| number("rate", v))?,
                providers: providers()?,
            },
            "silent" => IncidentKind::ReporterSilent {
                provider: provider_key(required("provider")?)?,
            },
            "spoofing" => IncidentKind::SpoofingCampaign {
                volume_per_day: get("volume").map_or(Ok(500), |v| number("volume", v))?,
                network: get("network").map(network).transpose()?,
            },
            _ => IncidentKind::DaneBroken {
                result: result(
                    TlsResultType::TlsaInvalid,
                    TlsResultType::is_dane,
                    "tlsa-invalid, dnssec-invalid or dane-required",
                )?,
            },
        };
        Ok(Incident {
            kind,
            domain,
            from_day,
            to_day,
        })
    }
}

impl fmt::Display for Incident {
    /// The text form, which [`Incident::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:domain={}", self.kind.name(), self.domain)?;
        match &self.kind {
            IncidentKind::CertificateExpired { mx } => write!(f, ",mx={mx}")?,
            IncidentKind::ProviderMismatch { provider, result } => {
                write!(f, ",provider={provider},result={result}")?
            }
            IncidentKind::MtaStsBroken { result } | IncidentKind::DaneBroken { result } => {
                write!(f, ",result={result}")?
            }
            IncidentKind::LowRateDowngrade {
                network,
                rate_per_day,
                providers,
                receiver,
            } => {
                write!(f, ",network={network},rate={rate_per_day}")?;
                if !providers.is_empty() {
                    write!(f, ",provider={}", providers.join("+"))?;
                }
                if let Some(ip) = receiver {
                    write!(f, ",receiver={ip}")?;
                }
            }
            IncidentKind::LegacyStarttls {
                mx,
                rate_per_day,
                providers,
            } => {
                if *mx != IncidentKind::LAST_MX {
                    write!(f, ",mx={mx}")?;
                }
                write!(f, ",rate={rate_per_day}")?;
                if !providers.is_empty() {
                    write!(f, ",provider={}", providers.join("+"))?;
                }
            }
            IncidentKind::ReporterSilent { provider } => write!(f, ",provider={provider}")?,
            IncidentKind::SpoofingCampaign {
                volume_per_day,
                network,
            } => {
                write!(f, ",volume={volume_per_day}")?;
                if let Some(n) = network {
                    write!(f, ",network={n}")?;
                }
            }
        }
        write!(f, ",from={}", self.from_day)?;
        if let Some(to) = self.to_day {
            write!(f, ",to={to}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Incident, String> {
        s.parse::<Incident>().map_err(|e| e.to_string())
    }

    #[test]
    fn specs_parse() {
        assert_eq!(
            parse("cert-expired:domain=0,mx=1,from=14"),
            Ok(Incident {
                kind: IncidentKind::CertificateExpired { mx: 1 },
                domain: 0,
                from_day: 14,
                to_day: None,
            })
        );
        assert_eq!(
            parse("provider-mismatch:domain=1,provider=Google,from=7,to=9").map(|i| i.kind),
            Ok(IncidentKind::ProviderMismatch {
                provider: "google".into(),
                result: TlsResultType::ValidationFailure
            })
        );
        assert_eq!(
            parse("mta-sts-broken:domain=2,result=sts-webpki-invalid,from=10").map(|i| i.kind),
            Ok(IncidentKind::MtaStsBroken {
                result: TlsResultType::StsWebpkiInvalid
            })
        );
        assert_eq!(
            parse("downgrade:domain=0,network=203.0.113.0/24,rate=3,provider=google+microsoft")
                .map(|i| i.kind),
            Ok(IncidentKind::LowRateDowngrade {
                network: Cidr::v4([203, 0, 113, 0], 24),
                rate_per_day: 3,
                providers: vec!["google".into(), "microsoft".into()],
                receiver: None,
            })
        );
        assert_eq!(
            parse("silent:domain=3,provider=microsoft,from=20").map(|i| i.kind),
            Ok(IncidentKind::ReporterSilent {
                provider: "microsoft".into()
            })
        );
        assert_eq!(
            parse(" spoofing: domain=4, volume=500, from=21 ").map(|i| (i.kind, i.from_day)),
            Ok((
                IncidentKind::SpoofingCampaign {
                    volume_per_day: 500,
                    network: None
                },
                21
            ))
        );
        assert_eq!(
            parse("dane-broken:result=dnssec-invalid").map(|i| i.kind),
            Ok(IncidentKind::DaneBroken {
                result: TlsResultType::DnssecInvalid
            })
        );
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "cert-expired:domain=0,mx=1,from=14",
            "provider-mismatch:domain=1,provider=google,result=certificate-host-mismatch,from=7,to=9",
            "downgrade:domain=0,network=203.0.113.0/24,rate=3,provider=google+mailru,from=0",
            "downgrade:domain=1,network=203.0.113.0/24,rate=3,receiver=2001:db8::25,from=2",
            "legacy-starttls:domain=2,rate=2,from=0",
            "legacy-starttls:domain=2,mx=1,rate=5,provider=google+microsoft,from=3,to=9",
            "spoofing:domain=4,volume=500,network=185.12.7.0/24,from=21",
            "silent:domain=3,provider=microsoft,from=20",
        ] {
            let incident = parse(spec).expect(spec);
            assert_eq!(incident.to_string(), spec);
            assert_eq!(parse(&incident.to_string()), Ok(incident));
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let cases = [
            ("meteor:domain=1", "unknown incident kind \"meteor\""),
            ("cert-expired:domain=x", "domain=\"x\" is not"),
            (
                "cert-expired:domain=1,provider=google",
                "cert-expired has no key \"provider\"",
            ),
            (
                "cert-expired:mx",
                "\"mx\" in \"cert-expired:mx\" is not key=value",
            ),
            ("silent:domain=1", "silent needs provider="),
            ("silent:provider=hotmail", "unknown provider \"hotmail\""),
            (
                "downgrade:network=300.1.1.0/24",
                "network: \"300.1.1.0/24\" is not a network",
            ),
            (
                "mta-sts-broken:result=certificate-expired",
                "needs an sts-* result",
            ),
            (
                "provider-mismatch:provider=google,result=bogus",
                "unknown TLS result type",
            ),
            ("cert-expired:from=9,to=3", "to=3 is before from=9"),
            ("cert-expired:mx=1,mx=2", "mx given twice"),
            ("cert-expired:mx=", "mx has no value"),
        ];
        for (spec, needle) in cases {
            let err = parse(spec).expect_err(spec);
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
