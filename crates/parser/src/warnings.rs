//! Collects what a parse repaired or ignored, folding repeats into one line with a count.

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
            entry.1 += 1;
        } else if self.entries.len() < MAX_DISTINCT {
            self.entries.push((message.into(), 1));
        } else {
            self.omitted += 1;
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
}
