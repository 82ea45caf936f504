//! The checks. Each takes the DNS (and for MTA-STS the HTTPS fetcher) and returns its
//! findings plus the records it observed; none of them fails as a whole.

pub(crate) mod bimi;
pub(crate) mod blocklist;
pub(crate) mod dkim;
pub(crate) mod dmarc;
pub(crate) mod mtasts;
pub(crate) mod mx;
pub(crate) mod spf;
pub(crate) mod tlsrpt;

use crate::dns::Answer;
use crate::record::uri::normalise_address;
use crate::report::{Finding, Observed, ObservedRecord};

/// Findings and observed records of one check.
#[derive(Debug, Default)]
pub(crate) struct Section {
    pub findings: Vec<Finding>,
    pub records: Vec<ObservedRecord>,
}

impl Section {
    pub(crate) fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// Records what a query returned (values sorted) for the change history.
    pub(crate) fn observe<T: ToString>(
        &mut self,
        name: &str,
        rtype: &str,
        answer: &Answer<Vec<T>>,
    ) {
        let observed = match answer {
            Answer::Records(v) => {
                let mut s: Vec<String> = v.iter().map(ToString::to_string).collect();
                s.sort();
                Observed::Found(s)
            }
            Answer::NoData | Answer::NxDomain => Observed::Absent,
            Answer::Failed(e) => Observed::Failed(e.clone()),
        };
        self.records.push(ObservedRecord {
            name: name.to_owned(),
            rtype: rtype.to_owned(),
            observed,
        });
    }

    pub(crate) fn extend(&mut self, other: Section) {
        self.findings.extend(other.findings);
        self.records.extend(other.records);
    }
}

/// Our reporting addresses, normalised (lower case, no `mailto:`).
pub(crate) fn our_addresses(configured: &[String]) -> Vec<String> {
    configured
        .iter()
        .map(|a| normalise_address(a))
        .filter(|a| !a.is_empty())
        .collect()
}

/// Joins a list for prose: "a", "a and b", "a, b and c".
pub(crate) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// "could not check" explanation shared by every check.
pub(crate) fn could_not_check(what: &str, error: &str) -> String {
    format!(
        "{what} could not be looked up ({error}). This says nothing about whether the record \
         exists: the check is repeated on the next run."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_lists_for_prose() {
        assert_eq!(join_and(&[]), "");
        assert_eq!(join_and(&["a".into()]), "a");
        assert_eq!(
            join_and(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
