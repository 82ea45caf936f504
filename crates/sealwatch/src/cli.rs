//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// DMARC aggregate and SMTP TLS report monitoring.
#[derive(Debug, Parser)]
#[command(name = "sealwatch", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    /// Configuration file (default: ./sealwatch.toml when present).
    #[arg(long, global = true, env = "SEALWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log level filter (tracing `EnvFilter` syntax); `RUST_LOG` also works.
    #[arg(long, global = true, env = "SEALWATCH_LOG", default_value = "warn")]
    pub log_level: String,
    /// Log line format on stderr.
    #[arg(long, global = true, env = "SEALWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse report files, emails or directories offline and print the reports as JSON.
    Parse(ParseArgs),
    /// Generate a realistic report corpus and time `sealwatch parse --json` over it.
    BenchParse(BenchArgs),
    /// Seed an IMAP mailbox with generated reports and time `poll --once` into each database.
    BenchPoll(BenchPollArgs),
    /// Fill a database with weeks of synthetic reports for many domains and time the
    /// nightly analysis pass.
    BenchAnalyze(BenchAnalyzeArgs),
    /// Measure the anomaly detectors' recall and precision on a simulated scenario with
    /// injected incidents (imported and analysed as in production).
    BenchQuality(crate::bench_quality::BenchQualityArgs),
    /// Time IMAP-to-PostgreSQL ingest with 1, 2, 4 poller processes and weekly digests with
    /// 1 and 2 worker processes; print the rates and the speed-up.
    BenchScale(BenchScaleArgs),
    /// Write a seeded scenario of report emails (with injected incidents) for `import`.
    Simulate(SimulateArgs),
    /// Analyse stored reports now and update the anomalies (one domain or all).
    Analyze(AnalyzeArgs),
    /// List flagged anomalies.
    Anomalies(AnomaliesArgs),
    /// Apply database migrations.
    Migrate,
    /// Ingest report files, .eml files, mbox files and Maildir folders into the database.
    Import(ImportArgs),
    /// Poll the configured IMAP mailboxes.
    Poll(PollArgs),
    /// Run the service (admin API, pollers, job workers, scheduler) until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// Manage tenants (subscribers) and their domains.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage IMAP mailbox sources.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Administer the admin API (tokens).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check a domain's MX, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, BIMI and blocklist status.
    Check(CheckArgs),
    /// Export a tenant's reports as JSON lines or CSV.
    Export(ExportArgs),
    /// Purge data past its retention now (the service does this daily).
    Purge(PurgeArgs),
    /// Health checks of the stored domains: run and store them, list past runs.
    #[command(subcommand)]
    Health(HealthCommand),
    /// Preview, send and schedule the weekly digest.
    #[command(subcommand)]
    Digest(crate::digest_cmd::DigestCommand),
    /// Build and send the weekly digests of many tenants to a loopback SMTP relay and time it.
    BenchDigest(crate::digest_cmd::BenchDigestArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The domain to check.
    pub domain: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub checker: CheckerArgs,
}

#[derive(Debug, Subcommand)]
pub enum HealthCommand {
    /// Check every stored domain (or one), store the runs, and print per domain the score,
    /// what changed since the previous run and the MTA-STS anomaly opened or resolved.
    Run(HealthRunArgs),
    /// List the stored runs of a domain, newest first.
    History(HealthHistoryArgs),
}

#[derive(Debug, Args)]
pub struct HealthRunArgs {
    /// Only this stored domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// One JSON object per domain and line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub checker: CheckerArgs,
}

#[derive(Debug, Args)]
pub struct HealthHistoryArgs {
    /// The stored domain.
    #[arg(long)]
    pub domain: String,
    /// Most runs listed.
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
    /// One JSON object per run and line.
    #[arg(long)]
    pub json: bool,
}

/// How the health check looks things up (shared by `check` and `health run`).
#[derive(Debug, Clone, Args)]
pub struct CheckerArgs {
    /// Name server to ask, IP:PORT (repeatable; default: the system resolver).
    #[arg(long = "nameserver", value_name = "IP:PORT")]
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Extra PEM trust roots for the MTA-STS policy fetch.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Connect to this address for mta-sts.DOMAIN instead of its DNS address (testing).
    #[arg(long, value_name = "IP:PORT")]
    pub mta_sts_addr: Option<std::net::SocketAddr>,
    /// Our reporting address: is it in the DMARC and TLS-RPT rua=? (repeatable)
    #[arg(long = "our-rua", value_name = "mailto:ADDRESS")]
    pub our_rua: Vec<String>,
    /// A DKIM selector to try besides the common ones (repeatable).
    #[arg(long = "dkim-selector", value_name = "SELECTOR")]
    pub dkim_selectors: Vec<String>,
    /// IP blocklist zone for the MX addresses (repeatable; default: public lists).
    #[arg(long = "dnsbl", value_name = "ZONE")]
    pub dnsbl: Vec<String>,
    /// Domain blocklist zone (repeatable; default: public lists).
    #[arg(long = "domain-blocklist", value_name = "ZONE")]
    pub domain_blocklists: Vec<String>,
    /// Skip the blocklist checks.
    #[arg(long)]
    pub no_blocklists: bool,
    /// Timeout of each DNS query in seconds (one retry follows a timeout).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub dns_timeout: f64,
}

/// What the flags default to (the scheduled job has no command line).
impl Default for CheckerArgs {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            ca_file: None,
            mta_sts_addr: None,
            our_rua: Vec::new(),
            dkim_selectors: Vec::new(),
            dnsbl: Vec::new(),
            domain_blocklists: Vec::new(),
            no_blocklists: false,
            dns_timeout: 5.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per report and line.
    Jsonl,
    /// One row per DMARC record or TLS policy failure detail.
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportKind {
    All,
    Dmarc,
    Tls,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Tenant name.
    #[arg(long)]
    pub tenant: String,
    /// First day (UTC), YYYY-MM-DD.
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// Last day (UTC, inclusive), YYYY-MM-DD.
    #[arg(long)]
    pub to: chrono::NaiveDate,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Which reports (CSV needs dmarc or tls).
    #[arg(long, value_enum, default_value_t = ExportKind::All)]
    pub kind: ExportKind,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Judge ages as of this time (RFC 3339) instead of now.
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files, directories, mbox files or Maildir folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Route only to this tenant's domains (as a per-tenant mailbox would).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Messages per database transaction.
    #[arg(long, default_value_t = 200)]
    pub batch_size: usize,
    /// Record the messages as received at this time (RFC 3339) instead of now: for
    /// replaying an archive in the order it arrived (the analysis tells a reporter that
    /// reports late from one that stopped by when its reports arrived).
    #[arg(long, value_name = "RFC3339")]
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Poll every mailbox once, print a summary and exit.
    #[arg(long, required = true)]
    pub once: bool,
    /// Only this mailbox (by name).
    #[arg(long)]
    pub mailbox: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Seconds between poll cycles (overrides poller.interval_secs).
    #[arg(long)]
    pub interval: Option<u64>,
    /// Address of the admin API, ADDR:PORT (overrides api.bind).
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// What this process runs (repeatable): api, poller, worker, scheduler, all (default).
    #[arg(long = "role", value_enum)]
    pub roles: Vec<Role>,
}

/// A `serve` role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The admin web API.
    Api,
    /// Runs mailbox polls.
    Poller,
    /// Runs analysis, digest and health-check jobs.
    Worker,
    /// Plans jobs on a cron tick.
    Scheduler,
    /// Everything (the default).
    All,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an API token and print it (shown only this once).
    CreateToken {
        /// admin (everything) | analyst (read, review anomalies) | tenant (read one tenant)
        #[arg(long)]
        role: String,
        /// What the token is for.
        #[arg(long)]
        name: Option<String>,
        /// The tenant of a --role tenant token (by name).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant owning one or more domains.
    Add {
        name: String,
        /// A domain the tenant owns (repeatable); its subdomains roll up to it.
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
    },
    /// List tenants and their domains.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Add an IMAP mailbox. Without --tenant it is a shared mailbox routed by content.
    Add(MailboxAddArgs),
    /// List mailboxes with their last poll status.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct MailboxAddArgs {
    #[arg(long)]
    pub host: String,
    #[arg(long)]
    pub port: u16,
    /// implicit | starttls | plain (plain only for loopback hosts).
    #[arg(long)]
    pub tls: String,
    #[arg(long)]
    pub username: String,
    /// Environment variable that holds the password at poll time (never stored).
    #[arg(long)]
    pub password_env: String,
    #[arg(long, default_value = "INBOX")]
    pub folder: String,
    /// move:FOLDER | seen | delete — applied after a message is committed.
    #[arg(long)]
    pub after: String,
    /// Owning tenant (per-tenant mailbox).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A name for the mailbox (default: username@host/folder).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Print one compact JSON object per line (default: pretty-printed objects).
    #[arg(long)]
    pub json: bool,
    /// Files, emails (.eml), or directories (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Append the process's peak memory to the summary line (used by bench-parse).
    #[arg(long, hide = true)]
    pub stats: bool,
}

/// Parser hard limits; the defaults suit real reports with a wide margin.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest input file, in bytes.
    #[arg(long, env = "SEALWATCH_PARSER_MAX_INPUT_BYTES", default_value_t = 64 << 20)]
    pub max_input_bytes: u64,
    /// Most bytes decompression of one input may produce.
    #[arg(long, env = "SEALWATCH_PARSER_MAX_DECOMPRESSED_BYTES", default_value_t = 128 << 20)]
    pub max_decompressed_bytes: u64,
    /// Most records in one DMARC report.
    #[arg(
        long,
        env = "SEALWATCH_PARSER_MAX_RECORDS",
        default_value_t = 2_000_000
    )]
    pub max_records: usize,
    /// Deepest MIME nesting (multiparts and forwarded messages).
    #[arg(long, env = "SEALWATCH_PARSER_MAX_MIME_DEPTH", default_value_t = 8)]
    pub max_mime_depth: usize,
    /// Most attachments in one email.
    #[arg(long, env = "SEALWATCH_PARSER_MAX_ATTACHMENTS", default_value_t = 64)]
    pub max_attachments: usize,
    /// Longest string kept from a report, in bytes (longer ones are cut, with a warning).
    #[arg(long, env = "SEALWATCH_PARSER_MAX_FIELD_BYTES", default_value_t = 4096)]
    pub max_field_bytes: usize,
    /// Most TLS-RPT failure-details rows kept per policy (the rest are dropped, with a
    /// warning; the policy's session totals stay as reported).
    #[arg(
        long,
        env = "SEALWATCH_PARSER_MAX_FAILURE_DETAILS",
        default_value_t = 1000
    )]
    pub max_failure_details: usize,
}

impl LimitArgs {
    pub fn to_limits(&self) -> sealwatch_parser::Limits {
        sealwatch_parser::Limits {
            max_input_bytes: self.max_input_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_records: self.max_records,
            max_mime_depth: self.max_mime_depth,
            max_attachments: self.max_attachments,
            max_field_bytes: self.max_field_bytes,
            max_failure_details: self.max_failure_details,
            ..sealwatch_parser::Limits::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of aggregate reports to generate.
    #[arg(long, default_value_t = 20_000)]
    pub reports: usize,
    /// Where to write the corpus (default: a fresh directory under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the generated corpus afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Seed for the generator (same seed, same corpus).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Monitored domains.
    #[arg(long, default_value_t = 10)]
    pub domains: usize,
    /// Weeks of reports.
    #[arg(long, default_value_t = 4)]
    pub weeks: u32,
    /// Directory for the report emails (one subdirectory per reported day).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed for the generator (same seed, same bytes).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// First reported day, YYYY-MM-DD (default: WEEKS weeks before today, so the
    /// scenario ends yesterday).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start: Option<chrono::NaiveDate>,
    /// Inject an incident (repeatable), e.g. cert-expired:domain=0,mx=0,from=14 —
    /// kinds: cert-expired, provider-mismatch, mta-sts-broken, downgrade (keys network,
    /// rate, provider, receiver), silent, spoofing, dane-broken, legacy-starttls (keys mx,
    /// rate, provider).
    #[arg(long = "incident", value_name = "SPEC")]
    pub incidents: Vec<String>,
    /// Also write the domain names to this file, one per line.
    #[arg(long, value_name = "FILE")]
    pub domains_out: Option<PathBuf>,
    /// `To:` of every report email (default: dmarc-reports@DOMAIN, tlsrpt@DOMAIN).
    #[arg(long)]
    pub rua: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchPollArgs {
    /// Report emails to seed (aggregate and TLS reports).
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Monitored domains (one tenant each).
    #[arg(long, default_value_t = 50)]
    pub domains: usize,
    #[arg(long, default_value = "127.0.0.1")]
    pub imap_host: String,
    /// Plain IMAP port of a loopback server that accepts any user with one password.
    #[arg(long, default_value_t = 1143)]
    pub imap_port: u16,
    /// Environment variable holding that password (it must carry the mailbox password
    /// prefix, `poller.password_env_prefix`).
    #[arg(long, default_value = "SEALWATCH_MAILBOX_TEST_IMAP_PASSWORD")]
    pub password_env: String,
    /// Databases to measure: sqlite, postgres (repeatable).
    #[arg(long = "engine", default_values_t = ["sqlite".to_owned(), "postgres".to_owned()])]
    pub engines: Vec<String>,
    /// PostgreSQL server URL on which a scratch database is created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_admin_url: String,
    /// Messages per FETCH and transaction.
    #[arg(long, default_value_t = 200)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct BenchScaleArgs {
    /// Report emails to seed (spread over the mailboxes).
    #[arg(long, default_value_t = 4_000)]
    pub messages: usize,
    /// IMAP mailboxes.
    #[arg(long, default_value_t = 8)]
    pub mailboxes: usize,
    /// Monitored domains in the ingest run.
    #[arg(long, default_value_t = 50)]
    pub domains: usize,
    /// Poller process counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 4])]
    pub pollers: Vec<usize>,
    /// Tenants whose weekly digest is sent in the digest run.
    #[arg(long, default_value_t = 2_000)]
    pub tenants: usize,
    /// Worker process counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    pub workers: Vec<usize>,
    /// Jobs each worker process runs at once.
    #[arg(long, default_value_t = 16)]
    pub worker_concurrency: usize,
    #[arg(long, default_value = "127.0.0.1")]
    pub imap_host: String,
    #[arg(long, default_value_t = 1143)]
    pub imap_port: u16,
    /// Environment variable holding the IMAP password (any user, one password; it must
    /// carry the mailbox password prefix, `poller.password_env_prefix`).
    #[arg(long, default_value = "SEALWATCH_MAILBOX_TEST_IMAP_PASSWORD")]
    pub password_env: String,
    #[arg(long, default_value = "127.0.0.1")]
    pub smtp_host: String,
    #[arg(long, default_value_t = 2525)]
    pub smtp_port: u16,
    /// PostgreSQL server URL on which scratch databases are created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_admin_url: String,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Only this domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Judge the days up to this date (YYYY-MM-DD, UTC) instead of today.
    #[arg(long)]
    pub today: Option<String>,
    /// Do not print a line per domain.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    #[arg(long)]
    pub domain: Option<String>,
    /// open | acknowledged | resolved | dismissed
    #[arg(long)]
    pub status: Option<String>,
    /// An anomaly kind such as tls-certificate-cluster.
    #[arg(long)]
    pub kind: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchAnalyzeArgs {
    /// Monitored domains (one tenant each).
    #[arg(long, default_value_t = 1000)]
    pub domains: usize,
    /// Weeks of history per domain.
    #[arg(long, default_value_t = 12)]
    pub weeks: u32,
    /// Databases to measure: sqlite, postgres (repeatable).
    #[arg(long = "engine", default_values_t = ["sqlite".to_owned(), "postgres".to_owned()])]
    pub engines: Vec<String>,
    /// PostgreSQL server URL on which a scratch database is created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_admin_url: String,
    /// Keep the loaded databases and print their URLs (for `--reuse`).
    #[arg(long)]
    pub keep: bool,
    /// Analyse a database an earlier `--keep` run loaded instead of loading a new one
    /// (`sqlite://PATH` or `postgres://...`); `--engine` is then ignored.
    #[arg(long, value_name = "URL")]
    pub reuse: Option<String>,
    /// Domains analysed at a time (default: `analysis.concurrency` of the configuration).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Also time the pass as production runs it: the nightly batch jobs queued and run by
    /// one worker process (`jobs.concurrency` jobs at a time).
    #[arg(long)]
    pub through_queue: bool,
}
