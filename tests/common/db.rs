//! Test databases on both engines: a fresh SQLite file or a fresh PostgreSQL database per
//! test, migrated, dropped afterwards. Include with `#[path = "../common/db.rs"] mod db;`.

#![allow(dead_code)]

use std::path::PathBuf;

use sea_orm::{ConnectionTrait, Database};
use sealwatch_store::{DbConfig, Store};

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A migrated database that is removed when dropped.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database { admin_url: String, name: String },
}

/// `postgres://` URL of the server tests may create databases on.
pub fn pg_admin_url() -> String {
    std::env::var("SEALWATCH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique(label: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sw_{}_{}_{}_{}",
        label
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect::<String>()
            .to_lowercase(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

impl TestDb {
    pub async fn new(engine: Engine, label: &str) -> TestDb {
        let name = unique(label);
        match engine {
            Engine::Sqlite => {
                let dir = std::env::temp_dir().join("sealwatch-tests");
                std::fs::create_dir_all(&dir).expect("temp dir");
                let path = dir.join(format!("{name}.db"));
                let url = format!("sqlite://{}", path.display());
                let store = Store::connect(&DbConfig {
                    url: url.clone(),
                    max_connections: 4,
                })
                .await
                .expect("open sqlite");
                store.migrate().await.expect("migrate sqlite");
                TestDb {
                    store,
                    url,
                    cleanup: Cleanup::File(path),
                }
            }
            Engine::Postgres => {
                let admin_url = pg_admin_url();
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to PostgreSQL (is it running?)");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .expect("url has a database");
                let url = format!("{base}/{name}");
                let store = Store::connect(&DbConfig {
                    url: url.clone(),
                    max_connections: 4,
                })
                .await
                .expect("open postgres");
                store.migrate().await.expect("migrate postgres");
                TestDb {
                    store,
                    url,
                    cleanup: Cleanup::Database { admin_url, name },
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Database { admin_url, name } => {
                let admin_url = admin_url.clone();
                let name = name.clone();
                // Drop from a separate thread with its own runtime: Drop may run inside one.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(rt) = rt {
                        rt.block_on(async {
                            if let Ok(admin) = Database::connect(&admin_url).await {
                                let _ = admin
                                    .execute_unprepared(&format!(
                                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                    ))
                                    .await;
                            }
                        });
                    }
                })
                .join();
            }
        }
    }
}

/// Defines `sqlite::<name>` and `postgres::<name>` tests from one `async fn <name>(Engine)`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::db::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::db::Engine::Postgres).await
                }
            )*
        }
    };
}
