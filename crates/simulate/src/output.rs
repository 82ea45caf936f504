//! A whole scenario on disk as report emails, one file per report.

use std::fs;
use std::path::{Path, PathBuf};

use crate::SimError;
use crate::scenario::Scenario;

/// What [`write_scenario_emails`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScenarioStats {
    /// Email files written.
    pub files: u64,
    /// Day directories written.
    pub days: u64,
    /// Bytes written.
    pub bytes: u64,
    /// DMARC aggregate report emails.
    pub dmarc_reports: u64,
    /// Messages counted by the DMARC records.
    pub dmarc_messages: u64,
    /// SMTP TLS report emails.
    pub tls_reports: u64,
    /// Successful TLS sessions reported.
    pub tls_successful_sessions: u64,
    /// Failed TLS sessions reported.
    pub tls_failed_sessions: u64,
}

/// Writes every report of `scenario` as the email its provider sends, one `.eml` file per
/// report, into one directory per reported day: `dir/YYYY-MM-DD/<report file name>.eml`
/// (DMARC aggregate and TLS reports alike). Reports are produced and written one at a
/// time, so memory stays constant however long the scenario. Existing files of the same
/// name are overwritten (same seed, same bytes). Fails for an endless scenario.
pub fn write_scenario_emails(scenario: &Scenario, dir: &Path) -> Result<ScenarioStats, SimError> {
    if scenario.config().days.is_none() {
        return Err(SimError::Config(
            "an endless scenario cannot be written out; set a number of days".to_owned(),
        ));
    }
    let mut stats = ScenarioStats::default();
    let mut current: Option<(chrono::NaiveDate, PathBuf)> = None;
    fs::create_dir_all(dir).map_err(SimError::at(dir))?;
    for plan in scenario.plans() {
        let day_dir = match &current {
            Some((day, path)) if *day == plan.day => path.clone(),
            _ => {
                let path = dir.join(plan.day.format("%Y-%m-%d").to_string());
                fs::create_dir_all(&path).map_err(SimError::at(&path))?;
                stats.days += 1;
                current = Some((plan.day, path.clone()));
                path
            }
        };
        let email = scenario.aggregate_email(&plan)?;
        write(&day_dir, &email.file_name, &email.bytes, &mut stats)?;
        stats.dmarc_reports += 1;
        stats.dmarc_messages += email.messages;
        if let Some(report) = scenario.tls_report(&plan)
            && let Some(email) = scenario.tls_email_of(&plan, &report)?
        {
            write(&day_dir, &email.file_name, &email.bytes, &mut stats)?;
            stats.tls_reports += 1;
            stats.tls_successful_sessions += report.successful_sessions();
            stats.tls_failed_sessions += report.failed_sessions();
        }
    }
    Ok(stats)
}

fn write(dir: &Path, name: &str, bytes: &[u8], stats: &mut ScenarioStats) -> Result<(), SimError> {
    let path = dir.join(name);
    fs::write(&path, bytes).map_err(SimError::at(&path))?;
    stats.files += 1;
    stats.bytes += bytes.len() as u64;
    Ok(())
}
