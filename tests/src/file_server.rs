//! A static file server on a free loopback port, standing in for a Helm
//! HTTP chart repository (`index.yaml` and `.tgz` files) in tests. It serves
//! GET and HEAD for files under its root, 404 for anything else, and counts
//! the requests it answered. HTTP is `tiny_http`'s.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tiny_http::{Header, Method, Response};

use crate::http_server::HttpServer;

/// A running file server, stopped on drop.
pub struct FileServer {
    http: HttpServer,
    requests: Arc<AtomicUsize>,
}

impl FileServer {
    /// Serves `root` on `127.0.0.1:<free port>`.
    pub fn start(root: &Path) -> FileServer {
        let requests = Arc::new(AtomicUsize::new(0));
        let (root, r) = (root.to_path_buf(), requests.clone());
        let http = HttpServer::start(move |request| {
            r.fetch_add(1, Ordering::Relaxed);
            let path = request.url().split('?').next().unwrap_or("/");
            let file = resolve(&root, path).filter(|p| p.is_file());
            let wanted = matches!(request.method(), Method::Get | Method::Head);
            let _ = match file.map(std::fs::File::open) {
                Some(Ok(f)) if wanted => request.respond(
                    Response::from_file(f).with_header(
                        Header::from_bytes("Content-Type", "application/octet-stream")
                            .expect("a valid header"),
                    ),
                ),
                _ => request.respond(Response::from_string("not found").with_status_code(404)),
            };
        });
        FileServer { http, requests }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http.addr())
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The file `path` names under `root`, refusing `..`.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}
