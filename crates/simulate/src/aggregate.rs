//! DMARC aggregate reports as plain data, and their XML form.

use std::borrow::Cow;
use std::io::{self, Write};

/// A DMARC aggregate report (RFC 7489 appendix C / RFC 9990) as data.
///
/// Fields are named after the XML elements they become. Enumerated values (`p`,
/// `disposition`, results, …) are strings written verbatim, so a scenario can produce the
/// odd spellings real reporters use (`PASS`, `hardfail`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcAggregate {
    /// `<version>`; `None` leaves the element out.
    pub version: Option<String>,
    /// `report_metadata/org_name`.
    pub org_name: String,
    /// `report_metadata/email`.
    pub email: String,
    /// `report_metadata/extra_contact_info`; `None` leaves the element out.
    pub extra_contact_info: Option<String>,
    /// `report_metadata/report_id`.
    pub report_id: String,
    /// `date_range/begin`, seconds since the Unix epoch.
    pub begin: i64,
    /// `date_range/end`, seconds since the Unix epoch.
    pub end: i64,
    /// `report_metadata/error` elements.
    pub errors: Vec<String>,
    /// RFC 9990 `report_metadata/generator`.
    pub generator: Option<String>,
    /// `policy_published`.
    pub policy: PolicyPublished,
    /// The `record` elements, in order.
    pub records: Vec<Record>,
}

/// `policy_published`, one field per element; `None` fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyPublished {
    pub domain: String,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    pub p: String,
    pub sp: Option<String>,
    pub np: Option<String>,
    pub pct: Option<u8>,
    pub fo: Option<String>,
    /// RFC 9990 `testing` (`n` / `y`).
    pub testing: Option<String>,
    /// RFC 9990 `discovery_method` (`psl` / `treewalk`).
    pub discovery_method: Option<String>,
}

/// One `<record>`: row, identifiers and authentication results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// `row/source_ip`, as written (need not be a valid address).
    pub source_ip: String,
    /// `row/count`: messages this record stands for.
    pub count: u64,
    /// `policy_evaluated/disposition`.
    pub disposition: String,
    /// `policy_evaluated/dkim` (DMARC-aligned DKIM verdict).
    pub dkim: String,
    /// `policy_evaluated/spf` (DMARC-aligned SPF verdict).
    pub spf: String,
    /// `policy_evaluated/reason` elements.
    pub reasons: Vec<Reason>,
    /// `identifiers/envelope_to`.
    pub envelope_to: Option<String>,
    /// `identifiers/envelope_from`; `None` leaves the element out.
    pub envelope_from: Option<String>,
    /// `identifiers/header_from`.
    pub header_from: String,
    /// `auth_results/dkim` elements, in order.
    pub dkim_results: Vec<DkimAuth>,
    /// `auth_results/spf` elements, in order.
    pub spf_results: Vec<SpfAuth>,
}

/// A policy override reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reason {
    /// `type` (`forwarded`, `local_policy`, …).
    pub kind: String,
    /// `comment`, if any.
    pub comment: Option<String>,
}

/// One DKIM signature result (`auth_results/dkim`), one field per element; `None`
/// fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DkimAuth {
    pub domain: String,
    pub selector: Option<String>,
    pub result: String,
    pub human_result: Option<String>,
}

/// One SPF check result (`auth_results/spf`), one field per element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpfAuth {
    pub domain: String,
    /// `mfrom` / `helo`; `None` leaves the element out.
    pub scope: Option<String>,
    pub result: String,
}

/// The fields of `policy_published`, for choosing their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyField {
    Domain,
    DiscoveryMethod,
    Adkim,
    Aspf,
    P,
    Sp,
    Np,
    Pct,
    Fo,
    Testing,
}

impl PolicyField {
    /// The order of RFC 7489 appendix C (plus `np`, `testing`, `discovery_method` last).
    pub const RFC: &'static [PolicyField] = &[
        PolicyField::Domain,
        PolicyField::Adkim,
        PolicyField::Aspf,
        PolicyField::P,
        PolicyField::Sp,
        PolicyField::Np,
        PolicyField::Pct,
        PolicyField::Fo,
        PolicyField::Testing,
        PolicyField::DiscoveryMethod,
    ];
}

/// Child order inside `auth_results/dkim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimOrder {
    /// `domain, selector, result` (the schema order).
    DomainSelectorResult,
    /// `domain, result, selector` (what Google writes).
    DomainResultSelector,
}

/// How a reporter lays out its XML: everything that varies between real reporters but
/// carries no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlStyle {
    /// The XML declaration as written (`None`: no declaration).
    pub declaration: Option<&'static str>,
    /// Default namespace of `feedback` (RFC 9990: `urn:ietf:params:xml:ns:dmarc-2.0`).
    pub namespace: Option<&'static str>,
    /// Further attributes of `feedback` (unused namespace declarations and the like).
    pub root_attributes: &'static [(&'static str, &'static str)],
    /// Indentation per level; `None` writes the whole report on one line.
    pub indent: Option<&'static str>,
    /// What ends each line when indenting (`"\n"`, or `"\t\n"` for trailing tabs).
    pub line_end: &'static str,
    /// Order of the `policy_published` children.
    pub policy_order: &'static [PolicyField],
    /// Order of the `auth_results/dkim` children.
    pub dkim_order: DkimOrder,
}

impl Default for XmlStyle {
    fn default() -> Self {
        XmlStyle {
            declaration: Some(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
            namespace: None,
            root_attributes: &[],
            indent: Some("  "),
            line_end: "\n",
            policy_order: PolicyField::RFC,
            dkim_order: DkimOrder::DomainSelectorResult,
        }
    }
}

/// Escapes text for XML content or a quoted attribute value: `& < > " '` become entity
/// references and characters XML 1.0 does not allow (most C0 controls, U+FFFE, U+FFFF)
/// are dropped.
pub fn escape_xml(text: &str) -> Cow<'_, str> {
    let needs_work = text
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || !is_xml_char(c));
    if !needs_work {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    Cow::Owned(out)
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

impl DmarcAggregate {
    /// Sum of the record counts.
    pub fn message_count(&self) -> u64 {
        self.records.iter().map(|r| r.count).sum()
    }

    /// The report as an XML document.
    pub fn to_xml(&self, style: &XmlStyle) -> String {
        let mut buf = Vec::with_capacity(1024 + self.records.len() * 700);
        // Writing into a Vec cannot fail.
        let _ = self.write_xml(style, &mut buf);
        String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Writes the report as an XML document.
    pub fn write_xml<W: Write + ?Sized>(&self, style: &XmlStyle, out: &mut W) -> io::Result<()> {
        let mut x = XmlOut {
            w: out,
            style,
            depth: 0,
        };
        if let Some(decl) = style.declaration {
            x.raw_line(decl)?;
        }
        x.start_line()?;
        x.w.write_all(b"<feedback")?;
        if let Some(ns) = style.namespace {
            write!(x.w, " xmlns=\"{}\"", escape_xml(ns))?;
        }
        for (name, value) in style.root_attributes {
            write!(x.w, " {name}=\"{}\"", escape_xml(value))?;
        }
        x.w.write_all(b">")?;
        x.end_line()?;
        x.depth += 1;

        if let Some(v) = &self.version {
            x.leaf("version", v)?;
        }
        x.open("report_metadata")?;
        x.leaf("org_name", &self.org_name)?;
        x.leaf("email", &self.email)?;
        x.opt_leaf("extra_contact_info", self.extra_contact_info.as_deref())?;
        x.leaf("report_id", &self.report_id)?;
        x.open("date_range")?;
        x.leaf_display("begin", self.begin)?;
        x.leaf_display("end", self.end)?;
        x.close("date_range")?;
        for e in &self.errors {
            x.leaf("error", e)?;
        }
        x.opt_leaf("generator", self.generator.as_deref())?;
        x.close("report_metadata")?;

        let p = &self.policy;
        x.open("policy_published")?;
        for field in style.policy_order {
            match field {
                PolicyField::Domain => x.leaf("domain", &p.domain)?,
                PolicyField::DiscoveryMethod => {
                    x.opt_leaf("discovery_method", p.discovery_method.as_deref())?
                }
                PolicyField::Adkim => x.opt_leaf("adkim", p.adkim.as_deref())?,
                PolicyField::Aspf => x.opt_leaf("aspf", p.aspf.as_deref())?,
                PolicyField::P => x.leaf("p", &p.p)?,
                PolicyField::Sp => x.opt_leaf("sp", p.sp.as_deref())?,
                PolicyField::Np => x.opt_leaf("np", p.np.as_deref())?,
                PolicyField::Pct => {
                    if let Some(pct) = p.pct {
                        x.leaf_display("pct", pct)?;
                    }
                }
                PolicyField::Fo => x.opt_leaf("fo", p.fo.as_deref())?,
                PolicyField::Testing => x.opt_leaf("testing", p.testing.as_deref())?,
            }
        }
        x.close("policy_published")?;

        for r in &self.records {
            x.record(r)?;
        }

        x.depth -= 1;
        x.start_line()?;
        x.w.write_all(b"</feedback>")?;
        x.end_line()
    }
}

struct XmlOut<'a, W: Write + ?Sized> {
    w: &'a mut W,
    style: &'a XmlStyle,
    depth: usize,
}

impl<W: Write + ?Sized> XmlOut<'_, W> {
    fn start_line(&mut self) -> io::Result<()> {
        if let Some(indent) = self.style.indent {
            for _ in 0..self.depth {
                self.w.write_all(indent.as_bytes())?;
            }
        }
        Ok(())
    }

    fn end_line(&mut self) -> io::Result<()> {
        if self.style.indent.is_some() {
            self.w.write_all(self.style.line_end.as_bytes())?;
        }
        Ok(())
    }

    fn raw_line(&mut self, text: &str) -> io::Result<()> {
        self.start_line()?;
        self.w.write_all(text.as_bytes())?;
        self.end_line()
    }

    fn open(&mut self, tag: &str) -> io::Result<()> {
        self.start_line()?;
        write!(self.w, "<{tag}>")?;
        self.end_line()?;
        self.depth += 1;
        Ok(())
    }

    fn close(&mut self, tag: &str) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        self.start_line()?;
        write!(self.w, "</{tag}>")?;
        self.end_line()
    }

    fn leaf(&mut self, tag: &str, value: &str) -> io::Result<()> {
        self.start_line()?;
        write!(self.w, "<{tag}>{}</{tag}>", escape_xml(value))?;
        self.end_line()
    }

    fn leaf_display(&mut self, tag: &str, value: impl std::fmt::Display) -> io::Result<()> {
        self.start_line()?;
        write!(self.w, "<{tag}>{value}</{tag}>")?;
        self.end_line()
    }

    fn opt_leaf(&mut self, tag: &str, value: Option<&str>) -> io::Result<()> {
        match value {
            Some(v) => self.leaf(tag, v),
            None => Ok(()),
        }
    }

    fn record(&mut self, r: &Record) -> io::Result<()> {
        self.open("record")?;
        self.open("row")?;
        self.leaf("source_ip", &r.source_ip)?;
        self.leaf_display("count", r.count)?;
        self.open("policy_evaluated")?;
        self.leaf("disposition", &r.disposition)?;
        self.leaf("dkim", &r.dkim)?;
        self.leaf("spf", &r.spf)?;
        for reason in &r.reasons {
            self.open("reason")?;
            self.leaf("type", &reason.kind)?;
            self.opt_leaf("comment", reason.comment.as_deref())?;
            self.close("reason")?;
        }
        self.close("policy_evaluated")?;
        self.close("row")?;
        self.open("identifiers")?;
        self.opt_leaf("envelope_to", r.envelope_to.as_deref())?;
        self.opt_leaf("envelope_from", r.envelope_from.as_deref())?;
        self.leaf("header_from", &r.header_from)?;
        self.close("identifiers")?;
        self.open("auth_results")?;
        for d in &r.dkim_results {
            self.open("dkim")?;
            self.leaf("domain", &d.domain)?;
            match self.style.dkim_order {
                DkimOrder::DomainSelectorResult => {
                    self.opt_leaf("selector", d.selector.as_deref())?;
                    self.leaf("result", &d.result)?;
                }
                DkimOrder::DomainResultSelector => {
                    self.leaf("result", &d.result)?;
                    self.opt_leaf("selector", d.selector.as_deref())?;
                }
            }
            self.opt_leaf("human_result", d.human_result.as_deref())?;
            self.close("dkim")?;
        }
        for s in &r.spf_results {
            self.open("spf")?;
            self.leaf("domain", &s.domain)?;
            self.opt_leaf("scope", s.scope.as_deref())?;
            self.leaf("result", &s.result)?;
            self.close("spf")?;
        }
        self.close("auth_results")?;
        self.close("record")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DmarcAggregate {
        DmarcAggregate {
            version: Some("1.0".into()),
            org_name: "example.net".into(),
            email: "dmarc@example.net".into(),
            extra_contact_info: None,
            report_id: "42".into(),
            begin: 1_700_000_000,
            end: 1_700_086_399,
            errors: vec![],
            generator: None,
            policy: PolicyPublished {
                domain: "example.com".into(),
                adkim: Some("r".into()),
                aspf: Some("r".into()),
                p: "none".into(),
                pct: Some(100),
                ..PolicyPublished::default()
            },
            records: vec![Record {
                source_ip: "192.0.2.1".into(),
                count: 3,
                disposition: "none".into(),
                dkim: "pass".into(),
                spf: "fail".into(),
                reasons: vec![],
                envelope_to: None,
                envelope_from: Some("example.com".into()),
                header_from: "example.com".into(),
                dkim_results: vec![DkimAuth {
                    domain: "example.com".into(),
                    selector: Some("s1".into()),
                    result: "pass".into(),
                    human_result: None,
                }],
                spf_results: vec![SpfAuth {
                    domain: "example.com".into(),
                    scope: Some("mfrom".into()),
                    result: "softfail".into(),
                }],
            }],
        }
    }

    #[test]
    fn hostile_values_are_escaped() {
        assert_eq!(escape_xml("<&\"'>"), "&lt;&amp;&quot;&apos;&gt;");
        assert_eq!(escape_xml("plain.example"), "plain.example");
        assert!(matches!(escape_xml("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_xml("a\u{7}b\u{0}c\td"), "abc\td");

        let mut r = sample();
        r.org_name = "</org_name><injected/>".into();
        r.records[0].reasons.push(Reason {
            kind: "local_policy".into(),
            comment: Some("arc=pass <&\"'> \u{1b}".into()),
        });
        let xml = r.to_xml(&XmlStyle::default());
        assert!(xml.contains("<org_name>&lt;/org_name&gt;&lt;injected/&gt;</org_name>"));
        assert!(xml.contains("<comment>arc=pass &lt;&amp;&quot;&apos;&gt; </comment>"));
        assert!(!xml.contains("<injected/>"));
        assert!(!xml.contains('\u{1b}'));
    }

    #[test]
    fn writes_the_schema_layout() {
        let xml = sample().to_xml(&XmlStyle::default());
        let expected_order = [
            "<?xml",
            "<feedback>",
            "<version>1.0</version>",
            "<report_metadata>",
            "<report_id>42</report_id>",
            "<begin>1700000000</begin>",
            "<policy_published>",
            "<p>none</p>",
            "<pct>100</pct>",
            "<record>",
            "<source_ip>192.0.2.1</source_ip>",
            "<count>3</count>",
            "<envelope_from>example.com</envelope_from>",
            "<header_from>example.com</header_from>",
            "<selector>s1</selector>",
            "<result>pass</result>",
            "<scope>mfrom</scope>",
            "<result>softfail</result>",
            "</feedback>",
        ];
        let mut at = 0;
        for needle in expected_order {
            let found = xml[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} missing after byte {at}:\n{xml}"));
            at += found + needle.len();
        }
        assert!(xml.contains("\n    <org_name>example.net</org_name>\n"));
    }

    #[test]
    fn style_changes_layout_only() {
        let style = XmlStyle {
            declaration: Some("<?xml version='1.0' encoding='utf-8'?>"),
            indent: None,
            namespace: Some("urn:ietf:params:xml:ns:dmarc-2.0"),
            dkim_order: DkimOrder::DomainResultSelector,
            ..XmlStyle::default()
        };
        let xml = sample().to_xml(&style);
        assert!(!xml.contains('\n'));
        assert!(xml.starts_with(
            "<?xml version='1.0' encoding='utf-8'?><feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">"
        ));
        assert!(xml.contains("<result>pass</result><selector>s1</selector>"));

        let tabbed = XmlStyle {
            line_end: "\t\n",
            ..XmlStyle::default()
        };
        let xml = sample().to_xml(&tabbed);
        assert!(xml.lines().all(|l| l.ends_with('\t')));
    }
}
