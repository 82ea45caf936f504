//! Report corpora on disk: many aggregate report files in batch directories, written one
//! file at a time.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::NaiveDate;

use crate::SimError;
use crate::package::Packaging;
use crate::rng::{SimRng, key_of};
use crate::scenario::{RenderedReport, ReportPlan, Scenario, ScenarioConfig};

/// The kind of a corpus file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// A gzip-compressed report (`.xml.gz`).
    XmlGz,
    /// A zipped report (`.zip`, `.xml.zip`).
    Zip,
    /// A report email with the compressed report attached (`.eml`).
    Eml,
    /// An uncompressed report (`.xml`).
    Xml,
}

/// Parameters of a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusConfig {
    /// Number of report files.
    pub reports: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of monitored domains; `None` picks one per hundred reports, so a corpus
    /// covers about four weeks whatever its size.
    pub domains: Option<usize>,
    /// First reported day.
    pub start: NaiveDate,
    /// Most files in one batch directory.
    pub files_per_dir: usize,
    /// Share (per cent) of gzip-packaged reports written as the email that carries them.
    pub email_percent: u8,
    /// Writer threads; `0` uses the available parallelism.
    pub threads: usize,
}

impl CorpusConfig {
    /// A configuration with the defaults: about 60 % `.xml.gz`, 30 % `.zip`, 10 % `.eml`,
    /// at most 2000 files per directory.
    pub fn new(reports: usize, seed: u64) -> Self {
        CorpusConfig {
            reports,
            seed,
            domains: None,
            start: ScenarioConfig::default().start,
            files_per_dir: 2000,
            email_percent: 14,
            threads: 0,
        }
    }
}

/// One generated corpus file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusFile {
    /// Position in the corpus (0-based).
    pub index: usize,
    /// Path below the corpus root: `batch-NNNN/<file name>`.
    pub relative_path: PathBuf,
    /// What kind of file it is.
    pub format: FileFormat,
    /// Which report it holds.
    pub plan: ReportPlan,
    /// File name, bytes and content totals.
    pub report: RenderedReport,
}

/// Totals of one batch directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Directory name below the corpus root.
    pub name: String,
    /// Files in the directory.
    pub files: u64,
    /// Uncompressed report XML.
    pub document_bytes: u64,
    /// Bytes written.
    pub disk_bytes: u64,
}

/// Totals of a corpus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorpusStats {
    /// Files written (one report each).
    pub files: u64,
    /// Uncompressed report XML.
    pub document_bytes: u64,
    /// Bytes written.
    pub disk_bytes: u64,
    /// DMARC records in all reports.
    pub records: u64,
    /// Messages counted by all records.
    pub messages: u64,
    /// `.xml.gz` files.
    pub xml_gz: u64,
    /// `.zip` and `.xml.zip` files.
    pub zip: u64,
    /// `.eml` files.
    pub eml: u64,
    /// Uncompressed `.xml` files.
    pub xml: u64,
    /// Per batch directory, in name order.
    pub dirs: Vec<DirStats>,
}

impl CorpusStats {
    fn add(&mut self, file: &CorpusFile, files_per_dir: usize) {
        let r = &file.report;
        self.files += 1;
        self.document_bytes += r.document_bytes;
        self.disk_bytes += r.bytes.len() as u64;
        self.records += r.records;
        self.messages += r.messages;
        match file.format {
            FileFormat::XmlGz => self.xml_gz += 1,
            FileFormat::Zip => self.zip += 1,
            FileFormat::Eml => self.eml += 1,
            FileFormat::Xml => self.xml += 1,
        }
        let d = file.index / files_per_dir.max(1);
        if self.dirs.len() <= d {
            self.dirs.resize_with(d + 1, DirStats::default);
        }
        let dir = &mut self.dirs[d];
        dir.name = batch_dir_name(d);
        dir.files += 1;
        dir.document_bytes += r.document_bytes;
        dir.disk_bytes += r.bytes.len() as u64;
    }

    fn merge(&mut self, other: CorpusStats) {
        self.files += other.files;
        self.document_bytes += other.document_bytes;
        self.disk_bytes += other.disk_bytes;
        self.records += other.records;
        self.messages += other.messages;
        self.xml_gz += other.xml_gz;
        self.zip += other.zip;
        self.eml += other.eml;
        self.xml += other.xml;
        if self.dirs.len() < other.dirs.len() {
            self.dirs.resize_with(other.dirs.len(), DirStats::default);
        }
        for (i, d) in other.dirs.into_iter().enumerate() {
            if d.files == 0 {
                continue;
            }
            let mine = &mut self.dirs[i];
            mine.name = d.name;
            mine.files += d.files;
            mine.document_bytes += d.document_bytes;
            mine.disk_bytes += d.disk_bytes;
        }
    }
}

/// Name of the `n`th batch directory.
pub fn batch_dir_name(n: usize) -> String {
    format!("batch-{n:04}")
}

/// A corpus of DMARC aggregate report files drawn from a [`Scenario`].
#[derive(Debug, Clone)]
pub struct Corpus {
    config: CorpusConfig,
    scenario: Scenario,
}

impl Corpus {
    /// Sets up a corpus (cheap: builds the domain profiles only).
    pub fn new(config: CorpusConfig) -> Self {
        let domains = config
            .domains
            .unwrap_or_else(|| config.reports.div_ceil(100))
            .max(1);
        let scenario = Scenario::new(ScenarioConfig {
            seed: config.seed,
            domains,
            start: config.start,
            days: None,
            rua: None,
            incidents: Vec::new(),
        });
        Corpus { config, scenario }
    }

    /// The configuration.
    pub fn config(&self) -> &CorpusConfig {
        &self.config
    }

    /// The scenario the reports come from.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    fn format_of(&self, plan: &ReportPlan) -> FileFormat {
        match plan.provider().packaging {
            Packaging::Zip | Packaging::XmlZip => FileFormat::Zip,
            Packaging::PlainXml => FileFormat::Xml,
            Packaging::Gzip | Packaging::GzipZlibBody => {
                let keys = [
                    key_of("email-or-file"),
                    plan.day.to_epoch_days() as u64,
                    plan.domain as u64,
                    plan.provider as u64,
                ];
                let mut rng = SimRng::derive(self.config.seed, &keys);
                if rng.chance(f64::from(self.config.email_percent) / 100.0) {
                    FileFormat::Eml
                } else {
                    FileFormat::XmlGz
                }
            }
        }
    }

    fn render(&self, index: usize, plan: ReportPlan) -> Result<CorpusFile, SimError> {
        let format = self.format_of(&plan);
        let report = match format {
            FileFormat::Eml => self.scenario.aggregate_email(&plan)?,
            _ => self.scenario.aggregate_file(&plan)?,
        };
        let dir = batch_dir_name(index / self.config.files_per_dir.max(1));
        Ok(CorpusFile {
            index,
            relative_path: Path::new(&dir).join(&report.file_name),
            format,
            plan,
            report,
        })
    }

    /// The corpus files in order, generated one at a time.
    pub fn files(&self) -> impl Iterator<Item = Result<CorpusFile, SimError>> + '_ {
        self.scenario
            .plans()
            .take(self.config.reports)
            .enumerate()
            .map(|(i, plan)| self.render(i, plan))
    }

    /// Writes the corpus below `root` (created if missing) and returns its totals.
    /// Memory use does not grow with the corpus: each thread holds one file at a time.
    /// `progress` is called with the number of files written so far.
    pub fn write_to(
        &self,
        root: &Path,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<CorpusStats, SimError> {
        fs::create_dir_all(root).map_err(SimError::at(root))?;
        let threads = match self.config.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
        .min(self.config.reports.max(1));
        let done = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Vec<Result<CorpusStats, SimError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|w| {
                    let (done, failed) = (&done, &failed);
                    scope.spawn(move || {
                        let result = self.write_share(root, w, threads, done, failed, progress);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        result
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(SimError::Config(
                            "a corpus writer thread panicked".to_owned(),
                        ))
                    })
                })
                .collect()
        });
        let mut total = CorpusStats::default();
        for r in results {
            total.merge(r?);
        }
        Ok(total)
    }

    fn write_share(
        &self,
        root: &Path,
        worker: usize,
        workers: usize,
        done: &AtomicUsize,
        failed: &AtomicBool,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<CorpusStats, SimError> {
        let mut stats = CorpusStats::default();
        let mut made_dir = None;
        for (i, plan) in self.scenario.plans().take(self.config.reports).enumerate() {
            if i % workers != worker {
                continue;
            }
            if failed.load(Ordering::Relaxed) {
                break;
            }
            let file = self.render(i, plan)?;
            let path = root.join(&file.relative_path);
            if let Some(parent) = path.parent()
                && made_dir.as_deref() != Some(parent)
            {
                fs::create_dir_all(parent).map_err(SimError::at(parent))?;
                made_dir = Some(parent.to_path_buf());
            }
            fs::write(&path, &file.report.bytes).map_err(SimError::at(&path))?;
            stats.add(&file, self.config.files_per_dir);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
        }
        Ok(stats)
    }
}

/// Writes `reports` aggregate report files generated from `seed` below `dir`, with the
/// defaults of [`CorpusConfig::new`].
pub fn generate_corpus(dir: &Path, reports: usize, seed: u64) -> Result<CorpusStats, SimError> {
    Corpus::new(CorpusConfig::new(reports, seed)).write_to(dir, &|_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_files() {
        let a = Corpus::new(CorpusConfig::new(40, 3));
        let b = Corpus::new(CorpusConfig::new(40, 3));
        let fa: Vec<CorpusFile> = a.files().collect::<Result<_, _>>().expect("render");
        let fb: Vec<CorpusFile> = b.files().collect::<Result<_, _>>().expect("render");
        assert_eq!(fa, fb);
        let c = Corpus::new(CorpusConfig::new(40, 4));
        let fc: Vec<CorpusFile> = c.files().collect::<Result<_, _>>().expect("render");
        assert_ne!(fa[0].report.bytes, fc[0].report.bytes);
    }

    #[test]
    fn prefix_of_a_corpus_is_a_smaller_corpus() {
        let big: Vec<CorpusFile> = Corpus::new(CorpusConfig {
            domains: Some(5),
            ..CorpusConfig::new(30, 9)
        })
        .files()
        .collect::<Result<_, _>>()
        .expect("render");
        let small: Vec<CorpusFile> = Corpus::new(CorpusConfig {
            domains: Some(5),
            ..CorpusConfig::new(10, 9)
        })
        .files()
        .collect::<Result<_, _>>()
        .expect("render");
        assert_eq!(&big[..10], &small[..]);
    }

    #[test]
    fn mix_and_sizes_are_realistic() {
        let corpus = Corpus::new(CorpusConfig::new(1500, 7));
        let mut stats = CorpusStats::default();
        let mut names = std::collections::HashSet::new();
        for f in corpus.files() {
            let f = f.expect("render");
            assert!(
                names.insert(f.relative_path.clone()),
                "{:?}",
                f.relative_path
            );
            stats.add(&f, 2000);
        }
        let n = stats.files as f64;
        let pct = |x: u64| x as f64 * 100.0 / n;
        assert!((50.0..70.0).contains(&pct(stats.xml_gz)), "{stats:?}");
        assert!((22.0..38.0).contains(&pct(stats.zip)), "{stats:?}");
        assert!((6.0..15.0).contains(&pct(stats.eml)), "{stats:?}");
        let avg_kb = stats.document_bytes as f64 / n / 1024.0;
        assert!((10.0..20.0).contains(&avg_kb), "average XML {avg_kb:.1} KB");
    }

    #[test]
    fn writes_batches_to_disk() {
        let dir = std::env::temp_dir().join(format!(
            "sealwatch-simulate-test-{}-{}",
            std::process::id(),
            line!()
        ));
        let corpus = Corpus::new(CorpusConfig {
            files_per_dir: 7,
            threads: 2,
            ..CorpusConfig::new(20, 1)
        });
        let stats = corpus.write_to(&dir, &|_| {}).expect("write");
        assert_eq!(stats.files, 20);
        assert_eq!(stats.dirs.len(), 3);
        assert_eq!(stats.dirs.iter().map(|d| d.files).sum::<u64>(), 20);
        assert_eq!(stats.dirs[0].name, "batch-0000");
        let on_disk = fs::read_dir(dir.join("batch-0002")).expect("dir").count();
        assert_eq!(on_disk, 6);
        let expected: Vec<CorpusFile> = corpus.files().collect::<Result<_, _>>().expect("render");
        for f in &expected {
            let bytes = fs::read(dir.join(&f.relative_path)).expect("file");
            assert_eq!(bytes, f.report.bytes);
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
