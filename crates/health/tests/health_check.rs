//! The health check against real servers: NSD serving tests/servers/dns/*.zone and the HTTPS
//! listeners serving tests/servers/https/www (see tests/servers/README.md). Each broken zone
//! must be found with the right check id, severity and advice; the perfect one scores 100.

mod servers;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use sealwatch_health::{
    Change, CheckId, Grade, MtaStsState, Observed, Severity, TlsRptState, diff,
};
use servers::{advice, check, check_with, config, finding, listing};

#[tokio::test]
async fn the_perfect_domain_scores_full_marks() {
    let r = check("perfect.test").await;
    assert_eq!(r.score, 100, "findings:\n{}", listing(&r));
    assert_eq!(r.grade, Grade::A);
    assert!(r.complete);
    assert_eq!(r.mta_sts, MtaStsState::Enforce);
    assert_eq!(r.tls_rpt, TlsRptState::Present);
    assert_eq!(r.mx.len(), 2);
    assert_eq!(r.mx[0].host, "mx1.perfect.test");
    assert_eq!(r.mx[0].addresses.len(), 2);
    for id in [
        CheckId::MxOk,
        CheckId::SpfOk,
        CheckId::DmarcOk,
        CheckId::DkimOk,
        CheckId::MtaStsOk,
        CheckId::TlsRptOk,
        CheckId::BimiOk,
        CheckId::BlocklistClean,
    ] {
        assert_eq!(finding(&r, id).severity, Severity::Ok, "{id}");
    }
    // both DKIM keys: the 2048-bit RSA and the Ed25519 one
    assert_eq!(r.findings_for(CheckId::DkimOk).count(), 2);
    // the wildcard blocklist is detected and ignored, not taken as a listing
    assert_eq!(
        finding(&r, CheckId::BlocklistUnusable).severity,
        Severity::Info
    );
    assert!(!r.has(CheckId::BlocklistMxListed));
    assert!(r.findings.iter().all(|f| f.fixes.is_empty()));
    // the observed records include the policy file
    let policy = r
        .records
        .iter()
        .find(|o| o.rtype == "POLICY")
        .expect("policy observed");
    assert!(matches!(&policy.observed, Observed::Found(v) if v[0].contains("mode: enforce")));
    // and the report serialises with the stable ids
    let json = serde_json::to_value(&r).expect("serialises");
    assert_eq!(json["grade"], "A");
    assert_eq!(json["findings"][0]["check"], "mx-ok");
}

/// Asserts that `domain` has a finding `id` with `severity` whose advice (or, without
/// advice, explanation and summary) contains every `needle`.
async fn assert_finding(domain: &str, id: CheckId, severity: Severity, needles: &[&str]) {
    let r = check(domain).await;
    let f = finding(&r, id);
    assert_eq!(f.severity, severity, "{domain} {id}:\n{}", listing(&r));
    let text = format!("{}\n{}\n{}", advice(f), f.summary, f.explanation);
    for n in needles {
        assert!(text.contains(n), "{domain} {id}: {n:?} not in\n{text}");
    }
    assert!(
        r.score < 100 || severity == Severity::Info,
        "{domain}: score {}",
        r.score
    );
    assert!(!f.explanation.is_empty());
}

#[tokio::test]
async fn two_spf_records() {
    assert_finding(
        "spf-double.test",
        CheckId::SpfMultiple,
        Severity::Critical,
        &["spf-double.test. IN TXT \"v=spf1 mx include:_spf.spf-double.test -all\""],
    )
    .await;
}

#[tokio::test]
async fn spf_with_eleven_lookups() {
    assert_finding(
        "spf-lookups.test",
        CheckId::SpfTooManyLookups,
        Severity::Critical,
        &[
            "11 DNS lookups",
            "include:_i10.spf-lookups.test (1)",
            "permerror",
        ],
    )
    .await;
}

#[tokio::test]
async fn spf_plus_all() {
    assert_finding(
        "spf-plusall.test",
        CheckId::SpfPassAll,
        Severity::Critical,
        &["spf-plusall.test. IN TXT \"v=spf1 mx -all\""],
    )
    .await;
}

#[tokio::test]
async fn spf_void_lookups() {
    assert_finding(
        "spf-voids.test",
        CheckId::SpfTooManyVoidLookups,
        Severity::Critical,
        &["a:gone1.spf-voids.test", "exists:gone3.spf-voids.test"],
    )
    .await;
}

#[tokio::test]
async fn spf_include_loop() {
    assert_finding(
        "spf-loop.test",
        CheckId::SpfIncludeLoop,
        Severity::Critical,
        &["_a.spf-loop.test → _b.spf-loop.test → _a.spf-loop.test"],
    )
    .await;
}

#[tokio::test]
async fn dmarc_p_none() {
    assert_finding(
        "dmarc-none.test",
        CheckId::DmarcPolicyNone,
        Severity::Warning,
        &["_dmarc.dmarc-none.test. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc@sealwatch.test\""],
    )
    .await;
}

#[tokio::test]
async fn dmarc_missing() {
    assert_finding(
        "no-dmarc.test",
        CheckId::DmarcMissing,
        Severity::Critical,
        &["_dmarc.no-dmarc.test. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc@sealwatch.test\""],
    )
    .await;
}

#[tokio::test]
async fn reports_going_to_another_provider() {
    let r = check("rua-elsewhere.test").await;
    let f = finding(&r, CheckId::DmarcRuaNotUs);
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        advice(f).contains("rua=mailto:reports@other-provider.test,mailto:dmarc@sealwatch.test"),
        "{}",
        advice(f)
    );
    let t = finding(&r, CheckId::TlsRptNotUs);
    assert_eq!(t.severity, Severity::Warning);
    assert!(advice(t).contains("mailto:tls@other-provider.test,mailto:tlsrpt@sealwatch.test"));
    // other-provider.test authorised this domain, so no authorisation problem
    assert!(!r.has(CheckId::DmarcRuaUnauthorised), "{}", listing(&r));
}

#[tokio::test]
async fn missing_external_report_authorisation() {
    let r = check("rua-unauth.test").await;
    let f = finding(&r, CheckId::DmarcRuaUnauthorised);
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        advice(f),
        "rua-unauth.test._report._dmarc.other-provider.test. IN TXT \"v=DMARC1\""
    );
    // sealwatch.test authorises every domain (a wildcard), and the rua includes us
    assert_eq!(r.findings_for(CheckId::DmarcRuaUnauthorised).count(), 1);
    assert!(!r.has(CheckId::DmarcRuaNotUs));
}

#[tokio::test]
async fn missing_tls_rpt() {
    let r = check("no-tlsrpt.test").await;
    let f = finding(&r, CheckId::TlsRptMissing);
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        advice(f),
        "_smtp._tls.no-tlsrpt.test. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@sealwatch.test\""
    );
    assert_eq!(r.tls_rpt, TlsRptState::Absent);
    assert_eq!(r.score, 90);
}

#[tokio::test]
async fn mta_sts_record_without_policy_file() {
    let r = check("sts-nopolicy.test").await;
    let f = finding(&r, CheckId::MtaStsPolicyUnavailable);
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.summary.contains("HTTP 404"), "{}", f.summary);
    assert!(advice(f).contains("mx: mx1.sts-nopolicy.test"));
    assert_eq!(r.mta_sts, MtaStsState::Broken);
    assert!(!r.has(CheckId::MtaStsMissing));
}

#[tokio::test]
async fn policy_with_the_wrong_mx_pattern() {
    let r = check("sts-wrongmx.test").await;
    let f = finding(&r, CheckId::MtaStsMxMismatch);
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.explanation.contains("*.mail.other-provider.test"));
    let a = advice(f);
    assert!(a.contains("https://mta-sts.sts-wrongmx.test/.well-known/mta-sts.txt"));
    assert!(a.contains("mode: enforce\nmx: mx1.sts-wrongmx.test\nmx: mx2.sts-wrongmx.test"));
    assert!(a.contains("_mta-sts.sts-wrongmx.test. IN TXT \"v=STSv1; id="));
}

#[tokio::test]
async fn policy_in_testing_mode() {
    let r = check("sts-testing.test").await;
    let f = finding(&r, CheckId::MtaStsModeTesting);
    assert_eq!(f.severity, Severity::Warning);
    assert!(advice(f).contains("mode: enforce"));
    assert_eq!(r.mta_sts, MtaStsState::Testing);
    // the wildcard pattern covers both MX hosts
    assert!(!r.has(CheckId::MtaStsMxMismatch));
}

async fn certificate_problem(connect: SocketAddr, trust_test_ca: bool, expect: &str) {
    let mut c = config();
    c.mta_sts_connect = Some(connect);
    if !trust_test_ca {
        c.extra_roots.clear();
    }
    let r = check_with(c, "perfect.test").await;
    let f = finding(&r, CheckId::MtaStsCertificateInvalid);
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.summary.contains(expect), "{}", f.summary);
    assert!(!r.has(CheckId::MtaStsPolicyUnavailable));
    assert_eq!(r.mta_sts, MtaStsState::Broken);
    assert_eq!(r.score, 70);
}

#[tokio::test]
async fn expired_policy_certificate() {
    certificate_problem(servers::https_expired(), true, "expired").await;
}

#[tokio::test]
async fn untrusted_policy_certificate() {
    certificate_problem(
        servers::https_zones(),
        false,
        "not issued by a trusted certificate authority",
    )
    .await;
}

#[tokio::test]
async fn policy_certificate_for_other_names() {
    certificate_problem(servers::https_other_names(), true, "issued for other names").await;
}

#[tokio::test]
async fn bimi_without_enforcement() {
    assert_finding(
        "bimi-none.test",
        CheckId::BimiDmarcNotEnforced,
        Severity::Warning,
        &["_dmarc.bimi-none.test. IN TXT \"v=DMARC1; p=quarantine"],
    )
    .await;
}

#[tokio::test]
async fn listed_mx_address() {
    let r = check("listed-mx.test").await;
    let f = finding(&r, CheckId::BlocklistMxListed);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subject, "66.2.0.192.dnsbl.test");
    assert!(f.explanation.contains("192.0.2.66 (mx1.listed-mx.test)"));
    assert!(f.explanation.contains("sent spam to our traps"));
    // only the listed address, and not on the list that answers everything
    assert_eq!(r.findings_for(CheckId::BlocklistMxListed).count(), 1);
    assert!(r.has(CheckId::BlocklistUnusable));
}

#[tokio::test]
async fn listed_domain() {
    assert_finding(
        "listed-domain.test",
        CheckId::BlocklistDomainListed,
        Severity::Critical,
        &["dbl.test", "phishing"],
    )
    .await;
}

#[tokio::test]
async fn null_mx_domain_that_sends_nothing() {
    let r = check("null-mx.test").await;
    assert_eq!(finding(&r, CheckId::MxNull).severity, Severity::Info);
    assert_eq!(r.mta_sts, MtaStsState::NotApplicable);
    assert_eq!(r.tls_rpt, TlsRptState::NotApplicable);
    // v=spf1 -all: no DKIM needed
    assert_eq!(finding(&r, CheckId::DkimNotFound).severity, Severity::Info);
    assert!(!r.has(CheckId::MtaStsMissing) && !r.has(CheckId::TlsRptMissing));
    assert_eq!(r.score, 100, "{}", listing(&r));
}

#[tokio::test]
async fn mx_host_without_address() {
    let r = check("mx-dangling.test").await;
    let f = finding(&r, CheckId::MxHostUnresolvable);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subject, "mx2.mx-dangling.test");
    assert!(!r.has(CheckId::MxOk));
}

#[tokio::test]
async fn weak_dkim_key() {
    assert_finding(
        "dkim-weak.test",
        CheckId::DkimKeyWeak,
        Severity::Warning,
        &["1024-bit RSA", "2048-bit"],
    )
    .await;
}

#[tokio::test]
async fn revoked_dkim_key() {
    let r = check("dkim-revoked.test").await;
    assert_eq!(
        finding(&r, CheckId::DkimKeyRevoked).severity,
        Severity::Info
    );
    let f = finding(&r, CheckId::DkimNotFound);
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.summary.contains("only revoked"));
}

#[tokio::test]
async fn dkim_key_in_test_mode() {
    assert_finding(
        "dkim-testing.test",
        CheckId::DkimTestMode,
        Severity::Warning,
        &["t=y"],
    )
    .await;
}

#[tokio::test]
async fn dkim_selectors_from_the_caller_are_tried() {
    // perfect.test also has a key at "reports2024", which is not a common selector: it is
    // found only when passed in (as selectors seen in DMARC reports will be)
    let checker = sealwatch_health::HealthChecker::new(config()).expect("config");
    let d = sealwatch_model::DomainName::parse("perfect.test").expect("valid");
    let without = checker.check(&d, &[]).await;
    assert!(
        !without
            .findings
            .iter()
            .any(|f| f.subject.starts_with("reports2024."))
    );
    let with = checker.check(&d, &["reports2024".to_owned()]).await;
    let f = with
        .findings_for(CheckId::DkimOk)
        .find(|f| f.subject == "reports2024._domainkey.perfect.test")
        .unwrap_or_else(|| panic!("{}", listing(&with)));
    assert!(f.summary.contains("Ed25519"));
}

/// A name server that never answers: a UDP socket nobody reads and a TCP listener that never
/// accepts. Every check must say "could not check", none "missing".
#[tokio::test]
async fn resolver_timeout_is_could_not_check_never_missing() {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let addr = udp.local_addr().expect("addr");
    let _tcp = TcpListener::bind(addr).ok();
    let mut c = config();
    c.name_servers = vec![addr];
    c.dns_timeout = Duration::from_millis(300);
    let r = check_with(c, "perfect.test").await;
    for id in [
        CheckId::MxCouldNotCheck,
        CheckId::SpfCouldNotCheck,
        CheckId::DmarcCouldNotCheck,
        CheckId::DkimCouldNotCheck,
        CheckId::MtaStsCouldNotCheck,
        CheckId::TlsRptCouldNotCheck,
        CheckId::BimiCouldNotCheck,
        CheckId::BlocklistCouldNotCheck,
    ] {
        assert_eq!(finding(&r, id).severity, Severity::Unknown, "{id}");
    }
    for missing in [
        CheckId::DomainNotFound,
        CheckId::MxMissing,
        CheckId::SpfMissing,
        CheckId::DmarcMissing,
        CheckId::DkimNotFound,
        CheckId::MtaStsMissing,
        CheckId::TlsRptMissing,
        CheckId::BimiMissing,
    ] {
        assert!(!r.has(missing), "{missing} on a timeout:\n{}", listing(&r));
    }
    assert!(r.findings.iter().all(|f| f.severity == Severity::Unknown));
    assert!(!r.complete);
    assert_eq!(r.mta_sts, MtaStsState::Unknown);
    assert!(
        r.findings_for(CheckId::MxCouldNotCheck)
            .any(|f| f.explanation.contains("timed out"))
    );
    assert!(
        r.records
            .iter()
            .all(|o| matches!(o.observed, Observed::Failed(_)))
    );
    drop(udp);
}

/// "Changed since last run": the change-history test owns changing.test, whose policy file is
/// written into the run-time web root ($SEALWATCH_TEST_HTTPS_WEBROOT) between two runs.
#[tokio::test]
async fn a_policy_change_between_two_runs_is_reported() {
    let dir = std::path::Path::new(&servers::var("SEALWATCH_TEST_HTTPS_WEBROOT"))
        .join("mta-sts.changing.test/.well-known");
    std::fs::create_dir_all(&dir).expect("web root");
    let file = dir.join("mta-sts.txt");
    let write = |mode: &str| {
        std::fs::write(
            &file,
            format!(
                "version: STSv1\nmode: {mode}\nmx: mx1.changing.test\nmx: mx2.changing.test\nmax_age: 604800\n"
            ),
        )
        .expect("write policy");
    };
    write("testing");
    let before = check("changing.test").await;
    write("enforce");
    let after = check("changing.test").await;
    let _ = std::fs::remove_file(&file);

    assert_eq!(before.mta_sts, MtaStsState::Testing, "{}", listing(&before));
    assert_eq!(after.mta_sts, MtaStsState::Enforce, "{}", listing(&after));
    let changes = diff(&before, &after);
    let url = "https://mta-sts.changing.test/.well-known/mta-sts.txt";
    assert!(
        changes.iter().any(|c| matches!(c,
            Change::RecordChanged { name, rtype, before, after }
                if name == url && rtype == "POLICY"
                    && before[0].contains("mode: testing") && after[0].contains("mode: enforce"))),
        "{changes:?}"
    );
    // the policy changed but _mta-sts id= did not: senders keep the cached policy
    assert!(changes.contains(&Change::StsPolicyChangedWithoutNewId {
        url: url.to_owned()
    }));
    assert!(changes.contains(&Change::ProblemResolved {
        check: CheckId::MtaStsModeTesting,
        subject: url.to_owned(),
    }));
    assert!(changes.contains(&Change::ScoreChanged {
        before: 90,
        after: 100
    }));
    // no DNS record changed
    assert!(!changes.iter().any(|c| matches!(
        c,
        Change::RecordAppeared { .. } | Change::RecordVanished { .. }
    )));
    assert_eq!(diff(&after, &after), Vec::new());
}
