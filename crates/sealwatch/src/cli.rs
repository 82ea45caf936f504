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
    /// Apply database migrations.
    Migrate,
    /// Ingest report files, .eml files, mbox files and Maildir folders into the database.
    Import(ImportArgs),
    /// Poll the configured IMAP mailboxes.
    Poll(PollArgs),
    /// Run the service: poll mailboxes every interval until stopped (SIGINT/SIGTERM).
    Serve(ServeArgs),
    /// Manage tenants (subscribers) and their domains.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage IMAP mailbox sources.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
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
    #[arg(long, env = "SEALWATCH_PARSER_MAX_DECOMPRESSED_BYTES", default_value_t = 512 << 20)]
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
}

impl LimitArgs {
    pub fn to_limits(&self) -> sealwatch_parser::Limits {
        sealwatch_parser::Limits {
            max_input_bytes: self.max_input_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_records: self.max_records,
            max_mime_depth: self.max_mime_depth,
            max_attachments: self.max_attachments,
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
    /// Environment variable holding that password.
    #[arg(long, default_value = "SEALWATCH_TEST_IMAP_PASSWORD")]
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
