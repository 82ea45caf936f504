//! BIMI assertion records (`default._bimi` TXT `v=BIMI1; l=<SVG URL>; a=<VMC URL>`).

use super::tags::{TagList, starts_with_version};

/// True when a TXT record is a BIMI record.
pub fn is_bimi(txt: &str) -> bool {
    starts_with_version(txt, "v", "BIMI1")
}

/// A parsed BIMI record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BimiRecord {
    /// `l=`: the logo (an https: URL of an SVG Tiny PS file); `None` when empty (declined).
    pub logo: Option<String>,
    /// `a=`: the mark certificate (VMC/CMC PEM); `None` when absent or empty.
    pub authority: Option<String>,
    /// Problems, each a sentence.
    pub problems: Vec<String>,
}

impl BimiRecord {
    /// Parses a record; `Err` when it is not a tag list starting with `v=BIMI1`.
    pub fn parse(txt: &str) -> Result<Self, String> {
        let tags = TagList::parse(txt).map_err(|e| e.to_string())?;
        match tags.first() {
            Some(("v", "BIMI1")) => {}
            _ => return Err("the record must start with \"v=BIMI1\"".to_owned()),
        }
        let mut problems = Vec::new();
        let logo = match tags.get("l") {
            None => {
                problems.push("the l= tag (logo URL) is missing".to_owned());
                None
            }
            Some("") => None,
            Some(l) => {
                let first = l.split(',').next().unwrap_or_default().trim();
                if !first.to_ascii_lowercase().starts_with("https://") {
                    problems.push(format!("l={l}: the logo must be an https: URL"));
                } else if !first.to_ascii_lowercase().ends_with(".svg") {
                    problems.push(format!("l={l}: the logo must be an SVG file (.svg)"));
                }
                Some(l.to_owned())
            }
        };
        let authority = match tags.get("a") {
            None | Some("") => None,
            Some(a) => {
                if !a.to_ascii_lowercase().starts_with("https://") {
                    problems.push(format!("a={a}: the certificate must be an https: URL"));
                }
                Some(a.to_owned())
            }
        };
        Ok(Self {
            logo,
            authority,
            problems,
        })
    }

    /// `l=` empty: the domain declines to show a logo.
    pub fn declined(&self) -> bool {
        self.logo.is_none() && self.problems.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let r = BimiRecord::parse("v=BIMI1; l=https://x.test/logo.svg; a=https://x.test/vmc.pem")
            .expect("valid");
        assert!(r.problems.is_empty());
        assert!(r.authority.is_some());
        let d = BimiRecord::parse("v=BIMI1; l=; a=;").expect("valid");
        assert!(d.declined());
        let bad = BimiRecord::parse("v=BIMI1; l=http://x.test/logo.png").expect("parses");
        assert_eq!(bad.problems.len(), 1);
        assert!(BimiRecord::parse("l=x; v=BIMI1").is_err());
        assert!(is_bimi("v=BIMI1; l="));
    }
}
