//! Out-of-band metadata that helps fill gaps in a report: the attachment or file name
//! and the carrying email's headers.

use sealwatch_model::Submitter;

/// What the container told us about a payload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hints<'a> {
    pub filename: Option<&'a str>,
    pub submitter: Option<&'a Submitter>,
}

impl<'a> Hints<'a> {
    /// The `n`th `!`-separated part of the file name
    /// (`receiver!policy-domain!begin!end[!unique-id].xml.gz`), without extensions.
    pub fn filename_part(&self, n: usize) -> Option<&'a str> {
        let name = self.filename?;
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        if !base.contains('!') {
            return None;
        }
        let part = base.split('!').nth(n)?;
        // Only the last part carries the extension(s).
        let part = if n >= 3 {
            part.split('.').next().unwrap_or(part)
        } else {
            part
        };
        Some(part.trim()).filter(|p| !p.is_empty())
    }

    /// `TLS-Report-Domain` header of the carrying email.
    pub fn tls_report_domain(&self) -> Option<&'a str> {
        self.submitter?.tls_report_domain.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_file_names_are_split() {
        let h = Hints {
            filename: Some("dir/google.com!example.ca!1725321600!1725407999!001.json.gz"),
            submitter: None,
        };
        assert_eq!(h.filename_part(0), Some("google.com"));
        assert_eq!(h.filename_part(1), Some("example.ca"));
        assert_eq!(h.filename_part(3), Some("1725407999"));
        let empty = Hints {
            filename: Some("!example.com!1538204542!1538463818.xml"),
            submitter: None,
        };
        assert_eq!(empty.filename_part(0), None);
        assert_eq!(empty.filename_part(1), Some("example.com"));
    }
}
