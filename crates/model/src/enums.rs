//! Protocol enumerations that never lose a value.
//!
//! Reporters write enum values in every case and spelling (`Pass`, `PASS`, `hardfail`, old
//! draft words such as `unknown`). Each enum here parses leniently: known spellings and
//! documented aliases map to a variant, anything else is kept verbatim in `Other`, and the
//! caller learns through [`Leniency`] whether the input needed repair.

use std::fmt;

use serde::{Serialize, Serializer};

/// How far a raw value was from its canonical spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leniency {
    /// Exactly the canonical spelling.
    Exact,
    /// Canonical after trimming and lower-casing.
    Normalized,
    /// A documented alias (`hardfail` → `fail`, `unknown` → `temperror`, …).
    Alias,
    /// Not a known value; kept verbatim as `Other`.
    Unknown,
}

macro_rules! lenient_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $canon:literal $(| $alias:literal)* ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as written (trimmed).
            Other(String),
        }

        impl $name {
            /// Every known variant, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The canonical spelling, or the raw text for `Other`.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $canon, )+
                    Self::Other(raw) => raw,
                }
            }

            /// Parses a raw value; see [`Leniency`] for what the second element means.
            pub fn parse_lenient(raw: &str) -> (Self, Leniency) {
                let trimmed = raw.trim();
                $( if trimmed == $canon { return (Self::$variant, Leniency::Exact); } )+
                let lower = trimmed.to_ascii_lowercase();
                $(
                    if lower == $canon { return (Self::$variant, Leniency::Normalized); }
                    $( if lower == $alias { return (Self::$variant, Leniency::Alias); } )*
                )+
                (Self::Other(trimmed.to_owned()), Leniency::Unknown)
            }

            /// True for a value kept as `Other`.
            pub fn is_other(&self) -> bool {
                matches!(self, Self::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

lenient_enum! {
    /// DMARC identifier alignment mode (`adkim`, `aspf`).
    Alignment { Relaxed = "r" | "relaxed", Strict = "s" | "strict" }
}

lenient_enum! {
    /// Published DMARC policy (`p`, `sp`, `np`).
    PolicyAction { None = "none", Quarantine = "quarantine", Reject = "reject" }
}

lenient_enum! {
    /// What the receiver did with the messages of a record. `pass` is new in RFC 9990.
    Disposition { None = "none", Quarantine = "quarantine", Reject = "reject", Pass = "pass" }
}

lenient_enum! {
    /// DMARC policy-evaluated result for DKIM or SPF alignment.
    DmarcResult { Pass = "pass", Fail = "fail" | "hardfail" | "softfail" }
}

lenient_enum! {
    /// Why the receiver overrode the published policy.
    OverrideType {
        Forwarded = "forwarded",
        SampledOut = "sampled_out" | "sampled-out",
        TrustedForwarder = "trusted_forwarder" | "trusted-forwarder",
        MailingList = "mailing_list" | "mailing-list",
        LocalPolicy = "local_policy" | "local-policy",
        PolicyTestMode = "policy_test_mode" | "policy-test-mode",
        OtherReason = "other" | "",
    }
}

lenient_enum! {
    /// DKIM authentication result as reported.
    DkimResult {
        None = "none",
        Pass = "pass",
        Fail = "fail" | "hardfail",
        Policy = "policy",
        Neutral = "neutral",
        TempError = "temperror" | "unknown" | "temp-error",
        PermError = "permerror" | "error" | "perm-error",
    }
}

lenient_enum! {
    /// SPF authentication result as reported; `policy` is new in RFC 9990.
    SpfResult {
        None = "none",
        Neutral = "neutral",
        Pass = "pass",
        Fail = "fail" | "hardfail",
        SoftFail = "softfail",
        TempError = "temperror" | "unknown" | "temp-error",
        PermError = "permerror" | "error" | "perm-error",
        Policy = "policy",
    }
}

lenient_enum! {
    /// Which identity SPF checked.
    SpfScope { Mfrom = "mfrom", Helo = "helo" }
}

lenient_enum! {
    /// How the DMARC policy was found (RFC 9990).
    DiscoveryMethod { Psl = "psl", Treewalk = "treewalk" }
}

lenient_enum! {
    /// TLS-RPT policy type.
    TlsPolicyType { Sts = "sts", Tlsa = "tlsa", NoPolicyFound = "no-policy-found" | "no_policy_found" }
}

lenient_enum! {
    /// TLS-RPT result type (IANA "STARTTLS Validation Result Types"). Unknown values are
    /// vendor or future types and are kept, never dropped.
    TlsResultType {
        StarttlsNotSupported = "starttls-not-supported",
        CertificateHostMismatch = "certificate-host-mismatch",
        CertificateExpired = "certificate-expired",
        CertificateNotTrusted = "certificate-not-trusted",
        ValidationFailure = "validation-failure",
        TlsaInvalid = "tlsa-invalid",
        DnssecInvalid = "dnssec-invalid",
        DaneRequired = "dane-required",
        StsPolicyFetchError = "sts-policy-fetch-error",
        StsPolicyInvalid = "sts-policy-invalid",
        StsWebpkiInvalid = "sts-webpki-invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_parse_leniently() {
        assert_eq!(
            SpfResult::parse_lenient("pass"),
            (SpfResult::Pass, Leniency::Exact)
        );
        assert_eq!(
            SpfResult::parse_lenient(" PASS "),
            (SpfResult::Pass, Leniency::Normalized)
        );
        assert_eq!(
            SpfResult::parse_lenient("hardfail"),
            (SpfResult::Fail, Leniency::Alias)
        );
        assert_eq!(
            SpfResult::parse_lenient("unknown"),
            (SpfResult::TempError, Leniency::Alias)
        );
        assert_eq!(
            DkimResult::parse_lenient("error"),
            (DkimResult::PermError, Leniency::Alias)
        );
        assert_eq!(
            Disposition::parse_lenient("pass"),
            (Disposition::Pass, Leniency::Exact)
        );
        let (other, how) = TlsResultType::parse_lenient("certificate-name-mismatch");
        assert_eq!(how, Leniency::Unknown);
        assert_eq!(other.as_str(), "certificate-name-mismatch");
        assert!(other.is_other());
    }

    #[test]
    fn every_known_value_round_trips() {
        for v in TlsResultType::KNOWN {
            assert_eq!(&TlsResultType::parse_lenient(v.as_str()).0, v);
        }
        for v in SpfResult::KNOWN {
            assert_eq!(&SpfResult::parse_lenient(v.as_str()).0, v);
        }
    }

    #[test]
    fn enums_serialize_as_their_spelling() {
        let json = serde_json::to_string(&vec![
            TlsResultType::CertificateExpired,
            TlsResultType::Other("x-new".into()),
        ])
        .expect("serializes");
        assert_eq!(json, r#"["certificate-expired","x-new"]"#);
    }
}
