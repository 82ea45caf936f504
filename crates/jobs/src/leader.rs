//! Leader election for the scheduler: on PostgreSQL, the process holding a session-level
//! advisory lock on one dedicated connection is the active scheduler; the others wait and
//! take over within a few seconds when its connection (or process) dies. On SQLite there is
//! only ever one process, so it always leads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{DatabaseBackend, DatabaseConnection};

/// The advisory lock key of the sealwatch scheduler (an arbitrary constant).
pub const SCHEDULER_LOCK_KEY: i64 = 0x5EA1_3A7C_0001;

/// Whether this process is the active scheduler right now.
#[derive(Debug, Clone)]
pub struct Leadership {
    leader: Arc<AtomicBool>,
}

impl Leadership {
    /// Always the leader (SQLite, or tests).
    pub fn always() -> Leadership {
        Leadership {
            leader: Arc::new(AtomicBool::new(true)),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Starts campaigning: on PostgreSQL a background task tries to take the advisory lock
    /// every `retry` and, once it holds it, checks the connection every `retry` (losing
    /// the connection loses the lock, and leadership with it). Stops when `stop` resolves.
    pub fn campaign(
        db: &DatabaseConnection,
        retry: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Leadership {
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return Leadership::always();
        }
        let me = Leadership {
            leader: Arc::new(AtomicBool::new(false)),
        };
        let pool = db.get_postgres_connection_pool().clone();
        let flag = me.leader.clone();
        tokio::spawn(async move {
            let mut stop = stop;
            loop {
                if stopped(&stop) {
                    break;
                }
                // A dedicated connection, detached from the pool: the lock lives and dies with it.
                match pool.acquire().await {
                    Ok(conn) => {
                        let mut conn = conn.detach();
                        hold(&mut conn, &flag, retry, &mut stop).await;
                        flag.store(false, Ordering::Release);
                        let _ = conn.close().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "scheduler election: no database connection")
                    }
                }
                if stopped(&stop) {
                    break;
                }
                tokio::select! {
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(retry) => {}
                }
            }
        });
        me
    }
}

/// Stop was asked for, or whoever could ask is gone.
fn stopped(stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Tries for the lock on `conn` and keeps it while the connection is healthy.
async fn hold(
    conn: &mut sqlx::PgConnection,
    flag: &AtomicBool,
    retry: Duration,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let got: Result<bool, sqlx::Error> = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SCHEDULER_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await;
        match got {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "scheduler election failed");
                return;
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(retry) => {}
        }
        if stopped(stop) {
            return;
        }
    }
    tracing::info!("this process is now the active scheduler");
    flag.store(true, Ordering::Release);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                if stopped(stop) {
                    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                        .bind(SCHEDULER_LOCK_KEY)
                        .execute(&mut *conn)
                        .await;
                    return;
                }
            }
            () = tokio::time::sleep(retry) => {
                if let Err(e) = sqlx::query("SELECT 1").execute(&mut *conn).await {
                    tracing::warn!(error = %e, "scheduler lost its database connection; standing down");
                    return;
                }
            }
        }
    }
}
