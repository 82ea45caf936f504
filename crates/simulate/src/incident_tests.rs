//! Incidents show up in the reports of the right days, domains and providers, and
//! nowhere else: every other report is byte for byte the healthy scenario's.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::{
    Cidr, Incident, IncidentKind, PROVIDERS, ReportPlan, ReportingHabit, SERVICES, SPOOFERS,
    Scenario, ScenarioConfig, TlsResultType, write_scenario_emails,
};

const DAYS: u32 = 21;

fn config(incidents: Vec<Incident>) -> ScenarioConfig {
    ScenarioConfig {
        seed: 11,
        domains: 12,
        days: Some(DAYS),
        incidents,
        ..ScenarioConfig::default()
    }
}

fn healthy() -> Scenario {
    Scenario::new(config(Vec::new()))
}

fn with(incident: Incident) -> Scenario {
    Scenario::try_new(config(vec![incident])).expect("incident fits")
}

fn incident(kind: IncidentKind, domain: usize, from_day: u32, to_day: Option<u32>) -> Incident {
    Incident {
        kind,
        domain,
        from_day,
        to_day,
    }
}

fn day(s: &Scenario, plan: &ReportPlan) -> u32 {
    s.day_of(plan.day)
}

/// The TLS report of `plan` as rendered JSON (decoded from its email).
fn tls_json(s: &Scenario, plan: &ReportPlan) -> Option<Value> {
    let email = s.tls_email(plan).expect("render")?;
    let text = String::from_utf8(email.bytes).expect("ascii");
    let part = text
        .split("Content-Type: application/tlsrpt+gzip")
        .nth(1)
        .expect("attachment");
    let body = part.split("\r\n\r\n").nth(1).expect("body");
    let b64: String = body
        .split("\r\n")
        .take_while(|l| !l.starts_with("--"))
        .collect();
    let gz = STANDARD.decode(b64).expect("base64");
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut json)
        .expect("gunzip");
    Some(serde_json::from_slice(&json).expect("json"))
}

fn policy(v: &Value) -> &Value {
    &v["policies"][0]
}

fn details(v: &Value) -> Vec<Value> {
    policy(v)["failure-details"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn count(v: &Value, key: &str) -> u64 {
    policy(v)["summary"][key].as_u64().expect("count")
}

fn in_ranges(ranges: &[Cidr], ip: &str) -> bool {
    let ip: IpAddr = ip.parse().expect("ip");
    ranges.iter().any(|r| r.contains(ip))
}

/// Checks every plan of the scenario with `incident`: affected ones with `check`, all
/// others against the healthy scenario, byte for byte.
fn compare(
    inc: &Incident,
    affected: impl Fn(&Scenario, &ReportPlan) -> bool,
    mut check: impl FnMut(&Scenario, &ReportPlan),
) -> usize {
    let base = healthy();
    let s = with(inc.clone());
    let mut hits = 0;
    for plan in s.plans() {
        if affected(&s, &plan) {
            hits += 1;
            check(&s, &plan);
        } else {
            assert_eq!(
                s.aggregate_email(&plan).expect("render"),
                base.aggregate_email(&plan).expect("render"),
                "{plan:?}"
            );
            assert_eq!(
                s.tls_email(&plan).expect("render"),
                base.tls_email(&plan).expect("render"),
                "{plan:?}"
            );
        }
    }
    hits
}

/// Every MX address of domain `d`.
fn mx_ips(s: &Scenario, d: usize) -> Vec<String> {
    (0..s.domains()[d].mx_hosts.len())
        .map(|mx| s.mx_ip(d, mx).to_string())
        .collect()
}

/// The failure details `plan`'s TLS report has on top of the healthy scenario's (which
/// come first, unchanged).
fn added_details(s: &Scenario, plan: &ReportPlan) -> Vec<Value> {
    let v = tls_json(s, plan).expect("tls report");
    let base = tls_json(&healthy(), plan).expect("tls report");
    let (all, before) = (details(&v), details(&base));
    assert_eq!(all[..before.len()], before[..], "{v}");
    all[before.len()..].to_vec()
}

fn domain_with_mx(s: &Scenario, n: usize) -> usize {
    s.domains()
        .iter()
        .position(|d| d.mx_hosts.len() >= n)
        .expect("a domain with enough MX hosts")
}

#[test]
fn a_healthy_scenario_looks_healthy() {
    let s = healthy();
    let (mut ok, mut failed) = (0, 0);
    let mut seen: HashSet<(usize, usize, u32)> = HashSet::new();
    let mut pass_by_day: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for plan in s.plans() {
        seen.insert((plan.domain, plan.provider, day(&s, &plan)));
        if let Some(r) = s.tls_report(&plan) {
            ok += r.successful_sessions();
            failed += r.failed_sessions();
        }
        let agg = s.aggregate(&plan);
        let e = pass_by_day.entry(day(&s, &plan)).or_default();
        for rec in &agg.records {
            e.1 += rec.count;
            if rec.dkim == "pass" || rec.spf == "pass" {
                e.0 += rec.count;
            }
        }
    }
    assert!(ok > 10_000, "{ok}");
    assert!((failed as f64) < ok as f64 * 0.002, "{failed} of {ok}");
    // Every provider reports on its habitual days, and daily ones every day.
    let mut daily = 0;
    for d in 0..s.domains().len() {
        for p in 0..PROVIDERS.len() {
            let habit = s.habit(d, p);
            for day in 0..DAYS {
                let date = s.date_of(day);
                let expected = match habit {
                    ReportingHabit::Daily => true,
                    ReportingHabit::Weekdays => {
                        chrono::Datelike::weekday(&date).number_from_monday() <= 5
                    }
                    ReportingHabit::Sporadic(_) => continue,
                };
                assert_eq!(seen.contains(&(d, p, day)), expected, "{d} {p} {day}");
            }
            daily += usize::from(habit == ReportingHabit::Daily);
        }
    }
    assert!(daily >= 2 * s.domains().len(), "{daily}");
    let rates: Vec<f64> = pass_by_day
        .values()
        .map(|(pass, all)| *pass as f64 / *all as f64)
        .collect();
    let (lo, hi) = rates
        .iter()
        .fold((1.0f64, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    assert!(lo > 0.6 && hi - lo < 0.15, "{rates:?}");
}

#[test]
fn incidents_do_not_change_the_days_before_them() {
    let all = vec![
        "cert-expired:domain=0,from=10",
        "provider-mismatch:domain=1,provider=google,from=10",
        "mta-sts-broken:domain=2,from=10",
        "downgrade:domain=3,network=203.0.113.0/24,from=10",
        "silent:domain=4,provider=google,from=10",
        "spoofing:domain=5,volume=800,from=10",
        "legacy-starttls:domain=6,provider=google+microsoft+mailru,from=10",
        "downgrade:domain=7,network=192.0.2.0/24,receiver=198.51.100.77,from=10",
    ]
    .into_iter()
    .map(|s| s.parse().expect("spec"))
    .collect();
    let s = Scenario::try_new(config(all)).expect("fits");
    let base = healthy();
    let before = |p: &ReportPlan| s.day_of(p.day) < 10;
    let a: Vec<ReportPlan> = s.plans().take_while(before).collect();
    let b: Vec<ReportPlan> = base.plans().take_while(before).collect();
    assert_eq!(a, b);
    for plan in &a {
        assert_eq!(
            s.aggregate_email(plan).expect("render"),
            base.aggregate_email(plan).expect("render")
        );
        assert_eq!(
            s.tls_email(plan).expect("render"),
            base.tls_email(plan).expect("render")
        );
    }
    assert!(s.plans().count() < base.plans().count());
}

#[test]
fn certificate_expiry_hits_one_mx_for_every_tls_reporter() {
    let d = domain_with_mx(&healthy(), 2);
    let inc = incident(IncidentKind::CertificateExpired { mx: 1 }, d, 5, Some(9));
    let mut reporters = HashSet::new();
    let hits = compare(
        &inc,
        |s, p| p.domain == d && (5..=9).contains(&day(s, p)) && p.provider().tls.is_some(),
        |s, p| {
            let v = tls_json(s, p).expect("tls report");
            let host = &s.domains()[d].mx_hosts[1];
            let mx_ip = s.mx_ip(d, 1).to_string();
            let expired: Vec<Value> = details(&v)
                .into_iter()
                .filter(|f| f["result-type"] == "certificate-expired")
                .collect();
            assert!(!expired.is_empty(), "{v}");
            for f in &expired {
                assert_eq!(f["receiving-mx-hostname"], host.as_str());
                assert_eq!(f["receiving-ip"], mx_ip.as_str());
                let ip = f["sending-mta-ip"].as_str().expect("sending ip");
                assert!(in_ranges(p.provider().sending_ranges, ip), "{ip}");
            }
            let base = healthy().tls_report(p).expect("tls");
            let lost: u64 = expired
                .iter()
                .map(|f| f["failed-session-count"].as_u64().unwrap_or(0))
                .sum();
            assert!(lost >= 1);
            let ok = count(&v, "total-successful-session-count");
            assert!(ok <= base.successful_sessions() && ok + lost >= base.successful_sessions());
            reporters.insert(p.provider().key);
        },
    );
    assert!(hits >= 10, "{hits}");
    assert!(reporters.contains("google") && reporters.contains("microsoft"));
}

#[test]
fn a_provider_mismatch_fails_only_that_provider() {
    let inc: Incident = "provider-mismatch:domain=2,provider=microsoft,from=3,to=12"
        .parse()
        .expect("spec");
    let hits = compare(
        &inc,
        |s, p| p.domain == 2 && (3..=12).contains(&day(s, p)) && p.provider().key == "microsoft",
        |s, p| {
            let v = tls_json(s, p).expect("tls report");
            assert_eq!(count(&v, "total-successful-session-count"), 0);
            assert!(count(&v, "total-failure-session-count") > 0);
            for f in details(&v) {
                assert_eq!(f["result-type"], "validation-failure");
                assert_eq!(
                    f["failure-reason-code"],
                    "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
                );
            }
        },
    );
    assert_eq!(hits, 10);
}

#[test]
fn a_broken_mta_sts_policy_is_reported_in_its_mode() {
    let s = healthy();
    let d = (0..s.domains().len())
        .find(|&d| !s.domains()[d].dane)
        .expect("a domain without DANE");
    let mode = s.domains()[d].sts_mode;
    let inc = incident(
        IncidentKind::MtaStsBroken {
            result: TlsResultType::StsPolicyInvalid,
        },
        d,
        7,
        None,
    );
    let hits = compare(
        &inc,
        |s, p| p.domain == d && day(s, p) >= 7 && p.provider().tls.is_some(),
        |s, p| {
            let v = tls_json(s, p).expect("tls report");
            assert_eq!(policy(&v)["policy"]["policy-type"], "sts");
            let strings = policy(&v)["policy"]["policy-string"].to_string();
            assert!(strings.contains(&format!("mode: {mode}")), "{strings}");
            let sts: Vec<Value> = details(&v)
                .into_iter()
                .filter(|f| f["result-type"] == "sts-policy-invalid")
                .collect();
            assert_eq!(sts.len(), 1, "{v}");
            assert_eq!(count(&v, "total-successful-session-count"), 0);
            let bare = p.provider().tls.is_some_and(|t| t.bare_fetch_errors);
            assert_eq!(sts[0].get("sending-mta-ip").is_none(), bare);
        },
    );
    assert!(hits >= 14, "{hits}");
}

#[test]
fn a_low_rate_downgrade_comes_from_its_network_every_day() {
    let net: Cidr = "203.0.113.0/24".parse().expect("cidr");
    let inc = incident(
        IncidentKind::LowRateDowngrade {
            network: net,
            rate_per_day: 3,
            providers: Vec::new(),
            receiver: None,
        },
        0,
        0,
        None,
    );
    let receiver = with(inc.clone())
        .downgrade_receiver(&inc)
        .expect("receiver")
        .to_string();
    assert!(Scenario::DOWNGRADE_RECEIVERS.contains(receiver.parse().expect("ip")));
    let mut days = HashSet::new();
    compare(
        &inc,
        |_, p| p.domain == 0 && p.provider().key == "google",
        |s, p| {
            let v = tls_json(s, p).expect("tls report");
            let down: Vec<Value> = details(&v)
                .into_iter()
                .filter(|f| {
                    f["sending-mta-ip"]
                        .as_str()
                        .is_some_and(|ip| net.contains(ip.parse().expect("ip")))
                })
                .collect();
            assert_eq!(down.len(), 1, "{v}");
            assert_eq!(down[0]["result-type"], "starttls-not-supported");
            assert_eq!(down[0]["failed-session-count"], 3);
            assert_eq!(down[0]["receiving-mx-hostname"], s.domains()[0].mx_hosts[0]);
            assert_eq!(down[0]["receiving-ip"], receiver.as_str());
            assert!(!mx_ips(s, 0).contains(&receiver), "{receiver}");
            assert!(!in_ranges(
                p.provider().sending_ranges,
                down[0]["sending-mta-ip"].as_str().unwrap_or_default()
            ));
            days.insert(day(s, p));
        },
    );
    assert_eq!(days.len(), DAYS as usize);
}

#[test]
fn a_downgrade_is_answered_by_a_foreign_receiver() {
    // No MX address of any domain can be a default receiver: mx_ip draws from the
    // hosting services' networks, and none of them overlaps the receivers' network.
    let net = Scenario::DOWNGRADE_RECEIVERS;
    for service in &SERVICES {
        for r in service.ranges {
            assert!(
                !r.contains(net.nth(0)) && !net.contains(r.nth(0)),
                "{} {r}",
                service.key
            );
        }
    }
    let base = healthy();
    for d in 0..base.domains().len() {
        let inc: Incident = format!("downgrade:domain={d},network=203.0.113.0/24")
            .parse()
            .expect("spec");
        let ip = base.downgrade_receiver(&inc).expect("receiver");
        assert!(net.contains(ip), "{ip}");
        assert_eq!(base.downgrade_receiver(&inc), Some(ip), "stable");
        for other in 0..base.domains().len() {
            assert!(!mx_ips(&base, other).contains(&ip.to_string()), "{ip}");
        }
    }
    // A given receiver is used as is, IPv6 included, from its first day.
    let spec = "downgrade:domain=2,network=203.0.113.0/24,rate=4,provider=microsoft,\
                receiver=2001:db8:5::25,from=6";
    let inc: Incident = spec.parse().expect("spec");
    let IncidentKind::LowRateDowngrade { receiver, .. } = &inc.kind else {
        panic!("{inc:?}");
    };
    assert_eq!(
        receiver.map(|ip| ip.to_string()).as_deref(),
        Some("2001:db8:5::25")
    );
    let hits = compare(
        &inc,
        |s, p| p.domain == 2 && day(s, p) >= 6 && p.provider().key == "microsoft",
        |s, p| {
            let added = added_details(s, p);
            assert_eq!(added.len(), 1, "{added:?}");
            assert_eq!(added[0]["result-type"], "starttls-not-supported");
            assert_eq!(added[0]["failed-session-count"], 4);
            assert_eq!(added[0]["receiving-ip"], "2001:db8:5::25");
            assert_eq!(
                added[0]["receiving-mx-hostname"],
                s.domains()[2].mx_hosts[0]
            );
        },
    );
    assert!(hits >= 10, "{hits}");
    // An MX address is no interceptor.
    let mx = base.mx_ip(2, 0);
    let inc: Incident = format!("downgrade:domain=2,network=203.0.113.0/24,receiver={mx}")
        .parse()
        .expect("spec");
    let err = Scenario::try_new(config(vec![inc]))
        .expect_err("an MX address")
        .to_string();
    assert!(err.contains("needs a foreign address"), "{err}");
}

#[test]
fn a_legacy_mx_without_starttls_is_steady_noise() {
    let d = domain_with_mx(&healthy(), 2);
    let inc: Incident =
        format!("legacy-starttls:domain={d},mx=1,rate=3,provider=google+mailru,from=4")
            .parse()
            .expect("spec");
    let mut days: BTreeMap<&str, HashSet<u32>> = BTreeMap::new();
    let hits = compare(
        &inc,
        |s, p| p.domain == d && day(s, p) >= 4 && ["google", "mailru"].contains(&p.provider().key),
        |s, p| {
            let added = added_details(s, p);
            assert_eq!(added.len(), 1, "{added:?}");
            let f = &added[0];
            assert_eq!(f["result-type"], "starttls-not-supported");
            assert_eq!(f["failed-session-count"], 3);
            assert_eq!(f["receiving-mx-hostname"], s.domains()[d].mx_hosts[1]);
            assert_eq!(f["receiving-ip"], s.mx_ip(d, 1).to_string());
            let ip = f["sending-mta-ip"].as_str().expect("sending ip");
            assert!(in_ranges(p.provider().sending_ranges, ip), "{ip}");
            let v = tls_json(s, p).expect("tls report");
            let base = healthy().tls_report(p).expect("tls");
            assert_eq!(
                count(&v, "total-successful-session-count"),
                base.successful_sessions().saturating_sub(3)
            );
            assert_eq!(
                count(&v, "total-failure-session-count"),
                base.failed_sessions() + 3
            );
            days.entry(p.provider().key).or_default().insert(day(s, p));
        },
    );
    assert!(hits >= DAYS as usize - 4, "{hits}");
    // Google reports every day, so the noise is there every day from the first.
    assert_eq!(days["google"], (4..DAYS).collect());

    // Defaults: the domain's last MX host, two sessions, Google only, from day 0.
    let s = healthy();
    let d = domain_with_mx(&s, 3);
    let last = s.domains()[d].mx_hosts.len() - 1;
    for spec in [
        format!("legacy-starttls:domain={d}"),
        format!("legacy-starttls:domain={d},mx=99"),
    ] {
        let inc: Incident = spec.parse().expect("spec");
        assert_eq!(with(inc.clone()).legacy_mx(&inc), Some(last));
        let mut google_days = HashSet::new();
        compare(
            &inc,
            |_, p| p.domain == d && p.provider().key == "google",
            |s, p| {
                let added = added_details(s, p);
                assert_eq!(added.len(), 1, "{added:?}");
                assert_eq!(added[0]["failed-session-count"], 2);
                assert_eq!(
                    added[0]["receiving-mx-hostname"],
                    s.domains()[d].mx_hosts[last]
                );
                assert_eq!(added[0]["receiving-ip"], s.mx_ip(d, last).to_string());
                google_days.insert(day(s, p));
            },
        );
        assert_eq!(google_days.len(), DAYS as usize, "{spec}");
    }
}

#[test]
fn new_incident_keys_parse_and_unknown_keys_are_refused() {
    let parse = |s: &str| s.parse::<Incident>().map_err(|e| e.to_string());
    assert_eq!(
        parse("downgrade:network=203.0.113.0/24,receiver=192.0.2.25").map(|i| i.kind),
        Ok(IncidentKind::LowRateDowngrade {
            network: "203.0.113.0/24".parse().expect("cidr"),
            rate_per_day: 3,
            providers: Vec::new(),
            receiver: Some("192.0.2.25".parse().expect("ip")),
        })
    );
    assert_eq!(
        parse("legacy-starttls:domain=3,mx=1,rate=7,provider=google+Microsoft,from=5")
            .map(|i| (i.kind, i.domain, i.from_day)),
        Ok((
            IncidentKind::LegacyStarttls {
                mx: 1,
                rate_per_day: 7,
                providers: vec!["google".into(), "microsoft".into()],
            },
            3,
            5
        ))
    );
    assert_eq!(
        parse("legacy-starttls").map(|i| (i.kind, i.from_day)),
        Ok((
            IncidentKind::LegacyStarttls {
                mx: IncidentKind::LAST_MX,
                rate_per_day: 2,
                providers: Vec::new(),
            },
            0
        ))
    );
    for (spec, needle) in [
        (
            "downgrade:network=203.0.113.0/24,receiver=mx.example",
            "receiver=\"mx.example\" is not an IPv4 or IPv6 address",
        ),
        (
            "downgrade:network=203.0.113.0/24,receiver=198.51.100.0/24",
            "is not an IPv4 or IPv6 address",
        ),
        (
            "legacy-starttls:network=203.0.113.0/24",
            "legacy-starttls has no key \"network\" (keys: domain, from, to, mx, rate, provider)",
        ),
        (
            "legacy-starttls:receiver=192.0.2.1",
            "legacy-starttls has no key \"receiver\"",
        ),
        (
            "cert-expired:receiver=192.0.2.1",
            "cert-expired has no key \"receiver\"",
        ),
        ("legacy-starttls:mx=last", "mx=\"last\" is not"),
        ("legacy-starttls:rate=-1", "rate=\"-1\" is not"),
        (
            "legacy-starttls:provider=hotmail",
            "unknown provider \"hotmail\"",
        ),
    ] {
        let err = parse(spec).expect_err(spec);
        assert!(err.contains(needle), "{spec}: {err}");
    }
    let unknown = parse("meteor:domain=1").expect_err("unknown kind");
    assert!(unknown.contains("legacy-starttls"), "{unknown}");
    for (spec, needle) in [
        ("legacy-starttls:rate=0", "rate must be at least 1"),
        (
            "legacy-starttls:provider=yahoo",
            "yahoo sends no TLS reports",
        ),
    ] {
        let inc: Incident = spec.parse().expect("spec");
        let err = Scenario::try_new(config(vec![inc]))
            .expect_err(spec)
            .to_string();
        assert!(err.contains(needle), "{spec}: {err}");
    }
}

#[test]
fn new_incidents_are_described() {
    let s = healthy();
    let d = domain_with_mx(&s, 2);
    let inc: Incident = format!("legacy-starttls:domain={d},mx=1")
        .parse()
        .expect("spec");
    let text = s.describe(&inc);
    assert!(text.contains(&s.domains()[d].mx_hosts[1]), "{text}");
    assert!(text.contains(&s.mx_ip(d, 1).to_string()), "{text}");
    let inc: Incident = "downgrade:domain=0,network=203.0.113.0/24,receiver=192.0.2.9"
        .parse()
        .expect("spec");
    let text = s.describe(&inc);
    assert!(text.contains("192.0.2.9"), "{text}");
}

#[test]
fn a_silent_reporter_sends_nothing_from_its_day() {
    let inc: Incident = "silent:domain=1,provider=google,from=8"
        .parse()
        .expect("spec");
    let s = with(inc.clone());
    let base = healthy();
    let google = PROVIDERS
        .iter()
        .position(|p| p.key == "google")
        .expect("google");
    let expected: Vec<ReportPlan> = base
        .plans()
        .filter(|p| !(p.domain == 1 && p.provider == google && base.day_of(p.day) >= 8))
        .collect();
    assert_eq!(s.plans().collect::<Vec<_>>(), expected);
    assert!(
        base.plans()
            .any(|p| p.domain == 1 && p.provider == google && base.day_of(p.day) == 20)
    );
    assert!(
        expected
            .iter()
            .any(|p| p.domain == 1 && p.provider == google && base.day_of(p.day) == 7)
    );
    compare(&inc, |_, _| false, |_, _| {});
}

#[test]
fn a_spoofing_campaign_adds_a_failing_source_at_volume() {
    let d = 3;
    let inc = incident(
        IncidentKind::SpoofingCampaign {
            volume_per_day: 1000,
            network: None,
        },
        d,
        14,
        None,
    );
    let s = with(inc.clone());
    let net = s.campaign_network(&inc).expect("network");
    assert!(SPOOFERS.iter().any(|sp| sp.contains(net.nth(1))), "{net}");
    let policy = s.domains()[d].p;
    let pct = s.domains()[d].pct;
    let mut per_day: BTreeMap<u32, u64> = BTreeMap::new();
    compare(
        &inc,
        |s, p| p.domain == d && day(s, p) >= 14,
        |s, p| {
            let agg = s.aggregate(p);
            let xml = agg.to_xml(&p.provider().xml);
            let campaign: Vec<_> = agg
                .records
                .iter()
                .filter(|r| net.contains(r.source_ip.parse().expect("ip")))
                .collect();
            assert!(!campaign.is_empty());
            for r in &campaign {
                assert!(xml.contains(&format!("<source_ip>{}</source_ip>", r.source_ip)));
                assert_eq!((r.dkim.as_str(), r.spf.as_str()), ("fail", "fail"));
                let sampled = r.reasons.iter().any(|x| x.kind == "sampled_out");
                if !sampled {
                    assert_eq!(r.disposition, policy);
                } else {
                    assert!(pct < 100);
                }
            }
            *per_day.entry(day(s, p)).or_default() += campaign.iter().map(|r| r.count).sum::<u64>();
        },
    );
    assert_eq!(per_day.len(), (DAYS - 14) as usize);
    // Google and Microsoft alone see about 40 % of the volume every day.
    assert!(per_day.values().all(|&n| n >= 300), "{per_day:?}");
}

#[test]
fn dane_failures_come_from_dane_validators_only() {
    let base = healthy();
    let Some(d) = (0..base.domains().len()).find(|&d| base.domains()[d].dane) else {
        return;
    };
    let inc: Incident = format!("dane-broken:domain={d},result=tlsa-invalid,from=2")
        .parse()
        .expect("spec");
    let hits = compare(
        &inc,
        |s, p| p.domain == d && day(s, p) >= 2 && p.provider().tls.is_some_and(|t| t.dane),
        |s, p| {
            let v = tls_json(s, p).expect("tls report");
            assert_eq!(policy(&v)["policy"]["policy-type"], "tlsa");
            assert!(
                details(&v)
                    .iter()
                    .any(|f| f["result-type"] == "tlsa-invalid")
            );
        },
    );
    assert!(hits > 0);
}

#[test]
fn incidents_that_do_not_fit_are_refused() {
    let s = healthy();
    let single_mx = s
        .domains()
        .iter()
        .position(|d| d.mx_hosts.len() == 1)
        .unwrap_or(0);
    let no_dane = s.domains().iter().position(|d| !d.dane).unwrap_or(0);
    for (spec, needle) in [
        ("cert-expired:domain=12".to_owned(), "no domain 12"),
        (format!("cert-expired:domain={single_mx},mx=5"), "no mx 5"),
        (
            "silent:provider=yahoo,from=21".to_owned(),
            "starts on day 21",
        ),
        (
            "provider-mismatch:provider=yahoo".to_owned(),
            "yahoo sends no TLS reports",
        ),
        (
            format!("dane-broken:domain={no_dane}"),
            "publishes no TLSA records",
        ),
        (
            "downgrade:network=192.0.2.0/24,rate=0".to_owned(),
            "rate must be at least 1",
        ),
    ] {
        let inc: Incident = spec.parse().expect("spec");
        let err = Scenario::try_new(config(vec![inc]))
            .expect_err(&spec)
            .to_string();
        assert!(err.contains(needle), "{spec}: {err}");
    }
}

#[test]
fn scenarios_are_written_one_email_per_report() {
    let dir = std::env::temp_dir().join(format!("sealwatch-sim-{}", std::process::id()));
    let s = Scenario::new(ScenarioConfig {
        domains: 3,
        days: Some(4),
        ..config(Vec::new())
    });
    let stats = write_scenario_emails(&s, &dir).expect("write");
    let plans: Vec<ReportPlan> = s.plans().collect();
    let tls = plans.iter().filter(|p| p.provider().tls.is_some()).count() as u64;
    assert_eq!(stats.dmarc_reports, plans.len() as u64);
    assert_eq!(stats.tls_reports, tls);
    assert_eq!(stats.files, stats.dmarc_reports + stats.tls_reports);
    assert_eq!(stats.days, 4);
    let mut on_disk = 0;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            chrono::NaiveDate::parse_from_str(&name, "%Y-%m-%d").is_ok(),
            "{name}"
        );
        on_disk += std::fs::read_dir(entry.path()).expect("day").count() as u64;
    }
    assert_eq!(on_disk, stats.files);
    let again = write_scenario_emails(&s, &dir).expect("write again");
    assert_eq!(again, stats);
    let _ = std::fs::remove_dir_all(&dir);
    let endless = Scenario::new(ScenarioConfig {
        days: None,
        ..config(Vec::new())
    });
    assert!(write_scenario_emails(&endless, &dir).is_err());
}
