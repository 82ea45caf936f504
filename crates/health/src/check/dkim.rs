//! DKIM: keys at the configured, common and caller-supplied selectors; key type and size,
//! revoked keys, test mode.

use super::mx::futures_join_all;
use super::{Section, could_not_check, join_and};
use crate::dns::{Answer, Dns};
use crate::record::dkim::{DkimKey, KeyType, is_dkim};
use crate::report::{CheckId, Finding, Severity};

/// Selectors of common providers and software, tried on every domain.
pub const COMMON_SELECTORS: &[&str] = &[
    "default",
    "dkim",
    "mail",
    "selector1",
    "selector2",
    "google",
    "k1",
    "k2",
    "k3",
    "s1",
    "s2",
    "key1",
    "key2",
    "sig1",
    "smtp",
    "mx",
    "email",
    "dkim1",
    "fm1",
    "fm2",
    "fm3",
    "protonmail",
    "protonmail2",
    "protonmail3",
    "zoho",
    "mandrill",
    "mailjet",
    "everlytickey1",
    "amazonses",
    "cm",
    "pm",
    "mxvault",
];

/// RSA keys below this many bits are weak (RFC 8301 requires at least 1024 and recommends 2048).
const RSA_RECOMMENDED_BITS: usize = 2048;
const RSA_MINIMUM_BITS: usize = 1024;

/// Every selector to try, in order, without duplicates.
pub(crate) fn selectors(configured: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let candidates = configured
        .iter()
        .map(String::as_str)
        .chain(extra.iter().map(String::as_str))
        .chain(COMMON_SELECTORS.iter().copied());
    for s in candidates {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if !s.is_empty()
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            && !out.contains(&s)
        {
            out.push(s);
        }
    }
    out
}

pub(crate) async fn check<D: Dns>(dns: &D, domain: &str, selectors: &[String]) -> Section {
    let mut s = Section::default();
    let names: Vec<String> = selectors
        .iter()
        .map(|sel| format!("{sel}._domainkey.{domain}"))
        .collect();
    let answers = futures_join_all(names.iter().map(|n| dns.txt(n))).await;
    let mut usable = 0usize;
    let mut revoked = 0usize;
    let mut failed: Vec<(String, String)> = Vec::new();
    for ((sel, name), answer) in selectors.iter().zip(&names).zip(answers) {
        let records = match answer {
            Answer::Records(r) => r.into_iter().filter(|t| is_dkim(t)).collect::<Vec<_>>(),
            Answer::Failed(e) => {
                failed.push((name.clone(), e));
                continue;
            }
            Answer::NoData | Answer::NxDomain => continue,
        };
        if records.is_empty() {
            continue;
        }
        s.observe(name, "TXT", &Answer::Records(records.clone()));
        for raw in records {
            let finding = |id, sev, summary: String, why: String| {
                Finding::new(id, sev, name.as_str(), summary, why).found(raw.clone())
            };
            let key = match DkimKey::parse(&raw) {
                Ok(k) => k,
                Err(e) => {
                    s.push(finding(
                        CheckId::DkimInvalid,
                        Severity::Critical,
                        format!("the DKIM key at selector {sel} is unusable"),
                        format!(
                            "{e}. Receivers cannot verify signatures made with selector {sel}, \
                             so that mail fails DKIM. Publish the public key exactly as your \
                             provider gives it."
                        ),
                    ));
                    continue;
                }
            };
            if key.testing {
                s.push(finding(
                    CheckId::DkimTestMode,
                    Severity::Warning,
                    format!("the DKIM key at selector {sel} is in test mode (t=y)"),
                    "t=y asks receivers not to treat DKIM failures differently from unsigned \
                     mail; some ignore the signature altogether. Remove t=y once signing works."
                        .to_owned(),
                ));
            }
            match key.key {
                None => {
                    revoked += 1;
                    s.push(finding(
                        CheckId::DkimKeyRevoked,
                        Severity::Info,
                        format!("selector {sel} is revoked (empty p=)"),
                        format!(
                            "An empty p= revokes the key: mail still signed with selector {sel} \
                             fails DKIM. That is right after a key rotation; make sure nothing \
                             signs with it any more."
                        ),
                    ));
                }
                Some(KeyType::Rsa { bits }) if bits < RSA_RECOMMENDED_BITS => {
                    usable += 1;
                    let (sev, why) = if bits < RSA_MINIMUM_BITS {
                        (
                            Severity::Critical,
                            "Receivers must reject signatures from RSA keys under 1024 bits \
                             (RFC 8301), so this mail fails DKIM.",
                        )
                    } else {
                        (
                            Severity::Warning,
                            "1024-bit RSA keys are considered breakable by a well-funded \
                             attacker; RFC 8301 recommends 2048 bits, and some receivers already \
                             distrust shorter keys.",
                        )
                    };
                    s.push(finding(
                        CheckId::DkimKeyWeak,
                        sev,
                        format!("selector {sel} uses a {bits}-bit RSA key"),
                        format!(
                            "{why} Generate a 2048-bit key with your mail provider, publish it \
                             under a new selector, switch signing to it, then revoke {sel}."
                        ),
                    ));
                }
                Some(k) => {
                    usable += 1;
                    let what = match k {
                        KeyType::Rsa { bits } => format!("{bits}-bit RSA"),
                        KeyType::Ed25519 => "Ed25519".to_owned(),
                    };
                    if !key.testing {
                        s.push(finding(
                            CheckId::DkimOk,
                            Severity::Ok,
                            format!("selector {sel}: {what} key"),
                            "A valid DKIM public key.".to_owned(),
                        ));
                    }
                }
            }
        }
    }
    if usable == 0 {
        let tried = join_and(&selectors.iter().take(8).cloned().collect::<Vec<_>>());
        if !failed.is_empty() {
            let err = failed.first().map(|(_, e)| e.clone()).unwrap_or_default();
            s.push(Finding::new(
                CheckId::DkimCouldNotCheck,
                Severity::Unknown,
                format!("_domainkey.{domain}"),
                "DKIM keys could not be checked",
                could_not_check(&format!("{} of the DKIM selectors", failed.len()), &err),
            ));
        } else {
            s.push(Finding::new(
                CheckId::DkimNotFound,
                Severity::Warning,
                format!("_domainkey.{domain}"),
                if revoked > 0 {
                    "only revoked DKIM keys were found".to_owned()
                } else {
                    "no DKIM key found".to_owned()
                },
                format!(
                    "No usable key was found at the {} selectors tried ({tried}, …). DKIM \
                     selectors cannot be listed, so your provider may use another one — the \
                     DMARC reports show the selectors your mail is signed with, and those are \
                     checked too. If you do not sign with DKIM, DMARC rests on SPF alone, which \
                     breaks on forwarding: enable DKIM signing with your mail provider.",
                    selectors.len()
                ),
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::fake::FakeDns;

    const RSA1024: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCgqPxR+AE9hRuv6JRO8YdlCubNp2YefjtbnPXtIZS6hLcNhLqEe6+vyIQSjcV3pHlQQeZvj6kg/GQFf7VkEKOHzb3YMKQRXbRJjlhW7EsCpuebKInHPWTmcFavMVciFXP8x5TQLePFjEOAUtRE5F7mpjRLXV3EFV5agbYfnnOk4wIDAQAB";

    fn run(dns: &FakeDns, extra: &[String]) -> Section {
        crate::block_on(check(dns, "x.test", &selectors(&[], extra)))
    }

    #[test]
    fn selector_list_is_deduplicated() {
        let s = selectors(
            &["Sel1".into()],
            &["sel1".into(), "bad sel".into(), "google".into()],
        );
        assert_eq!(s[0], "sel1");
        assert_eq!(s.iter().filter(|x| *x == "google").count(), 1);
        assert!(!s.contains(&"bad sel".to_owned()));
    }

    #[test]
    fn weak_revoked_and_custom_selectors() {
        let dns = FakeDns::default()
            .txt(
                "custom._domainkey.x.test",
                &format!("v=DKIM1; k=rsa; p={RSA1024}"),
            )
            .txt("google._domainkey.x.test", "v=DKIM1; p=");
        let s = run(&dns, &["custom".into()]);
        let weak = s
            .findings
            .iter()
            .find(|f| f.check == CheckId::DkimKeyWeak)
            .expect("weak");
        assert_eq!(weak.severity, Severity::Warning);
        assert!(weak.summary.contains("1024-bit"));
        assert!(
            s.findings
                .iter()
                .any(|f| f.check == CheckId::DkimKeyRevoked)
        );
        // without the custom selector only the revoked key is found
        let s = run(&dns, &[]);
        assert!(s.findings.iter().any(|f| f.check == CheckId::DkimNotFound));
    }

    #[test]
    fn failures_are_unknown() {
        let dns = FakeDns::default().failing("default._domainkey.x.test");
        let s = run(&dns, &[]);
        assert_eq!(s.findings[0].check, CheckId::DkimCouldNotCheck);
    }
}
