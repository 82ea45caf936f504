//! Backfill: report files, `.eml` files, mbox files and Maildir folders into the database.
//!
//! A reader thread walks the inputs and parses them in batches while the caller's task
//! writes the previous batch: parsing and database writes overlap, memory stays bounded by
//! two batches.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealwatch_parser::Parser;
use sealwatch_store::{MessageSource, NewMessage, Store, WriteOutcome};
use tokio::sync::mpsc;

use crate::prepare::prepare;
use crate::route::Router;
use crate::{IngestError, Result};

/// Progress after each written batch.
#[derive(Debug, Clone, Default)]
pub struct ImportProgress {
    pub messages: u64,
    pub bytes: u64,
    pub outcome: WriteOutcome,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// Files, directories, mbox files, Maildir folders.
    pub paths: Vec<PathBuf>,
    /// Route only to this tenant's domains (as a per-tenant mailbox would).
    pub only_tenant: Option<i64>,
    /// Messages per database transaction.
    pub batch_size: usize,
    /// Record the messages as received at this time instead of now (replaying an archive in
    /// the order it arrived; the analysis reads from receipt times whether a reporter's
    /// reports still arrive).
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the walk found before importing, for a progress bar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inventory {
    pub files: u64,
    pub bytes: u64,
}

/// Counts files and bytes under the paths (metadata only).
pub fn inventory(paths: &[PathBuf]) -> Inventory {
    let mut inv = Inventory::default();
    for p in paths {
        walk(p, &mut |path| {
            inv.files += 1;
            inv.bytes += fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        });
    }
    inv
}

/// Imports every message under `paths`. `only_tenant` restricts routing to one tenant.
/// Unreadable files are reported through `on_error` and skipped (they stay on disk).
pub async fn import(
    store: &Store,
    parser: Arc<Parser>,
    router: Arc<Router>,
    request: ImportRequest,
    mut on_progress: impl FnMut(&ImportProgress),
    on_error: impl Fn(&str) + Send + 'static,
) -> Result<WriteOutcome> {
    let ImportRequest {
        paths,
        only_tenant,
        batch_size,
        received_at,
    } = request;
    let batch_size = batch_size.max(1);
    let (tx, mut rx) = mpsc::channel::<(Vec<NewMessage>, u64)>(2);
    let limit = parser.limits().max_input_bytes;
    let reader = std::thread::Builder::new()
        .name("sealwatch-import-reader".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(batch_size);
            let mut bytes = 0u64;
            let send = |batch: &mut Vec<NewMessage>, bytes: &mut u64| -> bool {
                let full = std::mem::take(batch);
                let ok = tx.blocking_send((full, *bytes)).is_ok();
                *bytes = 0;
                ok
            };
            for root in &paths {
                let mut stop = false;
                walk(root, &mut |path| {
                    if stop {
                        return;
                    }
                    for (origin, data) in messages_in(path, limit, &on_error) {
                        bytes += data.len() as u64;
                        let name = path.file_name().and_then(|n| n.to_str());
                        let prepared = prepare(
                            &parser,
                            &router,
                            data,
                            name,
                            MessageSource::File { origin },
                            only_tenant,
                        );
                        let mut message = prepared.message;
                        message.received_at = received_at;
                        batch.push(message);
                        if batch.len() >= batch_size && !send(&mut batch, &mut bytes) {
                            stop = true;
                            return;
                        }
                    }
                });
            }
            if !batch.is_empty() {
                send(&mut batch, &mut bytes);
            }
        })
        .map_err(|e| IngestError::Task(e.to_string()))?;

    let mut progress = ImportProgress::default();
    let mut result = Ok(());
    while let Some((batch, bytes)) = rx.recv().await {
        let n = batch.len() as u64;
        match store.write_messages(batch).await {
            Ok(outcome) => {
                progress.messages += n;
                progress.bytes += bytes;
                progress.outcome.merge(&outcome);
                on_progress(&progress);
            }
            Err(e) => {
                result = Err(IngestError::Store(e));
                break;
            }
        }
    }
    drop(rx);
    reader
        .join()
        .map_err(|_| IngestError::Task("import reader thread panicked".into()))?;
    result.map(|()| progress.outcome)
}

/// Visits every file under `root` (or `root` itself), skipping Maildir `tmp/` folders and
/// dot-files. Holds one directory listing at a time.
fn walk(root: &Path, visit: &mut dyn FnMut(&Path)) {
    if root.is_file() {
        visit(root);
        return;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if name != "tmp" || !is_maildir(&dir) {
                        stack.push(path);
                    }
                }
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
        files.sort();
        for f in files {
            visit(&f);
        }
    }
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

/// The messages in one file: the whole file, or each message of an mbox.
fn messages_in(path: &Path, limit: u64, on_error: &dyn Fn(&str)) -> Vec<(String, Vec<u8>)> {
    let shown = path.display().to_string();
    let data = match read_capped(path, limit) {
        Ok(d) => d,
        Err(e) => {
            on_error(&format!("{shown}: {e}"));
            return Vec::new();
        }
    };
    if data.starts_with(b"From ") {
        let messages = split_mbox(&data);
        if messages.len() > 1 || messages.first().is_some_and(|m| m.len() + 64 < data.len()) {
            return messages
                .into_iter()
                .enumerate()
                .map(|(i, m)| (format!("{shown}#{}", i + 1), m))
                .collect();
        }
    }
    vec![(shown, data)]
}

fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(std::io::Error::other(format!(
            "file is {len} bytes, over the input limit of {limit} bytes; skipped"
        )));
    }
    let mut buf = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Splits an mbox (mboxo/mboxrd) into messages, dropping the `From ` separator lines and
/// undoing `>From ` quoting.
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut prev_blank = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if prev_blank && line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                out.push(trim_trailing_newline(m));
            }
            current = Some(Vec::new());
            prev_blank = false;
            continue;
        }
        let body = current.get_or_insert_with(Vec::new);
        let unquoted = unquote_from(line);
        body.extend_from_slice(unquoted);
        prev_blank = line == b"\n" || line == b"\r\n";
    }
    if let Some(m) = current {
        out.push(trim_trailing_newline(m));
    }
    out.retain(|m| !m.is_empty());
    out
}

fn unquote_from(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") {
        &line[1..]
    } else {
        line
    }
}

/// Drops the blank line that separates mbox messages (and any trailing line breaks),
/// keeping one final newline.
fn trim_trailing_newline(mut m: Vec<u8>) -> Vec<u8> {
    while m.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        m.pop();
    }
    m.push(b'\n');
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_files_split_into_messages_with_from_unquoted() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2026\nSubject: one\n\n>From here\n\nFrom c@d Tue Jan  2 00:00:00 2026\nSubject: two\n\nbody\n";
        let msgs = split_mbox(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"Subject: one\n\nFrom here\n".to_vec());
        assert_eq!(msgs[1], b"Subject: two\n\nbody\n".to_vec());
    }
}
