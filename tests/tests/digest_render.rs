//! The HTML digest in a real browser: headless Chromium (Debian package `chromium`, installed
//! by `tests/servers/install.sh`) renders a digest with every section filled, saves a
//! screenshot under `target/test-output/`, and the test checks the image size, that text is
//! drawn down the whole page, and (from the rendered DOM) that every section heading is there.

use std::path::{Path, PathBuf};
use std::process::Command;

use sealwatch_digest::{
    DigestData, DomainDigest, HealthSlot, IsoWeek, Issue, IssueSeverity, MxRow, SetupHints,
    SourceRow, TlsSection, WeekNumbers,
};

const WIDTH: u32 = 800;
const HEIGHT: u32 = 2000;

fn output_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|t| t.join("test-output"))
        .unwrap_or_else(|| std::env::temp_dir().join("sealwatch-test-output"));
    std::fs::create_dir_all(&dir).expect("test output dir");
    dir
}

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_owned();
        }
    }
    panic!(
        "headless Chromium is required for this test and was not found: install the Debian package `chromium` (tests/servers/install.sh does)"
    );
}

fn week_numbers(messages: u64, failed_tls: u64) -> WeekNumbers {
    WeekNumbers {
        messages,
        dmarc_passed: messages - messages / 50,
        sources_known: 6,
        sources_new: 1,
        tls_successful: 4_000,
        tls_failed: failed_tls,
        reporters: 9,
    }
}

fn sample() -> DigestData {
    let issue = Issue {
        kind: "tls-certificate-cluster".into(),
        severity: IssueSeverity::Critical,
        acknowledged: false,
        resolved: false,
        summary: "The certificate of mx1.example.com has expired; 5 reporters failed to deliver over TLS.".into(),
        what_happened: "Since 19 October, mail servers at Google, Microsoft and 3 other providers could not verify the certificate of mx1.example.com.".into(),
        what_it_means: "Senders that require encryption cannot deliver to this server; mail may be delayed or bounced.".into(),
        what_to_do: "Renew the certificate of mx1.example.com and reload the mail server.".into(),
        who_fixes_it: "Whoever runs your mail server (your IT team or mail provider).".into(),
        since: "2026-10-19".into(),
    };
    let sources = (0..7)
        .map(|i| SourceRow {
            ip: format!("198.51.100.{}", 10 + i),
            messages: 5_000 / (i + 1),
            dmarc_passed: 5_000 / (i + 1) - i * 3,
            dkim_aligned: 5_000 / (i + 1) - i * 3,
            spf_aligned: 5_000 / (i + 1) - i * 5,
            new: i == 6,
        })
        .collect();
    DigestData {
        tenant: "Example <Ltd> & Co".into(),
        week: IsoWeek::parse("2026-W45").expect("week"),
        domains: vec![DomainDigest {
            domain: "example.com".into(),
            this_week: week_numbers(12_345, 310),
            last_week: week_numbers(11_900, 0),
            reporters_missing: vec!["Yahoo".into()],
            regular_reporters_missing: vec![],
            regular_reporters_stopped: vec![],
            issues: vec![issue],
            tls: TlsSection {
                mta_sts_mode: Some("enforce".into()),
                no_policy_reported: false,
                mx: vec![
                    MxRow {
                        host: "mx1.example.com".into(),
                        failed: 310,
                        result_types: vec!["certificate-expired".into()],
                    },
                    MxRow {
                        host: "mx2.example.com".into(),
                        failed: 0,
                        result_types: vec![],
                    },
                ],
                failure_types: vec![("certificate-expired".into(), 310)],
            },
            sources,
            sources_total: 12,
            health: Some(HealthSlot {
                score: 72,
                grade: "C".into(),
                checked_on: "2026-11-07".into(),
                problems: vec!["SPF uses 11 DNS lookups (the limit is 10)".into()],
                changes: vec![
                    "TXT _dmarc.example.com changed from \"v=DMARC1; p=none\" to \"v=DMARC1; p=reject\"".into(),
                ],
            }),
        }],
        setup: SetupHints {
            dmarc_rua: "dmarc@reports.example.net".into(),
            tlsrpt_rua: "tlsrpt@reports.example.net".into(),
        },
        unsubscribe_url: Some("https://sealwatch.example.net/unsubscribe?tenant=1".into()),
    }
}

/// A tenant whose domain never got a report.
fn no_data_sample() -> DigestData {
    let mut d = sample();
    d.domains[0] = DomainDigest {
        domain: "new-customer.example".into(),
        this_week: WeekNumbers::default(),
        last_week: WeekNumbers::default(),
        reporters_missing: vec![],
        regular_reporters_missing: vec![],
        regular_reporters_stopped: vec![],
        issues: vec![],
        tls: TlsSection::default(),
        sources: vec![],
        sources_total: 0,
        health: None,
    };
    d
}

/// Decodes an 8-bit RGB or RGBA PNG (what Chromium writes) into `(width, height, rgb rows)`.
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<Vec<[u8; 3]>>) {
    use std::io::Read as _;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let mut pos = 8;
    let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
    let mut idat = Vec::new();
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("len")) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().expect("w"));
                height = u32::from_be_bytes(data[4..8].try_into().expect("h"));
                assert_eq!(data[8], 8, "8-bit samples");
                assert_eq!(data[12], 0, "not interlaced");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("unexpected PNG colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("inflate");
    let stride = width as usize * channels;
    let mut prev = vec![0u8; stride];
    let mut rows = Vec::with_capacity(height as usize);
    for y in 0..height as usize {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let filter = line[0];
        let mut cur = line[1..].to_vec();
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 };
            let b = prev[i];
            let c = if i >= channels { prev[i - channels] } else { 0 };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("bad PNG filter {other}"),
            };
            cur[i] = cur[i].wrapping_add(add);
        }
        rows.push(
            cur.chunks(channels)
                .map(|p| [p[0], p[1], p[2]])
                .collect::<Vec<_>>(),
        );
        prev = cur;
    }
    (width, height, rows)
}

/// Renders `data` to `<name>.html`, screenshots it to `<name>.png`, and returns the decoded
/// image and the rendered DOM.
fn render(name: &str, data: &DigestData) -> (u32, u32, Vec<Vec<[u8; 3]>>, String) {
    let browser = chromium();
    let composed = sealwatch_digest::compose(data).expect("compose");
    let dir = output_dir();
    let html_path = dir.join(format!("{name}.html"));
    let png_path = dir.join(format!("{name}.png"));
    std::fs::write(&html_path, &composed.html).expect("write html");
    let _ = std::fs::remove_file(&png_path);
    let url = format!("file://{}", html_path.display());
    let profile = dir.join(format!("chromium-profile-{name}"));

    let shot = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        png_path.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let (w, h, rows) = decode_png(&std::fs::read(&png_path).expect("png"));
    let dom = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    std::fs::write(dir.join(format!("{name}.dom.html")), dom.as_bytes()).expect("write dom");
    (w, h, rows, dom)
}

fn dark(p: &[u8; 3]) -> bool {
    u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]) < 300
}

/// How many of `bands` horizontal bands of the image contain text (dark pixels).
fn inked_bands(rows: &[Vec<[u8; 3]>], bands: usize) -> usize {
    let band_h = rows.len() / bands;
    (0..bands)
        .filter(|b| {
            rows[b * band_h..(b + 1) * band_h]
                .iter()
                .any(|r| r.iter().any(dark))
        })
        .count()
}

#[test]
fn the_html_digest_renders_in_headless_chromium() {
    let (w, h, rows, dom) = render("digest", &sample());
    assert_eq!((w, h), (WIDTH, HEIGHT), "screenshot size");
    // Text (dark pixels) is drawn, and down most of the page: the sections are visible, not
    // collapsed or blank.
    let total_dark: usize = rows
        .iter()
        .map(|r| r.iter().filter(|p| dark(p)).count())
        .sum();
    assert!(
        total_dark > 5_000,
        "almost nothing drawn: {total_dark} dark pixels"
    );
    let inked = inked_bands(&rows, 8);
    assert!(inked >= 5, "text in only {inked} of 8 bands of the page");
    // The critical issue's red border is drawn.
    let red = rows
        .iter()
        .flatten()
        .filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60)
        .count();
    assert!(
        red > 100,
        "the urgent issue is marked in red ({red} red pixels)"
    );
    for heading in [
        "Weekly email security report for Example &lt;Ltd&gt; &amp; Co",
        "The week in numbers",
        "Needs attention",
        "Inbound encryption (TLS)",
        "Sending sources",
        "Domain health check",
    ] {
        assert!(dom.contains(heading), "rendered page lacks {heading:?}");
    }
    // The health section says what changed since the previous check.
    assert!(dom.contains("Changed since the previous check:"));
    assert!(
        dom.replace('\u{200B}', "")
            .contains("TXT _dmarc.example.com changed from")
    );
    // Report-derived host names and IPs are not links.
    assert_eq!(dom.matches("<a ").count(), 1, "only the unsubscribe link");
}

#[test]
fn the_no_data_digest_is_a_short_note() {
    let (w, _, rows, dom) = render("digest-no-data", &no_data_sample());
    assert_eq!(w, WIDTH);
    assert!(inked_bands(&rows, 8) >= 2, "the note is drawn");
    assert!(
        inked_bands(&rows, 8) <= 5,
        "a short page, not tables: {} of 8 bands",
        inked_bands(&rows, 8)
    );
    assert!(dom.contains("How to start receiving reports"));
    assert!(dom.contains("_dmarc.new-customer.example"));
    assert!(!dom.contains("<table"), "no empty tables");
}
