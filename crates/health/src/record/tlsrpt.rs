//! SMTP TLS reporting records (RFC 8460): `_smtp._tls` TXT `v=TLSRPTv1; rua=...`.

use super::tags::{TagList, starts_with_version};
use super::uri::{ReportUri, UriKind, parse_list};

/// True when a TXT record is a TLS-RPT record.
pub fn is_tlsrpt(txt: &str) -> bool {
    starts_with_version(txt, "v", "TLSRPTv1")
}

/// A parsed TLS-RPT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptRecord {
    pub tags: TagList,
    pub rua: Vec<ReportUri>,
    /// Invalid destinations, each a sentence.
    pub problems: Vec<String>,
}

impl TlsRptRecord {
    /// Parses a record; `Err` when it is unusable (not a tag list, wrong version, no `rua=`).
    pub fn parse(txt: &str) -> Result<Self, String> {
        let tags = TagList::parse(txt).map_err(|e| e.to_string())?;
        match tags.first() {
            Some(("v", "TLSRPTv1")) => {}
            _ => return Err("the record must start with \"v=TLSRPTv1\"".to_owned()),
        }
        let rua = tags
            .get("rua")
            .map(parse_list)
            .ok_or_else(|| "the required rua= tag is missing".to_owned())?;
        if rua.is_empty() {
            return Err("rua= lists no destination".to_owned());
        }
        let problems = rua
            .iter()
            .filter_map(|u| match &u.kind {
                UriKind::Invalid { reason } => Some(format!("rua: {reason}")),
                _ => None,
            })
            .collect();
        Ok(Self {
            tags,
            rua,
            problems,
        })
    }

    /// The record with `mailto:address` added to `rua=`.
    pub fn with_rua(&self, address: &str) -> String {
        let mut list: Vec<String> = self.rua.iter().map(|u| u.raw.clone()).collect();
        list.push(format!("mailto:{address}"));
        let mut t = self.tags.clone();
        t.set("rua", &list.join(","));
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let r = TlsRptRecord::parse("v=TLSRPTv1; rua=mailto:t@sealwatch.test,https://r.test/x")
            .expect("valid");
        assert_eq!(r.rua.len(), 2);
        assert!(r.problems.is_empty());
        assert_eq!(
            r.with_rua("o@ours.test"),
            "v=TLSRPTv1; rua=mailto:t@sealwatch.test,https://r.test/x,mailto:o@ours.test"
        );
    }

    #[test]
    fn rejects_broken_records() {
        assert!(TlsRptRecord::parse("v=TLSRPTv1").is_err());
        assert!(TlsRptRecord::parse("v=TLSRPTv1; rua=").is_err());
        assert!(TlsRptRecord::parse("rua=mailto:a@b.test; v=TLSRPTv1").is_err());
        let r = TlsRptRecord::parse("v=TLSRPTv1; rua=tls@x.test").expect("parses");
        assert_eq!(r.problems.len(), 1);
        assert!(is_tlsrpt("v=TLSRPTv1;rua=mailto:a@b.test"));
    }
}
