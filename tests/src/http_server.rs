//! A `tiny_http` server on a free loopback port, answering each request
//! with a handler on one thread, and stopped (the thread joined) on drop:
//! what the chart repository and the token server share.

use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Request, Server};

/// A running server.
pub struct HttpServer {
    addr: String,
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves on `127.0.0.1:<free port>`, passing every request to `handle`.
    pub fn start(handle: impl Fn(Request) + Send + 'static) -> HttpServer {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind a loopback port"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("an IP listener")
            .to_string();
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            for request in s.incoming_requests() {
                handle(request);
            }
        });
        HttpServer {
            addr,
            server,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
