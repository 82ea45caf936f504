//! Collects what a parse repaired or ignored, folding repeats into one line with a count,
//! and words the warnings about limits a report ran into.

use std::fmt;

/// Distinct messages kept per report. Further distinct messages are only counted, so an
/// input with a million damaged records costs neither quadratic time nor a million strings.
const MAX_DISTINCT: usize = 50;

/// De-duplicating warning collector.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    entries: Vec<(String, u32)>,
    omitted: u64,
}

impl Warnings {
    /// A repeat is only counted: a static message is not copied again, so a document of
    /// millions of broken tags costs no allocation per tag.
    pub(crate) fn push(&mut self, message: impl AsRef<str> + Into<String>) {
        let text = message.as_ref();
        if let Some(entry) = self.entries.iter_mut().find(|(m, _)| m == text) {
            entry.1 = entry.1.saturating_add(1);
        } else if self.entries.len() < MAX_DISTINCT {
            self.entries.push((message.into(), 1));
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        let omitted = self.omitted;
        let mut out: Vec<String> = self
            .entries
            .into_iter()
            .map(|(m, n)| {
                if n == 1 {
                    m
                } else {
                    format!("{m} ({n} times)")
                }
            })
            .collect();
        if omitted > 0 {
            out.push(format!("{omitted} more warnings omitted"));
        }
        out
    }
}

/// A limit of [`crate::Limits`] that cut something out of a report. Its text starts with
/// a stable code (`field-truncated: …`), so readers of the stored warnings can tell these
/// apart from repairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitWarning {
    /// Strings longer than `max_field_bytes` were cut to it.
    FieldTruncated {
        limit: usize,
        fields: Vec<TruncatedField>,
    },
    /// TLS-RPT `failure-details` rows beyond `max_failure_details` were dropped from one
    /// policy (numbered from 1); its summary counts are kept as reported.
    FailureDetailsDropped {
        policy: usize,
        kept: usize,
        rows: usize,
        failed_sessions: u64,
    },
}

/// One field that had values cut: how many, and the longest original length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TruncatedField {
    pub field: &'static str,
    pub values: u64,
    pub longest: usize,
}

impl LimitWarning {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            LimitWarning::FieldTruncated { .. } => "field-truncated",
            LimitWarning::FailureDetailsDropped { .. } => "failure-details-dropped",
        }
    }
}

impl fmt::Display for LimitWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.code())?;
        match self {
            LimitWarning::FieldTruncated { limit, fields } => {
                write!(f, "values cut to {limit} bytes: ")?;
                for (i, t) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if t.values == 1 {
                        write!(f, "{} ({} bytes)", t.field, t.longest)?;
                    } else {
                        write!(
                            f,
                            "{} ({} values, longest {} bytes)",
                            t.field, t.values, t.longest
                        )?;
                    }
                }
                Ok(())
            }
            LimitWarning::FailureDetailsDropped {
                policy,
                kept,
                rows,
                failed_sessions,
            } => write!(
                f,
                "policy {policy}: kept the first {kept} failure-details rows, dropped {rows} \
                 more with {failed_sessions} failed sessions; the summary counts are as reported"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_are_folded() {
        let mut w = Warnings::default();
        w.push("a");
        w.push("b");
        w.push("a");
        assert_eq!(w.into_vec(), vec!["a (2 times)".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn distinct_warnings_are_capped_and_the_rest_counted() {
        let mut w = Warnings::default();
        for i in 0..MAX_DISTINCT + 7 {
            w.push(format!("record {i} dropped"));
        }
        w.push("record 0 dropped");
        let v = w.into_vec();
        assert_eq!(v.len(), MAX_DISTINCT + 1);
        assert_eq!(v[0], "record 0 dropped (2 times)");
        assert_eq!(v[MAX_DISTINCT], "7 more warnings omitted");
    }

    #[test]
    fn limit_warnings_start_with_their_code() {
        let truncated = LimitWarning::FieldTruncated {
            limit: 4096,
            fields: vec![
                TruncatedField {
                    field: "org_name",
                    values: 1,
                    longest: 1_048_576,
                },
                TruncatedField {
                    field: "dkim/human_result",
                    values: 3,
                    longest: 5000,
                },
            ],
        };
        assert_eq!(
            truncated.to_string(),
            "field-truncated: values cut to 4096 bytes: org_name (1048576 bytes), \
             dkim/human_result (3 values, longest 5000 bytes)"
        );
        let dropped = LimitWarning::FailureDetailsDropped {
            policy: 2,
            kept: 1000,
            rows: 4000,
            failed_sessions: 12_000,
        };
        assert_eq!(
            dropped.to_string(),
            "failure-details-dropped: policy 2: kept the first 1000 failure-details rows, \
             dropped 4000 more with 12000 failed sessions; the summary counts are as reported"
        );
    }
}
