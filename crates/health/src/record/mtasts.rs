//! MTA-STS (RFC 8461): the `_mta-sts` TXT record and the policy file.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::tags::{TagList, starts_with_version};

/// True when a TXT record is an MTA-STS record (`v=STSv1` first).
pub fn is_sts(txt: &str) -> bool {
    starts_with_version(txt, "v", "STSv1")
}

/// The `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// `id=`: 1–32 letters and digits; senders re-fetch the policy when it changes.
    pub id: String,
}

impl StsRecord {
    /// Parses `v=STSv1; id=...`.
    pub fn parse(txt: &str) -> Result<Self, String> {
        let tags = TagList::parse(txt).map_err(|e| e.to_string())?;
        match tags.first() {
            Some(("v", "STSv1")) => {}
            _ => return Err("the record must start with \"v=STSv1\"".to_owned()),
        }
        let id = tags
            .get("id")
            .ok_or_else(|| "the required id= tag is missing".to_owned())?;
        if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "id={id} must be 1 to 32 letters and digits (no dots, dashes or spaces)"
            ));
        }
        Ok(Self { id: id.to_owned() })
    }
}

/// `mode:` of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StsMode {
    Enforce,
    Testing,
    None,
}

impl StsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }
}

impl fmt::Display for StsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Largest `max_age` allowed (one year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// A parsed policy file. Never fails: problems (each a sentence) make the policy invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsPolicy {
    pub version: Option<String>,
    pub mode: Option<StsMode>,
    /// `mx:` patterns in order (lower-cased).
    pub mx: Vec<String>,
    pub max_age: Option<u64>,
    pub problems: Vec<String>,
}

impl StsPolicy {
    /// Parses `key: value` lines (LF or CRLF).
    pub fn parse(text: &str) -> Self {
        let mut p = Self {
            version: None,
            mode: None,
            mx: Vec::new(),
            max_age: None,
            problems: Vec::new(),
        };
        let mut seen_mode = false;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                p.problems
                    .push(format!("line {}: {line:?} is not \"key: value\"", i + 1));
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "version" => {
                    if value != "STSv1" {
                        p.problems.push(format!("version: {value} is not STSv1"));
                    }
                    if i != 0 && p.version.is_none() {
                        p.problems
                            .push("version: must be the first line".to_owned());
                    }
                    p.version = Some(value.to_owned());
                }
                "mode" => {
                    if seen_mode {
                        p.problems.push("mode: appears more than once".to_owned());
                    }
                    seen_mode = true;
                    p.mode = match value {
                        "enforce" => Some(StsMode::Enforce),
                        "testing" => Some(StsMode::Testing),
                        "none" => Some(StsMode::None),
                        other => {
                            p.problems
                                .push(format!("mode: {other} is not enforce, testing or none"));
                            None
                        }
                    };
                }
                "mx" => {
                    if valid_mx_pattern(value) {
                        p.mx.push(value.trim_end_matches('.').to_ascii_lowercase());
                    } else {
                        p.problems.push(format!(
                            "mx: {value} is not a host name or *.domain pattern"
                        ));
                    }
                }
                "max_age" => match value.parse::<u64>() {
                    Ok(n) if n <= MAX_AGE_LIMIT && value.len() <= 10 => p.max_age = Some(n),
                    _ => p.problems.push(format!(
                        "max_age: {value} must be a number of seconds up to {MAX_AGE_LIMIT}"
                    )),
                },
                _ => {} // extensions are ignored
            }
        }
        if p.version.is_none() {
            p.problems
                .push("the version: STSv1 line is missing".to_owned());
        }
        if !seen_mode {
            p.problems.push("the mode: line is missing".to_owned());
        }
        if p.max_age.is_none() && !p.problems.iter().any(|e| e.starts_with("max_age")) {
            p.problems.push("the max_age: line is missing".to_owned());
        }
        if p.mx.is_empty() && p.mode != Some(StsMode::None) {
            p.problems
                .push("no mx: line: a policy must list the MX hosts it covers".to_owned());
        }
        p
    }

    /// True when some `mx:` pattern matches the host.
    pub fn covers(&self, host: &str) -> bool {
        self.mx.iter().any(|p| mx_pattern_matches(p, host))
    }
}

/// Renders a policy file (CRLF line endings, as RFC 8461 shows).
pub fn render_policy(mode: StsMode, mx: &[String], max_age: u64) -> String {
    let mut s = format!("version: STSv1\r\nmode: {mode}\r\n");
    for m in mx {
        s.push_str(&format!("mx: {m}\r\n"));
    }
    s.push_str(&format!("max_age: {max_age}\r\n"));
    s
}

fn valid_mx_pattern(p: &str) -> bool {
    let host = p.strip_prefix("*.").unwrap_or(p);
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.contains('.')
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// RFC 8461 §4.1: a pattern is a host name, or `*.` plus a domain matching exactly one
/// extra label at the left. Case and a trailing dot are ignored.
pub fn mx_pattern_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(base) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_txt_record() {
        assert_eq!(
            StsRecord::parse("v=STSv1; id=20240601T01;").map(|r| r.id),
            Ok("20240601T01".to_owned())
        );
        assert!(StsRecord::parse("v=STSv1;").is_err());
        assert!(StsRecord::parse("v=STSv1; id=2024-06-01").is_err());
        assert!(StsRecord::parse("id=1; v=STSv1").is_err());
        assert!(is_sts("v=STSv1; id=1"));
    }

    #[test]
    fn parses_a_policy() {
        let p = StsPolicy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.backup.example.test\r\nmax_age: 604800\r\n",
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.mode, Some(StsMode::Enforce));
        assert_eq!(p.max_age, Some(604_800));
        assert!(p.covers("MX1.example.test."));
        assert!(p.covers("a.backup.example.test"));
        assert!(!p.covers("a.b.backup.example.test"));
        assert!(!p.covers("backup.example.test"));
    }

    #[test]
    fn lists_policy_problems() {
        let p = StsPolicy::parse("mode: strict\nmx: -\nmax_age: 99999999999\nversion: STSv2\n");
        assert_eq!(p.problems.len(), 6, "{:?}", p.problems);
        let p = StsPolicy::parse("<html>not found</html>");
        assert!(!p.problems.is_empty());
    }

    #[test]
    fn renders_a_policy_that_parses() {
        let text = render_policy(StsMode::Testing, &["mx1.example.test".to_owned()], 86400);
        let p = StsPolicy::parse(&text);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.mode, Some(StsMode::Testing));
    }
}
