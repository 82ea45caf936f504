//! A small Prometheus registry: request latencies per route, counters of what the service
//! did, and gauges read from the database.
//!
//! Every label has a bounded set of values, whatever strangers send: the HTTP method is one
//! of the standard methods or `other`, the route is the matched route template (never the
//! path) or `unmatched`, the status is a number. The database gauges are read at most once
//! per refresh interval, by one scrape at a time; the others answer from the cached values,
//! so `/metrics` (unauthenticated) cannot be used to load the database.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sealwatch_store::Store;

/// The methods that get their own label value; anything else is `other`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// The label value of an HTTP method.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// Database counts: (DMARC reports, TLS reports, open quarantine entries).
pub type StoredCounts = (u64, u64, u64);

#[derive(Debug, Default)]
struct GaugeCache {
    /// When the database was last asked (successfully or not).
    read_at: Option<Instant>,
    counts: Option<StoredCounts>,
}

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and histograms, shared by every worker.
#[derive(Debug, Default)]
pub struct Metrics {
    latency: Mutex<BTreeMap<(&'static str, String, u16), Histogram>>,
    /// Request handlers that panicked (answered 500).
    panics: AtomicU64,
    /// The database gauges, as last read.
    stored: tokio::sync::Mutex<GaugeCache>,
    tlsrpt_posted: AtomicU64,
    tlsrpt_stored: AtomicU64,
    polls_ok: AtomicU64,
    polls_failed: AtomicU64,
    reports_polled: AtomicU64,
    /// Jobs run by this process, by job name and outcome.
    jobs: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Jobs in the shared queue by state, as last read (pending, running, done, failed,
    /// killed); set by the process that owns the queue.
    queue: Mutex<Option<[u64; 5]>>,
}

impl Metrics {
    /// Records one answered request. `route` must be a route template (or a fixed word
    /// such as `unmatched`), never a raw path.
    pub fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let method = method_label(method);
        if let Ok(mut map) = self.latency.lock() {
            let h = map.entry((method, route.to_owned(), status)).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// A request handler panicked.
    pub fn panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The database counts, read at most once per `max_age` (single-flight: concurrent
    /// callers wait for the one read in progress and share its result). After a failed
    /// read the last known counts are kept until the next interval.
    pub async fn stored_counts(&self, store: &Store, max_age: Duration) -> Option<StoredCounts> {
        let mut cache = self.stored.lock().await;
        if cache.read_at.is_some_and(|at| at.elapsed() < max_age) {
            return cache.counts;
        }
        match store.metric_counts().await {
            Ok(counts) => cache.counts = Some(counts),
            Err(e) => tracing::warn!(error = %e, "could not read the metric counts"),
        }
        cache.read_at = Some(Instant::now());
        cache.counts
    }

    /// A TLS report was posted over HTTPS; `stored` reports were new.
    pub fn tlsrpt(&self, stored: u64) {
        self.tlsrpt_posted.fetch_add(1, Ordering::Relaxed);
        self.tlsrpt_stored.fetch_add(stored, Ordering::Relaxed);
    }

    /// One mailbox poll finished (called by the poll loop).
    pub fn poll(&self, ok: bool, stored: u64) {
        if ok {
            self.polls_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.polls_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.reports_polled.fetch_add(stored, Ordering::Relaxed);
    }

    /// One job finished in this process: `outcome` is `ok`, `retry` or `failed`.
    pub fn job(&self, name: &str, outcome: &'static str) {
        if let Ok(mut map) = self.jobs.lock() {
            *map.entry((name.to_owned(), outcome)).or_default() += 1;
        }
    }

    /// The shared queue's jobs by state: pending, running, done, failed, killed.
    pub fn set_queue(&self, states: [u64; 5]) {
        if let Ok(mut q) = self.queue.lock() {
            *q = Some(states);
        }
    }

    /// The text exposition format. `stored` = (DMARC reports, TLS reports, open quarantine).
    pub fn render(&self, stored: Option<StoredCounts>) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, lines: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in lines {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            &mut out,
            "sealwatch_tlsrpt_posted_total",
            "TLS reports posted over HTTPS.",
            &[("", self.tlsrpt_posted.load(Ordering::Relaxed))],
        );
        counter(
            &mut out,
            "sealwatch_reports_ingested_total",
            "Reports stored by this process, by path.",
            &[
                (
                    "{path=\"https\"}",
                    self.tlsrpt_stored.load(Ordering::Relaxed),
                ),
                (
                    "{path=\"imap\"}",
                    self.reports_polled.load(Ordering::Relaxed),
                ),
            ],
        );
        counter(
            &mut out,
            "sealwatch_polls_total",
            "Mailbox polls by this process, by outcome.",
            &[
                ("{outcome=\"ok\"}", self.polls_ok.load(Ordering::Relaxed)),
                (
                    "{outcome=\"failed\"}",
                    self.polls_failed.load(Ordering::Relaxed),
                ),
            ],
        );
        if let Ok(map) = self.jobs.lock() {
            let _ = writeln!(
                out,
                "# HELP sealwatch_jobs_total Jobs run by this process, by job and outcome.\n# TYPE sealwatch_jobs_total counter"
            );
            for ((job, outcome), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "sealwatch_jobs_total{{job=\"{job}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        if let Ok(q) = self.queue.lock()
            && let Some(states) = *q
        {
            let _ = writeln!(
                out,
                "# HELP sealwatch_jobs Jobs in the shared queue by state.\n# TYPE sealwatch_jobs gauge"
            );
            for (state, n) in ["pending", "running", "done", "failed", "killed"]
                .iter()
                .zip(states)
            {
                let _ = writeln!(out, "sealwatch_jobs{{state=\"{state}\"}} {n}");
            }
        }
        counter(
            &mut out,
            "sealwatch_http_panics_total",
            "Request handlers that panicked (answered 500).",
            &[("", self.panics.load(Ordering::Relaxed))],
        );
        if let Some((dmarc, tls, quarantined)) = stored {
            let _ = writeln!(
                out,
                "# HELP sealwatch_reports_stored Reports in the database.\n# TYPE sealwatch_reports_stored gauge\nsealwatch_reports_stored{{kind=\"dmarc\"}} {dmarc}\nsealwatch_reports_stored{{kind=\"tls\"}} {tls}"
            );
            let _ = writeln!(
                out,
                "# HELP sealwatch_quarantined Unresolved quarantine entries.\n# TYPE sealwatch_quarantined gauge\nsealwatch_quarantined {quarantined}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP sealwatch_http_request_duration_seconds Request latency by route.\n# TYPE sealwatch_http_request_duration_seconds histogram"
        );
        if let Ok(map) = self.latency.lock() {
            for ((method, route, status), h) in map.iter() {
                let labels = format!(
                    "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                    route.replace('"', "'")
                );
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "sealwatch_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                        h.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "sealwatch_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nsealwatch_http_request_duration_seconds_sum{{{labels}}} {}\nsealwatch_http_request_duration_seconds_count{{{labels}}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::default();
        m.observe("GET", "/x", 200, Duration::from_millis(3));
        m.observe("GET", "/x", 200, Duration::from_millis(30));
        let text = m.render(None);
        assert!(text.contains("route=\"/x\",status=\"200\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"/x\",status=\"200\",le=\"0.05\"} 2"));
        assert!(text.contains("sealwatch_http_request_duration_seconds_count{method=\"GET\",route=\"/x\",status=\"200\"} 2"));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let m = Metrics::default();
        for i in 0..500 {
            m.observe(&format!("M{i}"), "unmatched", 404, Duration::from_millis(1));
        }
        m.observe("get", "unmatched", 404, Duration::from_millis(1));
        m.observe("DELETE", "unmatched", 404, Duration::from_millis(1));
        let text = m.render(None);
        let series = text
            .lines()
            .filter(|l| l.starts_with("sealwatch_http_request_duration_seconds_count"))
            .collect::<Vec<_>>();
        assert_eq!(series.len(), 2, "{series:?}");
        assert!(text.contains("_count{method=\"other\",route=\"unmatched\",status=\"404\"} 501"));
        assert!(text.contains("_count{method=\"DELETE\",route=\"unmatched\",status=\"404\"} 1"));
    }

    #[test]
    fn job_outcomes_and_queue_states_are_exposed() {
        let m = Metrics::default();
        m.job("send-digest", "ok");
        m.job("send-digest", "ok");
        m.job("poll-mailbox", "retry");
        let text = m.render(None);
        assert!(text.contains("sealwatch_jobs_total{job=\"send-digest\",outcome=\"ok\"} 2"));
        assert!(text.contains("sealwatch_jobs_total{job=\"poll-mailbox\",outcome=\"retry\"} 1"));
        assert!(
            !text.contains("sealwatch_jobs{"),
            "no queue gauge before it is read"
        );
        m.set_queue([3, 1, 40, 2, 0]);
        let text = m.render(None);
        assert!(text.contains("sealwatch_jobs{state=\"pending\"} 3"));
        assert!(text.contains("sealwatch_jobs{state=\"failed\"} 2"));
    }
}
