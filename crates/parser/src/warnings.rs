//! Collects what a parse repaired or ignored, folding repeats into one line with a count.

/// De-duplicating warning collector.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    entries: Vec<(String, u32)>,
}

impl Warnings {
    pub(crate) fn push(&mut self, message: impl Into<String>) {
        let message = message.into();
        if let Some(entry) = self.entries.iter_mut().find(|(m, _)| *m == message) {
            entry.1 += 1;
        } else {
            self.entries.push((message, 1));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.entries
            .into_iter()
            .map(|(m, n)| {
                if n == 1 {
                    m
                } else {
                    format!("{m} ({n} times)")
                }
            })
            .collect()
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
}
