//! "Changed since last run" with a real zone change: a private NSD instance (started with
//! `tests/servers/start.sh --only dns` in its own state directory and port, so the shared
//! servers are untouched) serves the test zones; between two checks the test edits its run-time
//! copy of perfect.test and makes NSD reload it (SIGHUP).

mod servers;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sealwatch_health::{Change, CheckId, HealthReport, Observed, Severity, diff};
use servers::{check_with, config, listing};

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/servers")
}

/// A private NSD; stopped and its state removed on drop.
struct PrivateNsd {
    state: String,
    port: u16,
}

impl PrivateNsd {
    fn start() -> Self {
        // a port free for both UDP and TCP
        let port = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
            let port = udp.local_addr().expect("addr").port();
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let nsd = Self {
            state: format!("/tmp/sw-health-nsd-{}", std::process::id()),
            port,
        };
        let out = nsd
            .script("start.sh")
            .args(["--only", "dns"])
            .output()
            .expect("run start.sh");
        assert!(
            out.status.success(),
            "start.sh --only dns failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        nsd
    }

    fn script(&self, name: &str) -> Command {
        let mut c = Command::new(scripts().join(name));
        c.env("SEALWATCH_TEST_SERVERS_STATE", &self.state)
            .env("SEALWATCH_TEST_DNS_PORT", self.port.to_string());
        c
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Rewrites the run-time copy of a zone and makes NSD re-read it.
    fn edit_zone(&self, zone: &str, edit: impl Fn(&str) -> String) {
        let path = format!("{}/dns/zones/{zone}.zone", self.state);
        let text = std::fs::read_to_string(&path).expect("zone copy");
        std::fs::write(&path, edit(&text)).expect("write zone");
        let pid = std::fs::read_to_string(format!("{}/run/nsd.pid", self.state)).expect("pid");
        let status = Command::new("kill")
            .args(["-HUP", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for PrivateNsd {
    fn drop(&mut self) {
        let _ = self.script("stop.sh").arg("--clean").output();
    }
}

fn txt(report: &HealthReport, name: &str) -> Option<Observed> {
    report
        .records
        .iter()
        .find(|o| o.name == name && o.rtype == "TXT")
        .map(|o| o.observed.clone())
}

#[tokio::test]
async fn a_zone_change_between_two_runs_is_reported() {
    let nsd = PrivateNsd::start();
    let mut c = config();
    c.name_servers = vec![nsd.addr()];
    let before = check_with(c.clone(), "perfect.test").await;
    assert_eq!(before.score, 100, "{}", listing(&before));

    nsd.edit_zone("perfect.test", |z| {
        z.replace("2024060101 3600", "2024060102 3600")
            .replace("p=reject; rua=", "p=none; rua=")
            .lines()
            .filter(|l| !l.starts_with("_smtp._tls"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    // NSD reloads in the background: wait (bounded) until the new DMARC record is served
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let r = check_with(c.clone(), "perfect.test").await;
        let changed = matches!(txt(&r, "_dmarc.perfect.test"),
            Some(Observed::Found(v)) if v[0].contains("p=none"));
        if changed || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let changes = diff(&before, &after);
    assert!(
        changes.contains(&Change::RecordChanged {
            name: "_dmarc.perfect.test".into(),
            rtype: "TXT".into(),
            before: vec!["v=DMARC1; p=reject; rua=mailto:dmarc@sealwatch.test".into()],
            after: vec!["v=DMARC1; p=none; rua=mailto:dmarc@sealwatch.test".into()],
        }),
        "{changes:#?}"
    );
    assert!(
        changes.contains(&Change::RecordVanished {
            name: "_smtp._tls.perfect.test".into(),
            rtype: "TXT".into(),
            before: vec!["v=TLSRPTv1; rua=mailto:tlsrpt@sealwatch.test".into()],
        }),
        "{changes:#?}"
    );
    for (check, severity) in [
        (CheckId::DmarcPolicyNone, Severity::Warning),
        (CheckId::TlsRptMissing, Severity::Warning),
        (CheckId::BimiDmarcNotEnforced, Severity::Warning),
    ] {
        assert!(
            changes.iter().any(|c| matches!(c,
                Change::ProblemAppeared { check: c2, severity: s, .. } if *c2 == check && *s == severity)),
            "{check}: {changes:#?}"
        );
    }
    assert!(changes.contains(&Change::ScoreChanged {
        before: 100,
        after: 70
    }));
    // nothing else moved: MX, SPF, DKIM, MTA-STS records are the same
    let records_changed = changes
        .iter()
        .filter(|c| {
            matches!(
                c,
                Change::RecordAppeared { .. }
                    | Change::RecordVanished { .. }
                    | Change::RecordChanged { .. }
            )
        })
        .count();
    assert_eq!(records_changed, 2, "{changes:#?}");
}
