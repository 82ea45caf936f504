//! IMAP mailbox sources and their sync state.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::entities::{mailbox, mailbox_message};
use crate::{Result, Store, StoreError};

/// How to secure the IMAP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS; refuses to continue without it.
    StartTls,
    /// No TLS. Only accepted for loopback hosts.
    Plain,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Implicit => "implicit",
            TlsMode::StartTls => "starttls",
            TlsMode::Plain => "plain",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsMode {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "implicit" | "tls" | "imaps" => Ok(TlsMode::Implicit),
            "starttls" => Ok(TlsMode::StartTls),
            "plain" | "none" => Ok(TlsMode::Plain),
            other => Err(StoreError::Invalid(format!(
                "TLS mode {other:?} is not one of implicit, starttls, plain"
            ))),
        }
    }
}

/// What to do with a message once its reports (or quarantine entry) are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAction {
    /// Move to this folder (created if missing).
    Move(String),
    /// Set `\Seen`.
    Seen,
    /// Delete and expunge.
    Delete,
}

impl AfterAction {
    fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            AfterAction::Move(f) => ("move", Some(f)),
            AfterAction::Seen => ("seen", None),
            AfterAction::Delete => ("delete", None),
        }
    }
}

impl fmt::Display for AfterAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AfterAction::Move(folder) => write!(f, "move:{folder}"),
            AfterAction::Seen => f.write_str("seen"),
            AfterAction::Delete => f.write_str("delete"),
        }
    }
}

impl FromStr for AfterAction {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(folder) = s.strip_prefix("move:") {
            let folder = folder.trim();
            if folder.is_empty() {
                return Err(StoreError::Invalid("move: needs a folder name".into()));
            }
            return Ok(AfterAction::Move(folder.to_owned()));
        }
        match s {
            "seen" => Ok(AfterAction::Seen),
            "delete" => Ok(AfterAction::Delete),
            other => Err(StoreError::Invalid(format!(
                "after-action {other:?} is not move:FOLDER, seen or delete"
            ))),
        }
    }
}

/// A mailbox to create.
#[derive(Debug, Clone)]
pub struct NewMailbox {
    /// `None`: a shared mailbox, routed by report content.
    pub tenant_id: Option<i64>,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    /// Environment variable holding the password (the password itself is never stored).
    pub password_env: String,
    pub folder: String,
    pub after: AfterAction,
}

/// A configured mailbox and its sync state.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub password_env: Option<String>,
    pub folder: String,
    pub after: AfterAction,
    pub enabled: bool,
    pub uidvalidity: Option<u32>,
    pub last_uid: u32,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

/// The result of one poll of one mailbox, for its status columns.
#[derive(Debug, Clone)]
pub struct PollRecord {
    /// `ok`, `auth-failed`, `connect-failed`, `error`.
    pub status: String,
    pub error: Option<String>,
}

fn to_mailbox(m: mailbox::Model) -> Result<Mailbox> {
    let after = match m.after_action.as_str() {
        "move" => AfterAction::Move(m.after_folder.clone().unwrap_or_else(|| "Processed".into())),
        other => other.parse()?,
    };
    Ok(Mailbox {
        id: m.id,
        tenant_id: m.tenant_id,
        name: m.name,
        host: m.host,
        port: u16::try_from(m.port).map_err(|_| StoreError::Invalid(format!("port {}", m.port)))?,
        tls: m.tls_mode.parse()?,
        username: m.username,
        password_env: m.password_env,
        folder: m.folder,
        after,
        enabled: m.enabled,
        uidvalidity: m.uidvalidity.and_then(|v| u32::try_from(v).ok()),
        last_uid: u32::try_from(m.last_uid).unwrap_or(0),
        last_poll_at: m.last_poll_at,
        last_status: m.last_status,
        last_error: m.last_error,
        consecutive_failures: u32::try_from(m.consecutive_failures).unwrap_or(0),
    })
}

impl Store {
    /// Adds a mailbox source.
    pub async fn add_mailbox(&self, new: NewMailbox) -> Result<Mailbox> {
        if mailbox::Entity::find()
            .filter(mailbox::Column::Name.eq(new.name.as_str()))
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(StoreError::MailboxExists(new.name));
        }
        let (action, folder) = new.after.parts();
        let m = mailbox::ActiveModel {
            tenant_id: Set(new.tenant_id),
            name: Set(new.name),
            host: Set(new.host),
            port: Set(i32::from(new.port)),
            tls_mode: Set(new.tls.as_str().to_owned()),
            username: Set(new.username),
            password_env: Set(Some(new.password_env)),
            password_secret: Set(None),
            folder: Set(new.folder),
            after_action: Set(action.to_owned()),
            after_folder: Set(folder.map(str::to_owned)),
            enabled: Set(true),
            uidvalidity: Set(None),
            last_uid: Set(0),
            consecutive_failures: Set(0),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        to_mailbox(m)
    }

    /// Every mailbox, by name.
    pub async fn list_mailboxes(&self) -> Result<Vec<Mailbox>> {
        mailbox::Entity::find()
            .order_by_asc(mailbox::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_mailbox)
            .collect()
    }

    /// One mailbox by id.
    pub async fn get_mailbox(&self, id: i64) -> Result<Mailbox> {
        let m = mailbox::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        to_mailbox(m)
    }

    /// Records the outcome of a poll.
    pub async fn record_poll(&self, id: i64, record: &PollRecord) -> Result<()> {
        let m = mailbox::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        let failures = if record.status == "ok" {
            0
        } else {
            m.consecutive_failures + 1
        };
        let mut am: mailbox::ActiveModel = m.into();
        am.last_poll_at = Set(Some(Utc::now()));
        am.last_status = Set(Some(record.status.clone()));
        am.last_error = Set(record.error.clone());
        am.consecutive_failures = Set(failures);
        am.update(&self.db).await?;
        Ok(())
    }

    /// Stores the sync position after a batch's after-actions are done.
    pub async fn set_sync_state(&self, id: i64, uidvalidity: u32, last_uid: u32) -> Result<()> {
        let m = mailbox::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        let mut am: mailbox::ActiveModel = m.into();
        am.uidvalidity = Set(Some(i64::from(uidvalidity)));
        am.last_uid = Set(i64::from(last_uid));
        am.update(&self.db).await?;
        Ok(())
    }

    /// Which of these UIDs were already committed for this mailbox and UIDVALIDITY.
    pub async fn processed_uids(
        &self,
        mailbox_id: i64,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<Vec<u32>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in uids.chunks(500) {
            let rows = mailbox_message::Entity::find()
                .filter(mailbox_message::Column::MailboxId.eq(mailbox_id))
                .filter(mailbox_message::Column::Uidvalidity.eq(i64::from(uidvalidity)))
                .filter(mailbox_message::Column::Uid.is_in(chunk.iter().map(|u| i64::from(*u))))
                .all(&self.db)
                .await?;
            out.extend(rows.into_iter().filter_map(|r| u32::try_from(r.uid).ok()));
        }
        Ok(out)
    }
}
