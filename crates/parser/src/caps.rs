//! The last step before a report leaves the parser: bounds what a sender can make us keep.
//!
//! Readers keep every value a report holds; this step then cuts each string to
//! [`Limits::max_field_bytes`] (on a character boundary) and each TLS-RPT policy's
//! `failure-details` to [`Limits::max_failure_details`] rows, and says so in one warning per
//! report (plus one per policy whose rows were dropped). Summary counts are left as the
//! sender wrote them: they are numbers, not rows.

use std::collections::BTreeMap;

use sealwatch_model::{
    AggregateReport, Alignment, DiscoveryMethod, Disposition, DkimResult, DmarcResult,
    FailureReport, MaybeIp, OverrideType, PolicyAction, Report, ReportId, SpfResult, SpfScope,
    Submitter, TlsPolicy, TlsPolicyType, TlsReport, TlsResultType,
};

use crate::Limits;
use crate::warnings::{LimitWarning, TruncatedField};

/// Applies the field and row limits to one report, adding warnings for what was cut.
pub(crate) fn apply(report: &mut Report, limits: &Limits) {
    let mut notes = Vec::new();
    if let Report::TlsRpt(t) = report {
        for (index, policy) in t.policies.iter_mut().enumerate() {
            notes.extend(drop_failure_details(
                policy,
                index.saturating_add(1),
                limits.max_failure_details,
            ));
        }
    }
    let mut cut = Cutter::new(limits.max_field_bytes);
    match report {
        Report::DmarcAggregate(r) => aggregate(r, &mut cut),
        Report::TlsRpt(r) => tls(r, &mut cut),
        Report::DmarcFailure(r) => failure(r, &mut cut),
    }
    cut.submitter(report.submitter_mut());
    let warnings = report.warnings_mut();
    cut.all(warnings, "warning");
    notes.extend(cut.finish());
    warnings.extend(notes.iter().map(ToString::to_string));
}

/// Keeps the first `limit` failure-details rows of a policy.
fn drop_failure_details(
    policy: &mut TlsPolicy,
    number: usize,
    limit: usize,
) -> Option<LimitWarning> {
    if policy.failure_details.len() <= limit {
        return None;
    }
    let dropped = policy.failure_details.split_off(limit);
    policy.failure_details.shrink_to_fit();
    Some(LimitWarning::FailureDetailsDropped {
        policy: number,
        kept: limit,
        rows: dropped.len(),
        failed_sessions: dropped
            .iter()
            .fold(0u64, |sum, d| sum.saturating_add(d.failed_sessions)),
    })
}

fn aggregate(r: &mut AggregateReport, cut: &mut Cutter) {
    cut.text(&mut r.org_name, "org_name");
    cut.report_id(&mut r.report_id, "report_id");
    cut.opt(&mut r.email, "email");
    cut.opt(&mut r.extra_contact_info, "extra_contact_info");
    cut.all(&mut r.errors, "error");
    cut.opt(&mut r.generator, "generator");
    cut.opt(&mut r.version, "version");
    cut.opt(&mut r.xml_namespace, "xmlns");
    let p = &mut r.policy_published;
    cut.text(&mut p.domain, "policy_published/domain");
    cut.other(&mut p.adkim, "adkim");
    cut.other(&mut p.aspf, "aspf");
    cut.other(&mut p.p, "p");
    cut.other(&mut p.sp, "sp");
    cut.other(&mut p.np, "np");
    cut.opt(&mut p.fo, "fo");
    cut.other(&mut p.discovery_method, "discovery_method");
    for record in &mut r.records {
        cut.ip(&mut record.source_ip, "source_ip");
        let pe = &mut record.policy_evaluated;
        cut.other(&mut pe.disposition, "disposition");
        cut.other(&mut pe.dkim, "policy_evaluated/dkim");
        cut.other(&mut pe.spf, "policy_evaluated/spf");
        for reason in &mut pe.reasons {
            cut.other(&mut reason.kind, "reason/type");
            cut.opt(&mut reason.comment, "reason/comment");
        }
        let ids = &mut record.identifiers;
        cut.opt(&mut ids.header_from, "header_from");
        cut.opt(&mut ids.envelope_from, "envelope_from");
        cut.opt(&mut ids.envelope_to, "envelope_to");
        for dkim in &mut record.auth_results.dkim {
            cut.opt(&mut dkim.domain, "dkim/domain");
            cut.opt(&mut dkim.selector, "dkim/selector");
            cut.other(&mut dkim.result, "dkim/result");
            cut.opt(&mut dkim.human_result, "dkim/human_result");
        }
        for spf in &mut record.auth_results.spf {
            cut.opt(&mut spf.domain, "spf/domain");
            cut.other(&mut spf.scope, "spf/scope");
            cut.other(&mut spf.result, "spf/result");
            cut.opt(&mut spf.human_result, "spf/human_result");
        }
    }
    cut.all(&mut r.extensions, "extension");
}

fn tls(r: &mut TlsReport, cut: &mut Cutter) {
    cut.text(&mut r.org_name, "organization-name");
    cut.report_id(&mut r.report_id, "report-id");
    cut.opt(&mut r.contact_info, "contact-info");
    for policy in &mut r.policies {
        cut.other(&mut policy.policy_type, "policy-type");
        cut.all(&mut policy.policy_strings, "policy-string");
        cut.all(&mut policy.mx_hosts, "mx-host");
        for d in &mut policy.failure_details {
            cut.other(&mut d.result_type, "result-type");
            cut.ip(&mut d.sending_mta_ip, "sending-mta-ip");
            cut.opt(&mut d.receiving_mx_hostname, "receiving-mx-hostname");
            cut.opt(&mut d.receiving_mx_helo, "receiving-mx-helo");
            cut.ip(&mut d.receiving_ip, "receiving-ip");
            cut.opt(&mut d.additional_information, "additional-information");
            cut.opt(&mut d.failure_reason_code, "failure-reason-code");
        }
    }
}

fn failure(r: &mut FailureReport, cut: &mut Cutter) {
    cut.opt(&mut r.org_name, "org_name");
    cut.opt(&mut r.report_id, "report_id");
    cut.opt(&mut r.feedback_type, "feedback-type");
    cut.ip(&mut r.source_ip, "source-ip");
    cut.opt(&mut r.auth_failure, "auth-failure");
    cut.all(&mut r.authentication_results, "authentication-results");
    cut.opt(&mut r.original_mail_from, "original-mail-from");
    cut.opt(&mut r.original_rcpt_to, "original-rcpt-to");
    cut.opt(&mut r.delivery_result, "delivery-result");
    cut.opt(&mut r.dkim_domain, "dkim-domain");
    cut.opt(&mut r.dkim_selector, "dkim-selector");
    cut.opt(&mut r.user_agent, "user-agent");
    cut.fields(&mut r.fields);
}

/// Cuts strings to a byte limit and remembers which fields it cut.
struct Cutter {
    limit: usize,
    cut: Vec<TruncatedField>,
}

impl Cutter {
    fn new(limit: usize) -> Self {
        Cutter {
            limit,
            cut: Vec::new(),
        }
    }

    fn text(&mut self, s: &mut String, field: &'static str) {
        if s.len() <= self.limit {
            return;
        }
        let original = s.len();
        s.truncate(s.floor_char_boundary(self.limit));
        // The cut-off part must not stay allocated for the life of the report.
        s.shrink_to_fit();
        self.note(field, original);
    }

    fn note(&mut self, field: &'static str, original: usize) {
        match self.cut.iter_mut().find(|f| f.field == field) {
            Some(f) => {
                f.values = f.values.saturating_add(1);
                f.longest = f.longest.max(original);
            }
            None => self.cut.push(TruncatedField {
                field,
                values: 1,
                longest: original,
            }),
        }
    }

    fn opt(&mut self, s: &mut Option<String>, field: &'static str) {
        if let Some(s) = s {
            self.text(s, field);
        }
    }

    fn all(&mut self, items: &mut [String], field: &'static str) {
        for s in items {
            self.text(s, field);
        }
    }

    fn ip(&mut self, ip: &mut impl AsMaybeIp, field: &'static str) {
        if let Some(MaybeIp::Invalid(raw)) = ip.as_maybe_ip() {
            self.text(raw, field);
        }
    }

    fn other(&mut self, value: &mut impl OtherText, field: &'static str) {
        if let Some(raw) = value.other_text() {
            self.text(raw, field);
        }
    }

    /// A report id is cut like any other value; an id that no longer parses (a limit of
    /// zero bytes) is kept as it was, since a report cannot be without one.
    fn report_id(&mut self, id: &mut ReportId, field: &'static str) {
        let original = id.as_str().len();
        if original <= self.limit {
            return;
        }
        let raw = id.as_str();
        if let Ok(short) = ReportId::parse(&raw[..raw.floor_char_boundary(self.limit)]) {
            *id = short;
            self.note(field, original);
        }
    }

    /// Feedback-report fields: names and values are cut; names that become equal share
    /// one entry.
    fn fields(&mut self, fields: &mut BTreeMap<String, Vec<String>>) {
        for values in fields.values_mut() {
            self.all(values, "feedback report field");
        }
        if fields.keys().all(|k| k.len() <= self.limit) {
            return;
        }
        let mut renamed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (mut name, values) in std::mem::take(fields) {
            self.text(&mut name, "feedback report field name");
            renamed.entry(name).or_default().extend(values);
        }
        *fields = renamed;
    }

    fn submitter(&mut self, s: &mut Submitter) {
        self.opt(&mut s.from, "from");
        self.opt(&mut s.subject, "subject");
        self.opt(&mut s.message_id, "message-id");
        self.opt(&mut s.tls_report_submitter, "tls-report-submitter");
        self.opt(&mut s.tls_report_domain, "tls-report-domain");
        self.opt(&mut s.filename, "filename");
    }

    fn finish(self) -> Option<LimitWarning> {
        (!self.cut.is_empty()).then_some(LimitWarning::FieldTruncated {
            limit: self.limit,
            fields: self.cut,
        })
    }
}

/// Values that may hold an address kept verbatim because it did not parse.
trait AsMaybeIp {
    fn as_maybe_ip(&mut self) -> Option<&mut MaybeIp>;
}

impl AsMaybeIp for MaybeIp {
    fn as_maybe_ip(&mut self) -> Option<&mut MaybeIp> {
        Some(self)
    }
}

impl AsMaybeIp for Option<MaybeIp> {
    fn as_maybe_ip(&mut self) -> Option<&mut MaybeIp> {
        self.as_mut()
    }
}

/// Enumerations that keep an unknown value verbatim in `Other`.
trait OtherText {
    fn other_text(&mut self) -> Option<&mut String>;
}

impl<T: OtherText> OtherText for Option<T> {
    fn other_text(&mut self) -> Option<&mut String> {
        self.as_mut().and_then(OtherText::other_text)
    }
}

macro_rules! impl_other_text {
    ($($t:ident),*) => {$(
        impl OtherText for $t {
            fn other_text(&mut self) -> Option<&mut String> {
                match self {
                    $t::Other(raw) => Some(raw),
                    _ => None,
                }
            }
        }
    )*};
}
impl_other_text!(
    Alignment,
    PolicyAction,
    Disposition,
    DmarcResult,
    OverrideType,
    DkimResult,
    SpfResult,
    SpfScope,
    DiscoveryMethod,
    TlsPolicyType,
    TlsResultType
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_cut_on_a_character_boundary() {
        let mut cut = Cutter::new(5);
        let mut s = "abcdé".to_owned(); // `é` is bytes 4..6
        cut.text(&mut s, "x");
        assert_eq!(s, "abcd");
        let mut short = "abc".to_owned();
        cut.text(&mut short, "y");
        assert_eq!(short, "abc");
        let Some(LimitWarning::FieldTruncated { limit, fields }) = cut.finish() else {
            panic!("a field was cut");
        };
        assert_eq!(limit, 5);
        assert_eq!(
            fields,
            vec![TruncatedField {
                field: "x",
                values: 1,
                longest: 6
            }]
        );
    }

    #[test]
    fn repeated_fields_are_counted_once_with_the_longest_length() {
        let mut cut = Cutter::new(2);
        let mut items = vec!["abc".to_owned(), "abcdef".to_owned(), "a".to_owned()];
        cut.all(&mut items, "mx-host");
        assert_eq!(items, ["ab", "ab", "a"]);
        let warning = cut.finish().expect("fields were cut").to_string();
        assert_eq!(
            warning,
            "field-truncated: values cut to 2 bytes: mx-host (2 values, longest 6 bytes)"
        );
    }

    #[test]
    fn feedback_field_names_that_become_equal_are_merged() {
        let mut fields = BTreeMap::new();
        fields.insert("abcd".to_owned(), vec!["1".to_owned()]);
        fields.insert("abce".to_owned(), vec!["2".to_owned()]);
        let mut cut = Cutter::new(3);
        cut.fields(&mut fields);
        assert_eq!(fields.len(), 1);
        assert_eq!(fields["abc"], ["1", "2"]);
    }
}
