//! Rendering: [`DigestData`] → subject, plain text and HTML through the askama templates in
//! `templates/digest/`.
//!
//! **Untrusted strings.** Reporter names, host names and IP addresses come from reports, which
//! anyone can send. Before they reach a template they are cleaned ([`clean`]: control
//! characters become spaces, length is capped) and, for host names and IPs, defused
//! ([`defang`]: a zero-width space, U+200B, after every `.` and `:`), so mail clients do not
//! turn them into links while the text reads and copies the same to a person. The HTML
//! template escapes every value (askama's HTML escaper); nothing is marked safe.

use askama::Template;

use crate::data::{DigestData, DomainDigest, Issue, IssueSeverity, WeekNumbers, rate};
use crate::signals;
use crate::{DigestError, IsoWeek};

/// A rendered digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The week's verdict, shown in the subject and the heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Reports arrived, nothing is open and the numbers show nothing unexplained.
    AllClear,
    /// This many open issues (the count includes acknowledged ones and changes in the
    /// numbers that no anomaly explains).
    Issues { count: usize, urgent: usize },
    /// Something happened this week and has been resolved since; nothing is open.
    ResolvedSince { count: usize },
    /// No reports this week, but there were some before.
    NoReportsThisWeek,
    /// No reports ever: the domain's DNS does not point reports at us yet.
    NoReportsYet,
}

impl Verdict {
    /// The verdict of a week.
    pub fn of(data: &DigestData) -> Verdict {
        let any_data = data.domains.iter().any(DomainDigest::has_data);
        let issues: Vec<Issue> = data
            .domains
            .iter()
            .flat_map(|d| shown_issues(d, data.week, any_data))
            .collect();
        let (resolved, open): (Vec<&Issue>, Vec<&Issue>) = issues.iter().partition(|i| i.resolved);
        // While other domains report, a domain without reports is an issue of its own.
        let silent = if any_data {
            data.domains.iter().filter(|d| !d.has_data()).count()
        } else {
            0
        };
        if !open.is_empty() || silent > 0 {
            return Verdict::Issues {
                count: open.len() + silent,
                urgent: open
                    .iter()
                    .filter(|i| i.severity == IssueSeverity::Critical)
                    .count(),
            };
        }
        if !resolved.is_empty() {
            return Verdict::ResolvedSince {
                count: resolved.len(),
            };
        }
        if any_data {
            Verdict::AllClear
        } else if data.domains.iter().any(|d| d.last_week.has_data()) {
            Verdict::NoReportsThisWeek
        } else {
            Verdict::NoReportsYet
        }
    }

    /// The words used in the subject.
    pub fn text(self) -> String {
        match self {
            Verdict::AllClear => "All clear".to_owned(),
            Verdict::Issues { count: 1, .. } => "1 issue needs attention".to_owned(),
            Verdict::Issues { count, .. } => format!("{count} issues need attention"),
            Verdict::ResolvedSince { count: 1 } => "1 issue this week, resolved since".to_owned(),
            Verdict::ResolvedSince { count } => {
                format!("{count} issues this week, resolved since")
            }
            Verdict::NoReportsThisWeek => "No reports arrived this week".to_owned(),
            Verdict::NoReportsYet => "No reports yet, one DNS change needed".to_owned(),
        }
    }

    fn level(self) -> &'static str {
        match self {
            Verdict::AllClear => "ok",
            Verdict::Issues { urgent, .. } if urgent > 0 => "critical",
            Verdict::Issues { .. } | Verdict::ResolvedSince { .. } => "warning",
            Verdict::NoReportsThisWeek | Verdict::NoReportsYet => "nodata",
        }
    }
}

/// Issues shown for a domain, open ones first (most urgent first), then those resolved
/// since: a tenant-wide "no data" note replaces `no-data` findings, and changes in the
/// numbers that no issue explains are one issue of their own ([`signals::unexplained`]).
fn shown_issues(d: &DomainDigest, week: IsoWeek, tenant_has_data: bool) -> Vec<Issue> {
    let mut out: Vec<Issue> = d
        .issues
        .iter()
        .filter(|i| !(i.kind == "no-data" && (!tenant_has_data || !d.has_data())))
        .cloned()
        .collect();
    if d.has_data()
        && let Some(unexplained) = signals::unexplained(d, week)
    {
        out.push(unexplained);
    }
    out.sort_by_key(|i| (i.resolved, std::cmp::Reverse(i.severity)));
    out
}

/// Sources listed for a domain without open issues.
pub const HEALTHY_SOURCES: usize = 5;

/// Longest report-derived string kept, in characters.
pub const MAX_FIELD_CHARS: usize = 120;

/// Makes a report-derived string safe to place in text: control characters (line breaks
/// included) become spaces, runs of spaces collapse, and it is cut at [`MAX_FIELD_CHARS`].
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_FIELD_CHARS * 4));
    let mut n = 0;
    let mut space = false;
    for c in s.trim().chars() {
        let c = if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if n == MAX_FIELD_CHARS {
            out.push('…');
            break;
        }
        out.push(c);
        n += 1;
    }
    out
}

/// [`clean`], then a zero-width space after every `.` and `:` so that no mail client
/// recognises a host name or IP address and turns it into a link.
pub fn defang(s: &str) -> String {
    let mut out = String::new();
    for c in clean(s).chars() {
        out.push(c);
        if c == '.' || c == ':' {
            out.push('\u{200B}');
        }
    }
    out
}

/// Longest prose kept (analysis explanations), in characters.
pub const MAX_PROSE_CHARS: usize = 2000;

/// Prose that embeds report-derived names (the analysis' explanations): control characters
/// become spaces, it is cut at [`MAX_PROSE_CHARS`], and every `.` or `:` *inside* a word (as
/// in a host name, an IP address or a URL, not at the end of a sentence) gets a zero-width
/// space after it, so no mail client links a name. "What to do" texts are left linkable-free
/// but pasteable: they go through [`clean_prose`] only.
pub fn defang_prose(s: &str) -> String {
    let cleaned = clean_prose(s);
    let chars: Vec<char> = cleaned.chars().collect();
    let mut out = String::with_capacity(cleaned.len() + 16);
    for (i, c) in chars.iter().enumerate() {
        out.push(*c);
        if (*c == '.' || *c == ':')
            && chars
                .get(i + 1)
                .is_some_and(|n| n.is_alphanumeric() || *n == '/' || *n == '[')
        {
            out.push('\u{200B}');
        }
    }
    out
}

/// Control characters (line breaks included) become spaces; cut at [`MAX_PROSE_CHARS`].
pub fn clean_prose(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_PROSE_CHARS)
        .collect();
    if s.trim().chars().count() > MAX_PROSE_CHARS {
        out.push('…');
    }
    out
}

/// Width of text as displayed in a fixed-width font (zero-width spaces take no room).
fn width(s: &str) -> usize {
    s.chars().filter(|c| *c != '\u{200B}').count()
}

fn pad(s: &str, w: usize) -> String {
    let mut out = s.to_owned();
    for _ in width(s)..w {
        out.push(' ');
    }
    out
}

fn pad_left(s: &str, w: usize) -> String {
    let mut out = String::new();
    for _ in width(s)..w {
        out.push(' ');
    }
    out.push_str(s);
    out
}

/// `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate as a percentage that never rounds a failure away: `100%` only when nothing
/// failed, otherwise at most `99.9%`; `0%` only when nothing passed.
pub fn percent(r: Option<f64>) -> String {
    let Some(r) = r else {
        return "–".to_owned();
    };
    let p = r * 100.0;
    if p >= 100.0 {
        "100%".to_owned()
    } else if p <= 0.0 {
        "0%".to_owned()
    } else {
        let tenths = (p * 10.0).floor().max(1.0) / 10.0;
        format!("{tenths:.1}%")
    }
}

fn count_change(now: u64, before: u64) -> String {
    if before == 0 {
        return if now == 0 { "–".into() } else { "new".into() };
    }
    let change = (now as f64 - before as f64) / before as f64 * 100.0;
    if change.abs() < 0.5 {
        "same".into()
    } else if change > 0.0 {
        format!("up {change:.0}%")
    } else {
        format!("down {:.0}%", -change)
    }
}

fn rate_change(now: Option<f64>, before: Option<f64>) -> String {
    match (now, before) {
        (Some(a), Some(b)) => {
            let pts = (a - b) * 100.0;
            if pts.abs() < 0.05 {
                "same".into()
            } else if pts > 0.0 {
                format!("up {pts:.1} pts")
            } else {
                format!("down {:.1} pts", -pts)
            }
        }
        _ => "–".into(),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", count(n))
    }
}

/// Plain-English meaning of a TLS-RPT result type.
pub fn explain_result_type(result_type: &str, domain: &str) -> String {
    match result_type {
        "starttls-not-supported" => {
            "the mail server did not offer encryption (STARTTLS), so senders could not encrypt"
                .into()
        }
        "certificate-expired" => {
            "the mail server's certificate has expired; renew it now".into()
        }
        "certificate-host-mismatch" => {
            "the certificate does not name the mail server's host name".into()
        }
        "certificate-not-trusted" => {
            "the certificate is not signed by an authority senders trust (self-signed, or an intermediate certificate is missing)"
                .into()
        }
        "validation-failure" => "the certificate could not be validated".into(),
        "sts-policy-fetch-error" => format!(
            "senders could not download the MTA-STS policy from https://mta-sts.{domain}/.well-known/mta-sts.txt"
        ),
        "sts-policy-invalid" => "the MTA-STS policy file could not be read (a syntax error)".into(),
        "sts-webpki-invalid" => {
            "the web server that hosts the MTA-STS policy has an invalid certificate".into()
        }
        "tlsa-invalid" => "the DANE (TLSA) record does not match the server's certificate".into(),
        "dnssec-invalid" => "DNSSEC validation of the domain's records failed".into(),
        "dane-required" => "DANE was required but the server could not be verified with it".into(),
        other => format!("reported as \"{}\", a failure type we do not know", clean(other)),
    }
}

fn mode_text(mode: Option<&str>, no_policy: bool) -> String {
    match mode {
        Some("enforce") => {
            "enforce: senders must use encryption with a valid certificate, or not deliver".into()
        }
        Some("testing") => {
            "testing: senders report problems but still deliver without encryption".into()
        }
        Some("none") => "none: the MTA-STS policy is switched off".into(),
        Some(other) => format!("\"{}\" as reported", clean(other)),
        None if no_policy => {
            "no MTA-STS policy found: senders may deliver unencrypted if encryption fails".into()
        }
        None => "not reported this week".into(),
    }
}

struct StatRow {
    label: &'static str,
    this: String,
    last: String,
    change: String,
}

struct IssueView {
    n: usize,
    level: &'static str,
    label: &'static str,
    acknowledged: bool,
    resolved: bool,
    summary: String,
    what_happened: String,
    what_it_means: String,
    what_to_do: String,
    who_fixes_it: String,
    since: String,
}

struct MxView {
    host: String,
    failed: String,
    types: String,
    ok: bool,
}

struct TypeView {
    name: String,
    sessions: String,
    meaning: String,
}

struct SourceView {
    ip: String,
    messages: String,
    dmarc: String,
    dkim: String,
    spf: String,
    new: bool,
}

struct DomainView {
    domain: String,
    has_data: bool,
    healthy: bool,
    summary: String,
    stats: Vec<StatRow>,
    stats_text: Vec<String>,
    issues: Vec<IssueView>,
    missing: String,
    tls_line: String,
    mta_sts: String,
    mx: Vec<MxView>,
    mx_text: Vec<String>,
    types: Vec<TypeView>,
    sources: Vec<SourceView>,
    sources_text: Vec<String>,
    sources_more: String,
    health: String,
    health_problems: Vec<String>,
    health_changes: Vec<String>,
    dmarc_record: String,
    tlsrpt_record: String,
}

#[derive(Template)]
#[template(path = "digest/digest.txt")]
struct TextTemplate<'a> {
    v: &'a View,
}

#[derive(Template)]
#[template(path = "digest/digest.html")]
struct HtmlTemplate<'a> {
    v: &'a View,
}

struct View {
    subject: String,
    tenant: String,
    week: String,
    period: String,
    verdict: String,
    level: &'static str,
    opening: String,
    domains: Vec<DomainView>,
    unsubscribe_url: String,
}

fn period(week: IsoWeek) -> String {
    let (mon, sun) = (week.monday(), week.sunday());
    if mon.format("%Y").to_string() == sun.format("%Y").to_string() {
        format!(
            "Monday {} to Sunday {} (UTC)",
            mon.format("%-d %B"),
            sun.format("%-d %B %Y")
        )
    } else {
        format!(
            "Monday {} to Sunday {} (UTC)",
            mon.format("%-d %B %Y"),
            sun.format("%-d %B %Y")
        )
    }
}

fn stats(d: &DomainDigest) -> Vec<StatRow> {
    let (a, b): (&WeekNumbers, &WeekNumbers) = (&d.this_week, &d.last_week);
    vec![
        StatRow {
            label: "Messages reported",
            this: count(a.messages),
            last: count(b.messages),
            change: count_change(a.messages, b.messages),
        },
        StatRow {
            label: "Passing DMARC",
            this: percent(a.dmarc_pass_rate()),
            last: percent(b.dmarc_pass_rate()),
            change: rate_change(a.dmarc_pass_rate(), b.dmarc_pass_rate()),
        },
        StatRow {
            label: "Sending sources",
            this: format!("{} known, {} new", a.sources_known, a.sources_new),
            last: format!("{} known, {} new", b.sources_known, b.sources_new),
            change: count_change(
                a.sources_known + a.sources_new,
                b.sources_known + b.sources_new,
            ),
        },
        StatRow {
            label: "TLS sessions",
            this: count(a.tls_sessions()),
            last: count(b.tls_sessions()),
            change: count_change(a.tls_sessions(), b.tls_sessions()),
        },
        StatRow {
            label: "TLS success rate",
            this: percent(a.tls_success_rate()),
            last: percent(b.tls_success_rate()),
            change: rate_change(a.tls_success_rate(), b.tls_success_rate()),
        },
        StatRow {
            label: "Reporters",
            this: format!(
                "{} seen, {} missing",
                a.reporters,
                d.reporters_missing.len()
            ),
            last: format!("{} seen", b.reporters),
            change: count_change(a.reporters, b.reporters),
        },
    ]
}

fn stats_text(rows: &[StatRow]) -> Vec<String> {
    let mut out = vec![format!(
        "{}{}{}{}",
        pad("", 20),
        pad("This week", 22),
        pad("Last week", 22),
        "Change"
    )];
    for r in rows {
        out.push(format!(
            "{}{}{}{}",
            pad(r.label, 20),
            pad(&r.this, 22),
            pad(&r.last, 22),
            r.change
        ));
    }
    out
}

fn domain_summary(d: &DomainDigest, issues: usize) -> String {
    let a = &d.this_week;
    if !a.has_data() {
        return if d.last_week.has_data() {
            format!(
                "No reports about {} arrived this week, although some did the week before. Reporters sometimes pause; if this lasts another week, check that the DMARC and TLS-RPT records still point at us.",
                d.domain
            )
        } else {
            format!("No reports about {} have arrived yet.", d.domain)
        };
    }
    let mut s = format!(
        "{} reported for {}, {} passing DMARC.",
        plural(a.messages, "message was", "messages were"),
        d.domain,
        percent(a.dmarc_pass_rate())
    );
    if a.messages == 0 {
        s = format!("No DMARC messages were reported for {}.", d.domain);
    }
    if a.tls_sessions() > 0 {
        if a.tls_failed == 0 {
            s.push_str(&format!(
                " All {} encrypted deliveries to your mail servers succeeded.",
                count(a.tls_sessions())
            ));
        } else {
            s.push_str(&format!(
                " {} of {} encrypted deliveries to your mail servers failed.",
                count(a.tls_failed),
                count(a.tls_sessions())
            ));
        }
    }
    match issues {
        0 => s.push_str(" Nothing needs doing."),
        1 => s.push_str(" One thing needs attention, see below."),
        n => s.push_str(&format!(" {n} things need attention, see below.")),
    }
    s
}

fn domain_view(d: &DomainDigest, data: &DigestData, tenant_has_data: bool) -> DomainView {
    let issues: Vec<IssueView> = shown_issues(d, data.week, tenant_has_data)
        .into_iter()
        .enumerate()
        .map(|(i, x)| IssueView {
            n: i + 1,
            level: x.severity.as_str(),
            label: x.severity.label(),
            acknowledged: x.acknowledged,
            resolved: x.resolved,
            summary: defang_prose(&x.summary),
            what_happened: defang_prose(&x.what_happened),
            what_it_means: defang_prose(&x.what_it_means),
            what_to_do: clean_prose(&x.what_to_do),
            who_fixes_it: defang_prose(&x.who_fixes_it),
            since: x.since.clone(),
        })
        .collect();
    let a = &d.this_week;
    let stats = stats(d);
    let stats_text = stats_text(&stats);
    let tls_line = if a.tls_sessions() == 0 {
        "No TLS reports arrived this week, so we cannot say how encryption of incoming mail went."
            .to_owned()
    } else if a.tls_failed == 0 {
        format!(
            "All {} reported deliveries to your mail servers were encrypted successfully.",
            count(a.tls_sessions())
        )
    } else {
        format!(
            "{} of {} reported deliveries to your mail servers could not be encrypted ({} succeeded).",
            count(a.tls_failed),
            count(a.tls_sessions()),
            percent(a.tls_success_rate())
        )
    };
    let mx: Vec<MxView> = d
        .tls
        .mx
        .iter()
        .map(|m| MxView {
            host: defang(&m.host),
            failed: count(m.failed),
            types: if m.result_types.is_empty() {
                "none".into()
            } else {
                m.result_types
                    .iter()
                    .map(|t| clean(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            ok: m.failed == 0,
        })
        .collect();
    let mx_w = mx.iter().map(|m| width(&m.host)).max().unwrap_or(0).max(16) + 2;
    let mut mx_text = Vec::new();
    if !mx.is_empty() {
        mx_text.push(format!(
            "{}{}{}",
            pad("MX host", mx_w),
            pad("Failed sessions", 17),
            "Failure types"
        ));
        for m in &mx {
            mx_text.push(format!(
                "{}{}{}",
                pad(&m.host, mx_w),
                pad(&m.failed, 17),
                m.types
            ));
        }
    }
    let types = d
        .tls
        .failure_types
        .iter()
        .map(|(t, n)| TypeView {
            name: clean(t),
            sessions: plural(*n, "session", "sessions"),
            meaning: defang_prose(&explain_result_type(t, &d.domain)),
        })
        .collect();
    // A healthy week stays short: its five largest sources are enough.
    let shown = if issues.is_empty() {
        HEALTHY_SOURCES
    } else {
        DomainDigest::MAX_SOURCES
    };
    let sources: Vec<SourceView> = d
        .sources
        .iter()
        .take(shown)
        .map(|s| SourceView {
            ip: defang(&s.ip),
            messages: count(s.messages),
            dmarc: percent(rate(s.dmarc_passed, s.messages)),
            dkim: percent(rate(s.dkim_aligned, s.messages)),
            spf: percent(rate(s.spf_aligned, s.messages)),
            new: s.new,
        })
        .collect();
    let labels: Vec<String> = sources
        .iter()
        .map(|s| {
            if s.new {
                format!("{} (new)", s.ip)
            } else {
                s.ip.clone()
            }
        })
        .collect();
    let source_w = labels.iter().map(|l| width(l)).max().unwrap_or(0).max(16) + 2;
    let mut sources_text = Vec::new();
    if !sources.is_empty() {
        sources_text.push(format!(
            "{}{}{}{}{}",
            pad("Source", source_w),
            pad_left("Messages", 10),
            pad_left("DMARC", 9),
            pad_left("DKIM", 9),
            pad_left("SPF", 9)
        ));
        for (s, label) in sources.iter().zip(&labels) {
            sources_text.push(format!(
                "{}{}{}{}{}",
                pad(label, source_w),
                pad_left(&s.messages, 10),
                pad_left(&s.dmarc, 9),
                pad_left(&s.dkim, 9),
                pad_left(&s.spf, 9)
            ));
        }
    }
    let sources_more = if d.sources_total > sources.len() {
        format!(
            "Showing the {} largest of {} sources.",
            sources.len(),
            d.sources_total
        )
    } else {
        String::new()
    };
    let (health, health_problems, health_changes) = match &d.health {
        Some(h) => (
            format!(
                "Score {} of 100 (grade {}), checked {}.",
                h.score,
                clean(&h.grade),
                h.checked_on
            ),
            h.problems.iter().map(|p| defang_prose(p)).collect(),
            h.changes.iter().map(|c| defang_prose(c)).collect(),
        ),
        None => (
            "No health check of this domain's DNS records has run yet.".to_owned(),
            Vec::new(),
            Vec::new(),
        ),
    };
    let missing = if d.reporters_missing.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = d.reporters_missing.iter().map(|r| defang(r)).collect();
        format!(
            "Reporters that sent reports in recent weeks but not this week: {}.",
            names.join(", ")
        )
    };
    DomainView {
        domain: d.domain.clone(),
        has_data: d.has_data(),
        healthy: issues.is_empty() && d.has_data(),
        summary: domain_summary(d, issues.iter().filter(|i| !i.resolved).count()),
        stats,
        stats_text,
        issues,
        missing,
        tls_line,
        mta_sts: mode_text(d.tls.mta_sts_mode.as_deref(), d.tls.no_policy_reported),
        mx,
        mx_text,
        types,
        sources,
        sources_text,
        sources_more,
        health,
        health_problems,
        health_changes,
        dmarc_record: format!(
            "_dmarc.{}  TXT  \"v=DMARC1; p=none; rua=mailto:{}\"",
            d.domain, data.setup.dmarc_rua
        ),
        tlsrpt_record: format!(
            "_smtp._tls.{}  TXT  \"v=TLSRPTv1; rua=mailto:{}\"",
            d.domain, data.setup.tlsrpt_rua
        ),
    }
}

fn opening(data: &DigestData, verdict: Verdict, domains: &[DomainView]) -> String {
    let names: Vec<&str> = domains.iter().map(|d| d.domain.as_str()).collect();
    let list = match names.len() {
        0 => "your domains".to_owned(),
        1 => names[0].to_owned(),
        n => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
    };
    match verdict {
        Verdict::AllClear => format!(
            "Good news: nothing needs doing this week. Mail sent as {list} authenticated as usual and deliveries to your mail servers were encrypted as expected. The numbers are below for reference."
        ),
        Verdict::Issues { count, urgent } => {
            let first = domains
                .iter()
                .flat_map(|d| d.issues.first())
                .next()
                .map(|i| {
                    let s = i.summary.trim_end();
                    if s.ends_with(['.', '!', '?']) {
                        s.to_owned()
                    } else {
                        format!("{s}.")
                    }
                })
                .or_else(|| {
                    domains
                        .iter()
                        .find(|d| !d.has_data)
                        .map(|d| format!("no reports arrived for {}.", d.domain))
                })
                .unwrap_or_default();
            let what = if count == 1 {
                "One thing needs attention".to_owned()
            } else {
                format!("{count} things need attention")
            };
            let urgency = if urgent > 0 {
                " and should be fixed today"
            } else {
                ""
            };
            format!(
                "{what} for {list}{urgency}. Most important: {first} Each item below says what happened, what it means, what to do and who usually fixes it."
            )
        }
        Verdict::ResolvedSince { count } => {
            let what = if count == 1 {
                "One problem".to_owned()
            } else {
                format!("{count} problems")
            };
            format!(
                "{what} affected {list} this week and {} been resolved since, so nothing needs doing now. Each item below says what happened and what it meant; the numbers of the week are below.",
                if count == 1 { "has" } else { "have" }
            )
        }
        Verdict::NoReportsThisWeek => format!(
            "No DMARC or TLS reports about {list} arrived this week, so we cannot tell how your mail did. Reporters sometimes skip a week; if this continues, check that your DNS records still send reports to us."
        ),
        Verdict::NoReportsYet => format!(
            "We have not received any reports about {list} yet. That is not a problem with your mail, it means your DNS does not yet ask mail providers to send us reports. Publishing the records below (usually a five-minute job for whoever manages your DNS) fixes it; reports start arriving within a day or two."
        ),
    }
    .replace("  ", " ")
    .to_owned()
    + if data.domains.is_empty() {
        " No domains are registered for this account yet."
    } else {
        ""
    }
}

/// The subject line of a week's digest.
pub fn subject(data: &DigestData, verdict: Verdict) -> String {
    let who = match data.domains.len() {
        0 => clean(&data.tenant),
        1 => data.domains[0].domain.clone(),
        n => format!("{} and {} more", data.domains[0].domain, n - 1),
    };
    clean(&format!(
        "[{who}] Weekly email security, {}: {}",
        data.week,
        verdict.text()
    ))
}

/// Renders a week's digest.
pub fn compose(data: &DigestData) -> Result<Composed, DigestError> {
    let verdict = Verdict::of(data);
    let tenant_has_data = data.domains.iter().any(DomainDigest::has_data);
    let domains: Vec<DomainView> = data
        .domains
        .iter()
        .map(|d| domain_view(d, data, tenant_has_data))
        .collect();
    let view = View {
        subject: subject(data, verdict),
        tenant: clean(&data.tenant),
        week: data.week.to_string(),
        period: period(data.week),
        verdict: verdict.text(),
        level: verdict.level(),
        opening: opening(data, verdict, &domains),
        domains,
        unsubscribe_url: data.unsubscribe_url.clone().unwrap_or_default(),
    };
    let text = TextTemplate { v: &view }.render()?;
    let html = HtmlTemplate { v: &view }.render()?;
    Ok(Composed {
        subject: view.subject,
        text: normalize_text(&text),
        html,
    })
}

/// Trailing spaces off every line, at most one blank line in a row, one final newline.
fn normalize_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = true;
    for line in s.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if blank {
                continue;
            }
            blank = true;
        } else {
            blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::*;

    fn week() -> IsoWeek {
        IsoWeek::parse("2026-W45").expect("week")
    }

    fn numbers(messages: u64) -> WeekNumbers {
        WeekNumbers {
            messages,
            dmarc_passed: messages,
            sources_known: 3,
            sources_new: 0,
            tls_successful: 500,
            tls_failed: 0,
            reporters: 4,
        }
    }

    fn domain(name: &str) -> DomainDigest {
        DomainDigest {
            domain: name.into(),
            this_week: numbers(1000),
            last_week: numbers(900),
            reporters_missing: vec![],
            regular_reporters_missing: vec![],
            regular_reporters_stopped: vec![],
            issues: vec![],
            tls: TlsSection {
                mta_sts_mode: Some("enforce".into()),
                ..Default::default()
            },
            sources: vec![SourceRow {
                ip: "192.0.2.10".into(),
                messages: 1000,
                dmarc_passed: 1000,
                dkim_aligned: 1000,
                spf_aligned: 990,
                new: false,
            }],
            sources_total: 1,
            health: None,
        }
    }

    fn data(domains: Vec<DomainDigest>) -> DigestData {
        DigestData {
            tenant: "Example Ltd".into(),
            week: week(),
            domains,
            setup: SetupHints {
                dmarc_rua: "dmarc@reports.example.net".into(),
                tlsrpt_rua: "tlsrpt@reports.example.net".into(),
            },
            unsubscribe_url: Some("https://sealwatch.example.net/unsubscribe?t=1".into()),
        }
    }

    fn issue(kind: &str, severity: IssueSeverity) -> Issue {
        Issue {
            kind: kind.into(),
            severity,
            acknowledged: false,
            resolved: false,
            summary: "Certificate expired on mx1.example.com.".into(),
            what_happened: "Senders could not verify the certificate.".into(),
            what_it_means: "Mail may be delayed.".into(),
            what_to_do: "Renew the certificate.".into(),
            who_fixes_it: "Your mail server administrator.".into(),
            since: "2026-10-19".into(),
        }
    }

    #[test]
    fn verdict_wording() {
        let mut d = data(vec![domain("example.com")]);
        assert_eq!(Verdict::of(&d), Verdict::AllClear);
        assert!(subject(&d, Verdict::of(&d)).ends_with("2026-W45: All clear"));
        d.domains[0]
            .issues
            .push(issue("tls-certificate-cluster", IssueSeverity::Critical));
        assert_eq!(Verdict::of(&d).text(), "1 issue needs attention");
        d.domains[0]
            .issues
            .push(issue("reporter-silent", IssueSeverity::Info));
        assert_eq!(Verdict::of(&d).text(), "2 issues need attention");
        assert_eq!(
            Verdict::of(&d),
            Verdict::Issues {
                count: 2,
                urgent: 1
            }
        );
        let mut empty = domain("example.org");
        empty.this_week = WeekNumbers::default();
        empty.last_week = WeekNumbers::default();
        empty.issues.push(issue("no-data", IssueSeverity::Info));
        let d = data(vec![empty.clone()]);
        assert_eq!(Verdict::of(&d), Verdict::NoReportsYet);
        empty.last_week = numbers(10);
        assert_eq!(
            Verdict::of(&data(vec![empty.clone()])),
            Verdict::NoReportsThisWeek
        );
        // Next to a domain that reports, a silent one needs attention.
        let both = data(vec![domain("example.com"), empty]);
        assert_eq!(
            Verdict::of(&both),
            Verdict::Issues {
                count: 1,
                urgent: 0
            }
        );
        let c = compose(&both).expect("renders");
        assert!(
            c.subject.ends_with("1 issue needs attention"),
            "{}",
            c.subject
        );
        assert!(
            c.text
                .contains("Most important: no reports arrived for example.org.")
        );
    }

    /// Every condition that must never read "All clear": each one alone, on an otherwise
    /// healthy week, makes the verdict an issue; an anomaly of the related kind explains
    /// it (no second issue); an unrelated one does not.
    #[test]
    fn numbers_that_cross_a_line_never_read_all_clear() {
        type Case = (
            &'static str,
            fn(&mut DomainDigest),
            &'static str,
            &'static str,
        );
        let cases: [Case; 7] = [
            (
                "TLS success rate down from the week before",
                |d| {
                    d.this_week.tls_successful = 528;
                    d.this_week.tls_failed = 472;
                },
                "tls-certificate-cluster",
                "dmarc-auth-drop",
            ),
            (
                "TLS success rate low without a week before",
                |d| {
                    d.last_week.tls_successful = 0;
                    d.last_week.tls_failed = 0;
                    d.this_week.tls_successful = 90;
                    d.this_week.tls_failed = 10;
                },
                "tls-single-provider",
                "reporter-silent",
            ),
            (
                "DMARC pass rate drop",
                |d| d.this_week.dmarc_passed = d.this_week.messages * 7 / 10,
                "dmarc-auth-drop",
                "tls-certificate-cluster",
            ),
            (
                "a missing reporter",
                |d| {
                    d.reporters_missing = vec!["Microsoft".into()];
                    d.regular_reporters_missing = vec!["Microsoft".into()];
                },
                "reporter-silent",
                "dmarc-auth-drop",
            ),
            (
                "a regular reporter that stopped during the week",
                |d| d.regular_reporters_stopped = vec![("Google".into(), 20_400)],
                "reporter-silent",
                "dmarc-auth-drop",
            ),
            (
                "a new failing source of real volume",
                |d| {
                    d.sources.push(SourceRow {
                        ip: "198.51.100.66".into(),
                        messages: 14_000,
                        dmarc_passed: 0,
                        dkim_aligned: 0,
                        spf_aligned: 0,
                        new: true,
                    })
                },
                "dmarc-new-unauthenticated-source",
                "tls-certificate-cluster",
            ),
            (
                "MTA-STS policy failures",
                |d| d.tls.failure_types = vec![("sts-policy-fetch-error".into(), 12)],
                "mta-sts-policy",
                "dmarc-auth-drop",
            ),
        ];
        for (name, change, explains, unrelated) in cases {
            let mut d = domain("example.com");
            assert_eq!(
                Verdict::of(&data(vec![d.clone()])),
                Verdict::AllClear,
                "{name}"
            );
            change(&mut d);
            let week = data(vec![d.clone()]);
            assert_eq!(
                Verdict::of(&week),
                Verdict::Issues {
                    count: 1,
                    urgent: 0
                },
                "{name}"
            );
            let c = compose(&week).expect("renders");
            let text = c.text.replace('\u{200B}', "");
            assert!(!text.contains("othing needs doing"), "{name}: {text}");
            assert!(
                text.contains("Something changed for example.com that we could not classify"),
                "{name}: {text}"
            );
            let mut explained = d.clone();
            explained
                .issues
                .push(issue(explains, IssueSeverity::Warning));
            assert_eq!(
                Verdict::of(&data(vec![explained])),
                Verdict::Issues {
                    count: 1,
                    urgent: 0
                },
                "{name}: explained by {explains}, one issue"
            );
            let mut other = d.clone();
            other.issues.push(issue(unrelated, IssueSeverity::Warning));
            assert_eq!(
                Verdict::of(&data(vec![other])),
                Verdict::Issues {
                    count: 2,
                    urgent: 0
                },
                "{name}: {unrelated} does not explain it"
            );
        }
    }

    #[test]
    fn a_week_whose_problem_was_resolved_since_says_so() {
        let mut d = domain("example.com");
        let mut fixed = issue("tls-certificate-cluster", IssueSeverity::Critical);
        fixed.resolved = true;
        d.issues.push(fixed);
        let week = data(vec![d.clone()]);
        assert_eq!(Verdict::of(&week), Verdict::ResolvedSince { count: 1 });
        let c = compose(&week).expect("renders");
        assert!(
            c.subject.ends_with("1 issue this week, resolved since"),
            "{}",
            c.subject
        );
        assert!(c.text.contains("resolved since"), "{}", c.text);
        assert!(!c.text.contains("Good news"), "{}", c.text);
        // An open issue next to it decides the verdict.
        d.issues.push(issue("reporter-silent", IssueSeverity::Info));
        assert_eq!(
            Verdict::of(&data(vec![d])),
            Verdict::Issues {
                count: 1,
                urgent: 0
            }
        );
    }

    #[test]
    fn hostile_report_values_are_escaped_and_not_linkable() {
        let mut d = domain("example.com");
        d.reporters_missing = vec!["<script>alert(1)</script> evil.example".into()];
        d.tls.mx = vec![MxRow {
            host: "mx1.example.com\r\nBcc: victim@example.org".into(),
            failed: 3,
            result_types: vec!["<img src=x onerror=alert(1)>".into()],
        }];
        d.tls.failure_types = vec![("<b>bold</b>".into(), 3)];
        d.sources[0].ip = "203.0.113.9\"><a href=\"https://evil\">".into();
        let c = compose(&data(vec![d])).expect("renders");
        std::fs::write(std::env::temp_dir().join("digest-hostile.html"), &c.html).ok();
        assert!(!c.html.contains("<script>"), "raw script tag in HTML");
        assert!(c.html.contains("&#60;script&#62;alert(1)"));
        assert!(!c.html.contains("<img"));
        assert!(!c.html.contains("<b>bold"));
        assert!(!c.html.contains("href=\"https://evil"));
        assert!(!c.html.contains("192.0.2") && !c.html.contains("203.0.113.9\""));
        assert!(c.html.contains("203.\u{200B}0.\u{200B}113.\u{200B}9"));
        // Line breaks from a report never start a new line in the text part.
        assert!(!c.text.contains("\nBcc:"));
        assert!(c.text.contains("mx1.\u{200B}example.\u{200B}com Bcc"));
        assert!(!c.subject.contains('\n'));
    }

    #[test]
    fn numbers_are_never_rounded_into_a_false_all_clear() {
        assert_eq!(percent(Some(0.99999)), "99.9%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(Some(0.00001)), "0.1%");
        assert_eq!(percent(None), "–");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(count_change(110, 100), "up 10%");
        assert_eq!(count_change(0, 0), "–");
    }

    #[test]
    fn clean_caps_and_flattens() {
        let long = "a".repeat(500);
        assert_eq!(clean(&long).chars().count(), MAX_FIELD_CHARS + 1);
        assert_eq!(clean("a\n\n\tb\u{0}c"), "a b c");
        assert_eq!(defang("10.0.0.1"), "10.\u{200B}0.\u{200B}0.\u{200B}1");
        assert_eq!(
            defang_prose("Seen on mx1.example.com. Fix: https://x.org"),
            "Seen on mx1.\u{200B}example.\u{200B}com. Fix: https:\u{200B}//x.\u{200B}org"
        );
    }
}
