//! `tag=value; tag=value` lists (RFC 6376 §3.2), the syntax shared by DKIM, DMARC, MTA-STS,
//! TLS-RPT and BIMI records.

use std::fmt;

/// Why a string is not a tag list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("the record is empty")]
    Empty,
    #[error("{0:?} is not a tag=value pair")]
    NotAPair(String),
    #[error("{0:?} is not a valid tag name")]
    BadName(String),
    #[error("tag {0:?} appears more than once")]
    Duplicate(String),
}

/// A parsed tag list, in record order. Tag names keep their spelling; look-ups ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagList {
    tags: Vec<(String, String)>,
}

impl TagList {
    /// Parses `a=b; c=d;` (spaces around names, values and separators allowed; empty segments
    /// such as a trailing `;` are skipped). Values are trimmed but otherwise kept as written.
    pub fn parse(input: &str) -> Result<Self, TagError> {
        let mut tags: Vec<(String, String)> = Vec::new();
        for segment in input.split(';') {
            let segment = segment.trim();
            if segment.is_empty() {
                continue;
            }
            let (name, value) = segment
                .split_once('=')
                .ok_or_else(|| TagError::NotAPair(segment.to_owned()))?;
            let name = name.trim();
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || !name.starts_with(|c: char| c.is_ascii_alphabetic())
            {
                return Err(TagError::BadName(name.to_owned()));
            }
            if tags.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(TagError::Duplicate(name.to_owned()));
            }
            tags.push((name.to_owned(), value.trim().to_owned()));
        }
        if tags.is_empty() {
            return Err(TagError::Empty);
        }
        Ok(Self { tags })
    }

    /// The value of a tag (name compared ignoring ASCII case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first tag, which for every record type here must be the version tag.
    pub fn first(&self) -> Option<(&str, &str)> {
        self.tags.first().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// All tags in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Sets a tag, replacing its value in place or appending it at the end.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .tags
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.tags.push((name.to_owned(), value.to_owned())),
        }
    }

    /// Sets a tag, replacing its value in place or inserting it at `index` (clamped).
    pub fn set_at(&mut self, index: usize, name: &str, value: &str) {
        match self
            .tags
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value.to_owned(),
            None => {
                let i = index.min(self.tags.len());
                self.tags.insert(i, (name.to_owned(), value.to_owned()));
            }
        }
    }

    /// Removes a tag if present.
    pub fn remove(&mut self, name: &str) {
        self.tags.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// Renders the canonical form `a=b; c=d`.
impl fmt::Display for TagList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (n, v)) in self.tags.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

/// True when `record` starts with the tag `version_tag=expected` (e.g. `v=DMARC1`), ignoring
/// case in the tag name and spaces around `=` — the test receivers use to pick a record out
/// of all TXT records at a name.
pub fn starts_with_version(record: &str, version_tag: &str, expected: &str) -> bool {
    let first = record.trim_start().split(';').next().unwrap_or_default();
    match first.split_once('=') {
        Some((n, v)) => {
            n.trim().eq_ignore_ascii_case(version_tag) && v.trim().eq_ignore_ascii_case(expected)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_tag_lists() {
        let t = TagList::parse(" v=DMARC1 ;p = reject; rua=mailto:a@b.test;").expect("valid");
        assert_eq!(t.first(), Some(("v", "DMARC1")));
        assert_eq!(t.get("P"), Some("reject"));
        assert_eq!(t.to_string(), "v=DMARC1; p=reject; rua=mailto:a@b.test");
    }

    #[test]
    fn set_replaces_or_appends() {
        let mut t = TagList::parse("v=DMARC1; p=none").expect("valid");
        t.set("p", "quarantine");
        t.set("rua", "mailto:x@y.test");
        assert_eq!(t.to_string(), "v=DMARC1; p=quarantine; rua=mailto:x@y.test");
        t.remove("rua");
        assert_eq!(t.to_string(), "v=DMARC1; p=quarantine");
    }

    #[test]
    fn rejects_malformed_lists() {
        assert_eq!(TagList::parse(" ; "), Err(TagError::Empty));
        assert!(matches!(
            TagList::parse("v=DKIM1; garbage"),
            Err(TagError::NotAPair(_))
        ));
        assert!(matches!(
            TagList::parse("p=a; P=b"),
            Err(TagError::Duplicate(_))
        ));
        assert!(matches!(TagList::parse("=a"), Err(TagError::BadName(_))));
    }

    #[test]
    fn version_prefix_test() {
        assert!(starts_with_version("v=STSv1; id=1", "v", "STSv1"));
        assert!(starts_with_version("V = stsv1", "v", "STSv1"));
        assert!(!starts_with_version("id=1; v=STSv1", "v", "STSv1"));
        assert!(!starts_with_version("v=STSv10", "v", "STSv1"));
    }
}
