//! Parse-don't-validate newtypes for names and identifiers.

use std::fmt;

use serde::Serialize;

/// A DNS domain name in canonical form: ASCII lower case, no trailing dot, every label
/// 1–63 characters of letters, digits, `-` or `_`, at most 253 characters in all.
///
/// Internationalised names must arrive as A-labels (`xn--…`), which is what reports carry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

/// Why a string is not a [`DomainName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("domain name is empty")]
    Empty,
    #[error("domain name is longer than 253 characters")]
    TooLong,
    #[error("domain name has an empty label")]
    EmptyLabel,
    #[error("domain label {0:?} is longer than 63 characters")]
    LabelTooLong(String),
    #[error("domain label {0:?} starts or ends with a hyphen")]
    HyphenEdge(String),
    #[error("domain name contains {0:?}, which is not allowed in a DNS name")]
    InvalidChar(char),
}

impl DomainName {
    /// Parses and canonicalises a domain name (trims spaces, drops one trailing dot,
    /// lower-cases ASCII).
    pub fn parse(input: &str) -> Result<Self, DomainNameError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(DomainNameError::Empty);
        }
        if trimmed.len() > 253 {
            return Err(DomainNameError::TooLong);
        }
        if let Some(bad) = trimmed
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(DomainNameError::InvalidChar(bad));
        }
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(DomainNameError::EmptyLabel);
            }
            if label.len() > 63 {
                return Err(DomainNameError::LabelTooLong(label.to_owned()));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(DomainNameError::HyphenEdge(label.to_owned()));
            }
        }
        Ok(Self(trimmed.to_ascii_lowercase()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent domain (`a.b.c` → `b.c`), or `None` for a single label.
    pub fn parent(&self) -> Option<DomainName> {
        self.0
            .split_once('.')
            .map(|(_, rest)| DomainName(rest.to_owned()))
    }

    /// True when `self` equals `other` or lies below it (`mail.example.com` is within
    /// `example.com`).
    pub fn is_within(&self, other: &DomainName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(other.0.as_str())
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DomainName {
    type Err = DomainNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A report identifier as the reporter wrote it: trimmed, non-empty, without control
/// characters, at most 1024 bytes. Unique only together with the reporter and date range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ReportId(String);

/// Why a string is not a [`ReportId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportIdError {
    #[error("report id is empty")]
    Empty,
    #[error("report id is longer than 1024 bytes")]
    TooLong,
}

impl ReportId {
    /// Parses a report id, trimming surrounding white space and angle brackets and removing
    /// control characters.
    pub fn parse(input: &str) -> Result<Self, ReportIdError> {
        let cleaned: String = input.chars().filter(|c| !c.is_control()).collect();
        let trimmed = cleaned.trim();
        let trimmed = trimmed
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(trimmed)
            .trim();
        if trimmed.is_empty() {
            return Err(ReportIdError::Empty);
        }
        if trimmed.len() > 1024 {
            return Err(ReportIdError::TooLong);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ReportId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn domain_names_are_canonicalised() {
        let d = DomainName::parse(" Example.COM. ").expect("valid");
        assert_eq!(d.as_str(), "example.com");
        assert_eq!(d.parent().map(|p| p.to_string()), Some("com".to_owned()));
    }

    #[test]
    fn invalid_domain_names_say_why() {
        assert_eq!(DomainName::parse(""), Err(DomainNameError::Empty));
        assert_eq!(DomainName::parse("a..b"), Err(DomainNameError::EmptyLabel));
        assert_eq!(
            DomainName::parse("bad<xml.net"),
            Err(DomainNameError::InvalidChar('<'))
        );
        assert!(matches!(
            DomainName::parse("-a.com"),
            Err(DomainNameError::HyphenEdge(_))
        ));
        assert!(matches!(
            DomainName::parse(&"a".repeat(64)),
            Err(DomainNameError::LabelTooLong(_))
        ));
    }

    #[test]
    fn subdomains_are_within_their_parents_only() {
        let parent = DomainName::parse("example.com").expect("valid");
        let child = DomainName::parse("mail.example.com").expect("valid");
        let lookalike = DomainName::parse("badexample.com").expect("valid");
        assert!(child.is_within(&parent));
        assert!(parent.is_within(&parent));
        assert!(!lookalike.is_within(&parent));
        assert!(!parent.is_within(&child));
    }

    #[test]
    fn report_ids_are_trimmed_of_brackets() {
        let id = ReportId::parse(" <2024.09.03T00.00.00Z+x.ca@google.com>\n").expect("valid");
        assert_eq!(id.as_str(), "2024.09.03T00.00.00Z+x.ca@google.com");
        assert_eq!(ReportId::parse(" \t "), Err(ReportIdError::Empty));
    }

    proptest! {
        #[test]
        fn parsing_a_canonical_domain_is_idempotent(s in "[a-zA-Z0-9_.-]{0,80}") {
            if let Ok(d) = DomainName::parse(&s) {
                let again = DomainName::parse(d.as_str()).expect("canonical form parses");
                prop_assert_eq!(again, d);
            }
        }

        #[test]
        fn domain_parse_never_panics(s in ".{0,300}") {
            let _ = DomainName::parse(&s);
            let _ = ReportId::parse(&s);
        }
    }
}
