//! The admin API on a random loopback port, for HTTP tests. Include with
//! `#[path = "../common/api.rs"] mod api;`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use sealwatch_api::{ApiConfig, AppState, Metrics};
use sealwatch_parser::Parser;
use sealwatch_store::{Role, Store};

/// A running server; stopped (gracefully) when dropped.
pub struct ApiServer {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl ApiServer {
    pub async fn start(store: &Store, config: ApiConfig) -> ApiServer {
        Self::start_inner(store, config, false).await
    }

    /// Also opens the job queue, for endpoints that hand work to the workers.
    ///
    /// Open it only for servers that need it: actix runs handlers on its own worker
    /// runtimes, and pooled connections opened there die with a stopped server, so tests
    /// that start several servers on one store keep the queue's setup off the pool.
    pub async fn start_with_queue(store: &Store, config: ApiConfig) -> ApiServer {
        Self::start_inner(store, config, true).await
    }

    async fn start_inner(store: &Store, mut config: ApiConfig, with_queue: bool) -> ApiServer {
        if config.workers == 0 {
            config.workers = 2;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let mut state = AppState::new(
            store.clone(),
            config,
            Arc::new(Parser::default()),
            Arc::new(Metrics::default()),
        );
        if with_queue {
            let queue = sealwatch_jobs::Queue::open(store.connection())
                .await
                .expect("job queue");
            state = state.with_queue(queue);
        }
        let server = sealwatch_api::server(listener, state).expect("start the API");
        let handle = server.handle();
        tokio::spawn(server);
        ApiServer { addr, handle }
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// A token for tests (what `sealwatch admin create-token` does).
pub async fn token(store: &Store, role: Role, tenant_id: Option<i64>) -> String {
    sealwatch_api::auth::issue_token(store, &format!("test {}", role.as_str()), role, tenant_id)
        .await
        .expect("issue token")
        .1
}

/// The domain-ownership token the test zones publish at `_sealwatch.<domain>` for
/// `perfect.test`, `no-dmarc.test` and `rua-elsewhere.test` (tests/servers/dns).
pub const OWNERSHIP_TOKEN: &str = "5ea1c0de5ea1c0de5ea1c0de5ea1c0de";

/// Gives a tenant the token the test zones publish, as if it had been made for it and
/// published by the domain's owner (the API makes a random one otherwise).
pub async fn own_test_zones(store: &Store, tenant_id: i64) {
    let token = store
        .tenant_verification_token(sealwatch_store::Scope::All, tenant_id, OWNERSHIP_TOKEN)
        .await
        .expect("ownership token");
    assert_eq!(token, OWNERSHIP_TOKEN, "the tenant had a token already");
}
