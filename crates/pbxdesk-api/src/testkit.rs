//! Test doubles of the API crate (feature `testkit`; the app and the CLI never enable it): a
//! static folder served over HTTPS on loopback, under a CA made for the test, standing in for
//! an update server.

#![allow(clippy::unwrap_used, clippy::panic)] // test doubles fail loudly by design

use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Files by name at `https://localhost:PORT/NAME`, changeable while it serves.
pub struct StaticHttps {
    files: Files,
    port: u16,
    ca_pem: Vec<u8>,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

impl StaticHttps {
    /// Starts serving on a free port of 127.0.0.1 (on the current tokio runtime).
    pub async fn start() -> StaticHttps {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pbxdesk test CA");
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let files: Files = Arc::default();
        let app = axum::Router::new()
            .route(
                "/{file}",
                axum::routing::get(
                    |State(f): State<Files>, Path(name): Path<String>| async move {
                        match f.lock().unwrap().get(&name) {
                            Some(b) => (StatusCode::OK, b.clone()),
                            None => (StatusCode::NOT_FOUND, Vec::new()),
                        }
                    },
                ),
            )
            .with_state(files.clone());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem(
            leaf.pem().into_bytes(),
            leaf_key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, config)
            .unwrap()
            .handle(handle.clone());
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        StaticHttps {
            files,
            port,
            ca_pem: ca.pem().into_bytes(),
            handle,
        }
    }

    /// Serves `body` as `name` from now on.
    pub fn put(&self, name: &str, body: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(name.to_owned(), body.to_vec());
    }

    pub fn url(&self, name: &str) -> String {
        format!("https://localhost:{}/{name}", self.port)
    }

    /// The CA's certificate (PEM) a client must trust.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// Stops serving (connections refused from now on).
    pub async fn stop(&self) {
        self.handle.shutdown();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
