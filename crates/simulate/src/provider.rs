//! The catalogue of reporters: who sends aggregate and TLS reports, and how each one
//! writes, names and packages them.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::aggregate::{DkimOrder, PolicyField, XmlStyle};
use crate::email::SubjectStyle;
use crate::net::Cidr;
use crate::package::Packaging;
use crate::rng::SimRng;

/// A mailbox provider or gateway that sends DMARC aggregate reports (and maybe TLS
/// reports), with the habits that make its reports recognisable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Provider {
    /// Stable short identifier (`google`, `microsoft`, …).
    pub key: &'static str,
    /// `report_metadata/org_name`.
    pub org_name: &'static str,
    /// Receiver domain: first part of the file name and `Submitter:` of the subject.
    pub receiver: &'static str,
    /// `report_metadata/email`.
    pub metadata_email: &'static str,
    /// `report_metadata/extra_contact_info`.
    pub extra_contact_info: Option<&'static str>,
    /// `From:` of its report emails.
    pub report_from: &'static str,
    /// How the XML is compressed and named.
    pub packaging: Packaging,
    /// Declared media type of the attachment.
    pub content_type: &'static str,
    /// How the `Subject:` is worded.
    pub subject: SubjectStyle,
    /// XML layout.
    pub xml: XmlStyle,
    /// What its records and policy section contain.
    pub habits: Habits,
    /// `end - begin` of a daily report (86399, or 86400 for reporters that overlap by a
    /// second).
    pub period_seconds: i64,
    /// How `report_id` is formed.
    pub report_id: ReportIdStyle,
    /// The optional fifth part of the file name.
    pub file_id: FileIdStyle,
    /// Networks its outbound MTAs use (TLS-RPT `sending-mta-ip`, and the source of mail
    /// from domains hosted there).
    pub sending_ranges: &'static [Cidr],
    /// Chance (per cent) that it sends a given domain a report on a given day.
    pub daily_chance: u8,
    /// Relative size of its reports (share of a domain's recipients it hosts).
    pub volume: f64,
    /// Delay after the end of the period before the report is mailed, in hours.
    pub delay_hours: (u32, u32),
    /// TLS-RPT habits, for providers that send TLS reports.
    pub tls: Option<TlsHabits>,
}

/// Record-level and policy-level habits of an aggregate reporter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Habits {
    /// `<version>` written, if any.
    pub version: Option<&'static str>,
    /// Writes `identifiers/envelope_from`.
    pub envelope_from: bool,
    /// Splits each source into one record per recipient domain (`envelope_to`).
    pub envelope_to_domains: &'static [&'static str],
    /// Writes `auth_results/spf/scope`.
    pub spf_scope: bool,
    /// Chance (per cent) that a record's `auth_results` holds only SPF.
    pub spf_only_percent: u8,
    /// Reports null-reverse-path mail (bounces) without `envelope_from`, SPF on `helo`.
    pub helo_for_bounces: bool,
    /// RFC 9990 policy fields (`np`, `testing`, `discovery_method`, no `pct`).
    pub rfc9990: bool,
    /// Writes `np` in RFC 7489 reports (Google).
    pub np: bool,
    /// Writes `fo`.
    pub fo: bool,
    /// RFC 9990 `generator`.
    pub generator: Option<&'static str>,
    /// Explains ARC-based overrides with `local_policy` and an `arc=pass` comment.
    pub arc_comments: bool,
}

impl Habits {
    const PLAIN: Habits = Habits {
        version: Some("1.0"),
        envelope_from: true,
        envelope_to_domains: &[],
        spf_scope: true,
        spf_only_percent: 0,
        helo_for_bounces: false,
        rfc9990: false,
        np: false,
        fo: false,
        generator: None,
        arc_comments: false,
    };
}

/// How a reporter forms `report_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportIdStyle {
    /// A decimal number of this many digits.
    Decimal(usize),
    /// 32 hexadecimal digits.
    Hex32,
    /// `<send time>.<microseconds>`.
    EpochMicros,
    /// A hyphenated UUID.
    Uuid,
    /// `<uuid>@<domain>`.
    UuidAt(&'static str),
    /// `<policy domain>.<begin>.<end>` (shared by several reporters, so ids collide).
    DomainRange,
}

impl ReportIdStyle {
    /// A report id for `domain` covering `begin..end`, mailed at `sent`.
    pub fn generate(
        self,
        rng: &mut SimRng,
        domain: &str,
        begin: i64,
        end: i64,
        sent: i64,
    ) -> String {
        match self {
            ReportIdStyle::Decimal(n) => rng.digits(n),
            ReportIdStyle::Hex32 => rng.hex(32),
            ReportIdStyle::EpochMicros => format!("{sent}.{:06}", rng.below(1_000_000)),
            ReportIdStyle::Uuid => rng.uuid(),
            ReportIdStyle::UuidAt(d) => format!("{}@{d}", rng.uuid()),
            ReportIdStyle::DomainRange => format!("{domain}.{begin}.{end}"),
        }
    }
}

/// The optional unique-id part of a report file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileIdStyle {
    /// No unique id.
    None,
    /// The report id itself.
    ReportId,
    /// Fresh hexadecimal digits.
    Hex32,
    /// Fresh decimal digits.
    Digits(usize),
}

impl FileIdStyle {
    /// The unique id for a report with `report_id`, if the style has one.
    pub fn generate(self, rng: &mut SimRng, report_id: &str) -> Option<String> {
        match self {
            FileIdStyle::None => None,
            FileIdStyle::ReportId => Some(
                report_id
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect(),
            ),
            FileIdStyle::Hex32 => Some(rng.hex(32)),
            FileIdStyle::Digits(n) => Some(rng.digits(n)),
        }
    }
}

/// How `mx-host` appears in a provider's TLS reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MxHostStyle {
    /// A string (the first MX host).
    Single,
    /// An array of all MX hosts.
    List,
    /// Left out.
    Omitted,
}

/// How a provider forms TLS-RPT `report-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsReportIdStyle {
    /// `2026.03.02T00.00.00Z+domain@receiver`.
    Stamp,
    /// `<18 digits>+domain`.
    DigitsPlusDomain,
    /// `<uuid>@receiver`.
    UuidAt,
}

impl TlsReportIdStyle {
    /// A report id for a report about `domain` starting at `start`.
    pub fn generate(
        self,
        rng: &mut SimRng,
        receiver: &str,
        domain: &str,
        start: DateTime<Utc>,
    ) -> String {
        match self {
            TlsReportIdStyle::Stamp => format!(
                "{}+{domain}@{receiver}",
                start
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
                    .replace(['-', ':'], ".")
            ),
            TlsReportIdStyle::DigitsPlusDomain => format!("{}+{domain}", rng.digits(18)),
            TlsReportIdStyle::UuidAt => format!("{}@{receiver}", rng.uuid()),
        }
    }
}

/// Habits of a TLS-RPT reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsHabits {
    /// `organization-name`.
    pub org_name: &'static str,
    /// `TLS-Report-Submitter` and first part of the file name.
    pub receiver: &'static str,
    /// `From:` of its TLS report emails.
    pub report_from: &'static str,
    /// How the `Subject:` is worded.
    pub subject: SubjectStyle,
    /// `contact-info`; `None` writes `null`.
    pub contact_info: Option<&'static str>,
    /// How `report-id` is formed.
    pub report_id: TlsReportIdStyle,
    /// How `mx-host` is written.
    pub mx_host: MxHostStyle,
    /// Leaves `failure-details` out when there are none.
    pub omit_empty_failure_details: bool,
    /// Ends the range at the next midnight instead of `23:59:59`.
    pub end_at_next_midnight: bool,
    /// Reports policy fetch errors without IP addresses or host names.
    pub bare_fetch_errors: bool,
    /// Validates DANE: reports a `tlsa` policy (instead of `sts`) for domains that
    /// publish TLSA records, as DANE takes precedence over MTA-STS (RFC 8461 §2).
    pub dane: bool,
}

const GOOGLE_RANGES: &[Cidr] = &[
    Cidr::v4([209, 85, 128, 0], 17),
    Cidr::v4([74, 125, 0, 0], 16),
    Cidr::v4([108, 177, 8, 0], 21),
    Cidr::v6([0x2a00, 0x1450, 0x4000, 0, 0, 0, 0, 0], 37),
    Cidr::v6([0x2607, 0xf8b0, 0x4000, 0, 0, 0, 0, 0], 36),
];
const MICROSOFT_RANGES: &[Cidr] = &[
    Cidr::v4([40, 92, 0, 0], 15),
    Cidr::v4([40, 107, 0, 0], 16),
    Cidr::v4([52, 100, 0, 0], 14),
    Cidr::v4([104, 47, 0, 0], 17),
    Cidr::v6([0x2a01, 0x111, 0xf400, 0, 0, 0, 0, 0], 48),
    Cidr::v6([0x2a01, 0x111, 0xf403, 0, 0, 0, 0, 0], 48),
];
const YAHOO_RANGES: &[Cidr] = &[
    Cidr::v4([66, 163, 184, 0], 21),
    Cidr::v4([74, 6, 128, 0], 21),
    Cidr::v4([98, 137, 64, 0], 21),
    Cidr::v4([212, 82, 96, 0], 19),
];
const MAILRU_RANGES: &[Cidr] = &[
    Cidr::v4([94, 100, 176, 0], 20),
    Cidr::v4([217, 69, 128, 0], 20),
    Cidr::v4([185, 5, 136, 0], 22),
    Cidr::v4([5, 61, 232, 0], 21),
];
const FASTMAIL_RANGES: &[Cidr] = &[
    Cidr::v4([66, 111, 4, 0], 24),
    Cidr::v4([103, 168, 172, 0], 22),
    Cidr::v4([202, 12, 124, 128], 25),
];
const GMX_RANGES: &[Cidr] = &[
    Cidr::v4([212, 227, 15, 0], 24),
    Cidr::v4([212, 227, 17, 0], 24),
    Cidr::v4([82, 165, 159, 0], 24),
    Cidr::v4([74, 208, 4, 192], 26),
];
const AMAZON_SES_RANGES: &[Cidr] = &[
    Cidr::v4([54, 240, 0, 0], 18),
    Cidr::v4([23, 249, 208, 0], 20),
    Cidr::v4([69, 169, 224, 0], 20),
    Cidr::v4([76, 223, 128, 0], 19),
];
const MIMECAST_RANGES: &[Cidr] = &[
    Cidr::v4([205, 139, 110, 0], 24),
    Cidr::v4([207, 211, 30, 0], 24),
    Cidr::v4([185, 58, 84, 0], 22),
    Cidr::v4([195, 130, 217, 0], 24),
];
const COMCAST_RANGES: &[Cidr] = &[
    Cidr::v4([69, 252, 207, 0], 24),
    Cidr::v4([96, 114, 154, 0], 23),
    Cidr::v4([68, 87, 26, 0], 24),
    Cidr::v6([0x2001, 0x558, 0xfd00, 0, 0, 0, 0, 0], 48),
];
const SEZNAM_RANGES: &[Cidr] = &[
    Cidr::v4([77, 75, 72, 0], 21),
    Cidr::v6([0x2a02, 0x598, 0x2, 0, 0, 0, 0, 0], 48),
];
const ZOHO_RANGES: &[Cidr] = &[
    Cidr::v4([136, 143, 188, 0], 24),
    Cidr::v4([136, 143, 184, 0], 24),
    Cidr::v4([204, 141, 32, 0], 23),
    Cidr::v4([165, 173, 128, 0], 24),
];
const PROOFPOINT_RANGES: &[Cidr] = &[
    Cidr::v4([148, 163, 128, 0], 19),
    Cidr::v4([67, 231, 144, 0], 20),
    Cidr::v4([205, 220, 160, 0], 19),
];

const PRETTY: XmlStyle = XmlStyle {
    declaration: Some(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
    namespace: None,
    root_attributes: &[],
    indent: Some("  "),
    line_end: "\n",
    policy_order: PolicyField::RFC,
    dkim_order: DkimOrder::DomainSelectorResult,
};

/// The twelve reporters of the catalogue, in a fixed order.
pub static PROVIDERS: [Provider; 12] = [
    Provider {
        key: "google",
        org_name: "google.com",
        receiver: "google.com",
        metadata_email: "noreply-dmarc-support@google.com",
        extra_contact_info: Some("https://support.google.com/a/answer/2466580"),
        report_from: "noreply-dmarc-support@google.com",
        packaging: Packaging::Zip,
        content_type: "application/zip",
        subject: SubjectStyle::LowercaseUnbracketed,
        xml: XmlStyle {
            declaration: Some(r#"<?xml version="1.0" encoding="UTF-8" ?>"#),
            policy_order: &[
                PolicyField::Domain,
                PolicyField::Adkim,
                PolicyField::Aspf,
                PolicyField::P,
                PolicyField::Sp,
                PolicyField::Pct,
                PolicyField::Np,
            ],
            dkim_order: DkimOrder::DomainResultSelector,
            ..PRETTY
        },
        habits: Habits {
            version: None,
            envelope_from: false,
            spf_scope: false,
            np: true,
            arc_comments: true,
            ..Habits::PLAIN
        },
        period_seconds: 86_399,
        report_id: ReportIdStyle::Decimal(19),
        file_id: FileIdStyle::None,
        sending_ranges: GOOGLE_RANGES,
        daily_chance: 95,
        volume: 1.0,
        delay_hours: (1, 9),
        tls: Some(TlsHabits {
            org_name: "Google Inc.",
            receiver: "google.com",
            report_from: "noreply-smtp-tls-reporting@google.com",
            subject: SubjectStyle::Rfc,
            contact_info: Some("smtp-tls-reporting@google.com"),
            report_id: TlsReportIdStyle::Stamp,
            mx_host: MxHostStyle::List,
            omit_empty_failure_details: true,
            end_at_next_midnight: false,
            bare_fetch_errors: false,
            dane: false,
        }),
    },
    Provider {
        key: "microsoft",
        org_name: "Outlook.com",
        receiver: "protection.outlook.com",
        metadata_email: "dmarcreport@microsoft.com",
        extra_contact_info: None,
        report_from: "DMARC Aggregate Report <dmarcreport@microsoft.com>",
        packaging: Packaging::Gzip,
        content_type: "application/gzip",
        subject: SubjectStyle::Rfc,
        xml: XmlStyle {
            declaration: Some(r#"<?xml version="1.0"?>"#),
            root_attributes: &[
                ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
                ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ],
            ..PRETTY
        },
        habits: Habits {
            envelope_to_domains: &[
                "hotmail.com",
                "outlook.com",
                "live.com",
                "msn.com",
                "outlook.de",
                "live.de",
                "hotmail.co.uk",
            ],
            fo: true,
            ..Habits::PLAIN
        },
        period_seconds: 86_400,
        report_id: ReportIdStyle::Hex32,
        file_id: FileIdStyle::None,
        sending_ranges: MICROSOFT_RANGES,
        daily_chance: 85,
        volume: 0.6,
        delay_hours: (2, 20),
        tls: Some(TlsHabits {
            org_name: "Microsoft Corporation",
            receiver: "microsoft.com",
            report_from: "tlsrpt-noreply@microsoft.com",
            subject: SubjectStyle::Unbracketed,
            contact_info: Some("tlsrpt-noreply@microsoft.com"),
            report_id: TlsReportIdStyle::DigitsPlusDomain,
            mx_host: MxHostStyle::Omitted,
            omit_empty_failure_details: false,
            end_at_next_midnight: false,
            bare_fetch_errors: true,
            dane: true,
        }),
    },
    Provider {
        key: "yahoo",
        org_name: "Yahoo",
        receiver: "yahoo.com",
        metadata_email: "dmarchelp@yahooinc.com",
        extra_contact_info: None,
        report_from: "Yahoo DMARC <noreply@dmarc.yahoo.com>",
        packaging: Packaging::Gzip,
        content_type: "application/x-gzip",
        subject: SubjectStyle::Rfc,
        xml: XmlStyle {
            declaration: Some(r#"<?xml version="1.0"?>"#),
            line_end: "\t\n",
            ..PRETTY
        },
        habits: Habits {
            version: None,
            envelope_from: false,
            spf_scope: false,
            ..Habits::PLAIN
        },
        period_seconds: 86_399,
        report_id: ReportIdStyle::EpochMicros,
        file_id: FileIdStyle::None,
        sending_ranges: YAHOO_RANGES,
        daily_chance: 60,
        volume: 0.5,
        delay_hours: (0, 6),
        tls: None,
    },
    Provider {
        key: "mailru",
        org_name: "Mail.Ru",
        receiver: "mail.ru",
        metadata_email: "dmarc_support@corp.mail.ru",
        extra_contact_info: Some("http://help.mail.ru/mail-help"),
        report_from: "dmarc_support@corp.mail.ru",
        packaging: Packaging::Gzip,
        content_type: "application/gzip",
        subject: SubjectStyle::Rfc,
        xml: XmlStyle {
            declaration: Some("<?xml version='1.0' encoding='utf-8'?>"),
            indent: None,
            ..PRETTY
        },
        habits: Habits {
            version: None,
            envelope_from: false,
            spf_only_percent: 40,
            ..Habits::PLAIN
        },
        period_seconds: 86_400,
        report_id: ReportIdStyle::Decimal(29),
        file_id: FileIdStyle::None,
        sending_ranges: MAILRU_RANGES,
        daily_chance: 12,
        volume: 0.3,
        delay_hours: (1, 4),
        tls: Some(TlsHabits {
            org_name: "Mail.Ru",
            receiver: "mail.ru",
            report_from: "tls_support@corp.mail.ru",
            subject: SubjectStyle::Rfc,
            contact_info: Some("tls_support@corp.mail.ru"),
            report_id: TlsReportIdStyle::UuidAt,
            mx_host: MxHostStyle::Single,
            omit_empty_failure_details: false,
            end_at_next_midnight: true,
            bare_fetch_errors: true,
            dane: false,
        }),
    },
    Provider {
        key: "fastmail",
        org_name: "Fastmail Pty Ltd",
        receiver: "fastmail.com",
        metadata_email: "dmarc-reports@fastmail.com",
        extra_contact_info: Some("https://www.fastmail.help/"),
        report_from: "DMARC Reports <noreply-dmarc@fastmail.com>",
        packaging: Packaging::Gzip,
        content_type: "application/gzip",
        subject: SubjectStyle::Rfc,
        xml: PRETTY,
        habits: Habits {
            helo_for_bounces: true,
            ..Habits::PLAIN
        },
        period_seconds: 86_399,
        report_id: ReportIdStyle::Decimal(9),
        file_id: FileIdStyle::ReportId,
        sending_ranges: FASTMAIL_RANGES,
        daily_chance: 12,
        volume: 0.2,
        delay_hours: (0, 3),
        tls: None,
    },
    Provider {
        key: "gmx",
        org_name: "GMX",
        receiver: "gmx.net",
        metadata_email: "noreply-dmarc@sicher.gmx.net",
        extra_contact_info: Some("https://postmaster.gmx.net/en/case?c=r2002"),
        report_from: "noreply-dmarc@sicher.gmx.net",
        packaging: Packaging::Gzip,
        content_type: "application/gzip",
        subject: SubjectStyle::Rfc,
        xml: XmlStyle {
            namespace: Some("urn:ietf:params:xml:ns:dmarc-2.0"),
            indent: Some("   "),
            policy_order: &[
                PolicyField::Domain,
                PolicyField::DiscoveryMethod,
                PolicyField::Adkim,
                PolicyField::Aspf,
                PolicyField::P,
                PolicyField::Sp,
                PolicyField::Np,
                PolicyField::Testing,
            ],
            ..PRETTY
        },
        habits: Habits {
            rfc9990: true,
            generator: Some("UIM DMARC Reporter 2.1"),
            ..Habits::PLAIN
        },
        period_seconds: 86_399,
        report_id: ReportIdStyle::Hex32,
        file_id: FileIdStyle::Hex32,
        sending_ranges: GMX_RANGES,
        daily_chance: 25,
        volume: 0.3,
        delay_hours: (0, 5),
        tls: None,
    },
    Provider {
        key: "amazonses",
        org_name: "Amazon SES",
        receiver: "amazonses.com",
        metadata_email: "postmaster@amazonses.com",
        extra_contact_info: None,
        report_from: "postmaster@amazonses.com",
        packaging: Packaging::Gzip,
        content_type: "application/octet-stream",
        subject: SubjectStyle::Braced,
        xml: PRETTY,
        habits: Habits::PLAIN,
        period_seconds: 86_400,
        report_id: ReportIdStyle::Uuid,
        file_id: FileIdStyle::None,
        sending_ranges: AMAZON_SES_RANGES,
        daily_chance: 8,
        volume: 0.15,
        delay_hours: (2, 12),
        tls: None,
    },
    Provider {
        key: "mimecast",
        org_name: "Mimecast",
        receiver: "mimecast.org",
        metadata_email: "dmarc-reports@mimecast.org",
        extra_contact_info: Some("https://www.mimecast.com"),
        report_from: "DMARC Aggregate Reports <dmarc-reports@mimecast.org>",
        packaging: Packaging::GzipZlibBody,
        content_type: "application/gzip",
        subject: SubjectStyle::Rfc,
        xml: XmlStyle {
            declaration: Some(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#),
            indent: Some("    "),
            ..PRETTY
        },
        habits: Habits::PLAIN,
        period_seconds: 86_399,
        report_id: ReportIdStyle::UuidAt("mimecast.org"),
        file_id: FileIdStyle::Digits(6),
        sending_ranges: MIMECAST_RANGES,
        daily_chance: 15,
        volume: 0.25,
        delay_hours: (4, 30),
        tls: None,
    },
    Provider {
        key: "comcast",
        org_name: "comcast.net",
        receiver: "comcast.net",
        metadata_email: "dmarc_support@comcast.net",
        extra_contact_info: Some("https://postmaster.comcast.net"),
        report_from: "dmarc_report@comcast.net",
        packaging: Packaging::Gzip,
        content_type: "application/gzip",
        subject: SubjectStyle::Rfc,
        xml: PRETTY,
        habits: Habits {
            fo: true,
            ..Habits::PLAIN
        },
        period_seconds: 86_399,
        report_id: ReportIdStyle::DomainRange,
        file_id: FileIdStyle::None,
        sending_ranges: COMCAST_RANGES,
        daily_chance: 20,
        volume: 0.2,
        delay_hours: (1, 8),
        tls: None,
    },
    Provider {
        key: "seznam",
        org_name: "Seznam.cz a.s.",
        receiver: "seznam.cz",
        metadata_email: "dmarc-noreply@seznam.cz",
        extra_contact_info: Some("https://napoveda.seznam.cz/"),
        report_from: "dmarc-noreply@seznam.cz",
        packaging: Packaging::XmlZip,
        content_type: "application/zip",
        subject: SubjectStyle::Rfc,
        xml: PRETTY,
        habits: Habits::PLAIN,
        period_seconds: 86_400,
        report_id: ReportIdStyle::Decimal(12),
        file_id: FileIdStyle::None,
        sending_ranges: SEZNAM_RANGES,
        daily_chance: 15,
        volume: 0.15,
        delay_hours: (0, 3),
        tls: None,
    },
    Provider {
        key: "zoho",
        org_name: "Zoho Corporation",
        receiver: "zoho.com",
        metadata_email: "noreply-dmarc@zoho.com",
        extra_contact_info: Some("https://www.zoho.com/mail/help/"),
        report_from: "noreply-dmarc@zoho.com",
        packaging: Packaging::Gzip,
        content_type: "application/gzip",
        subject: SubjectStyle::Unbracketed,
        xml: PRETTY,
        habits: Habits::PLAIN,
        period_seconds: 86_399,
        report_id: ReportIdStyle::Decimal(19),
        file_id: FileIdStyle::None,
        sending_ranges: ZOHO_RANGES,
        daily_chance: 10,
        volume: 0.15,
        delay_hours: (0, 6),
        tls: None,
    },
    Provider {
        key: "proofpoint",
        org_name: "Proofpoint",
        receiver: "emaildefense.proofpoint.com",
        metadata_email: "dmarc_rua@emaildefense.proofpoint.com",
        extra_contact_info: None,
        report_from: "dmarc_rua@emaildefense.proofpoint.com",
        packaging: Packaging::Gzip,
        content_type: "application/gzip",
        subject: SubjectStyle::Rfc,
        xml: PRETTY,
        habits: Habits::PLAIN,
        period_seconds: 86_399,
        report_id: ReportIdStyle::Uuid,
        file_id: FileIdStyle::None,
        sending_ranges: PROOFPOINT_RANGES,
        daily_chance: 20,
        volume: 0.3,
        delay_hours: (1, 10),
        tls: None,
    },
];

/// Every provider of the catalogue.
pub fn providers() -> &'static [Provider] {
    &PROVIDERS
}

/// The provider with this key.
pub fn provider(key: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        let mut keys: Vec<&str> = PROVIDERS.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), PROVIDERS.len());
        for p in providers() {
            assert!(!p.sending_ranges.is_empty(), "{}", p.key);
            assert!(p.daily_chance > 0 && p.daily_chance <= 100, "{}", p.key);
            assert!(p.delay_hours.0 <= p.delay_hours.1, "{}", p.key);
            assert!(p.metadata_email.contains('@'), "{}", p.key);
            assert!(matches!(p.period_seconds, 86_399 | 86_400), "{}", p.key);
        }
        assert_eq!(
            provider("google").map(|p| p.packaging),
            Some(Packaging::Zip)
        );
        assert_eq!(
            provider("gmx").and_then(|p| p.xml.namespace),
            Some("urn:ietf:params:xml:ns:dmarc-2.0")
        );
    }

    #[test]
    fn tls_report_ids_follow_the_provider() {
        let start = DateTime::from_timestamp(1_725_321_600, 0).expect("valid");
        let mut rng = SimRng::new(1);
        assert_eq!(
            TlsReportIdStyle::Stamp.generate(&mut rng, "google.com", "example.ca", start),
            "2024.09.03T00.00.00Z+example.ca@google.com"
        );
        let ms = TlsReportIdStyle::DigitsPlusDomain.generate(
            &mut rng,
            "microsoft.com",
            "example.ca",
            start,
        );
        assert!(ms.ends_with("+example.ca") && ms.len() == 18 + 11);
    }
}
