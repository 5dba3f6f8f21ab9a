//! A static file server on a free loopback port, standing in for a Helm
//! HTTP chart repository (`index.yaml` and `.tgz` files) in tests. It serves
//! GET and HEAD for files under its root, 404 for anything else, one
//! connection per thread, and counts the requests it answered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running file server, stopped on drop.
pub struct FileServer {
    addr: String,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

impl FileServer {
    /// Serves `root` on `127.0.0.1:<free port>`.
    pub fn start(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr").to_string();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (root, s, r) = (root.to_path_buf(), stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (root, r) = (root.clone(), r.clone());
                        std::thread::spawn(move || {
                            let _ = serve(conn, &root, &r);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FileServer {
            addr,
            stop,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(conn: TcpStream, root: &Path, count: &AtomicUsize) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        count.fetch_add(1, Ordering::Relaxed);
        let path = target.split('?').next().unwrap_or("/");
        match resolve(root, path).filter(|p| p.is_file()) {
            Some(file) if method == "GET" || method == "HEAD" => {
                let mut bytes = Vec::new();
                std::fs::File::open(&file)?.read_to_end(&mut bytes)?;
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    bytes.len()
                )?;
                if method == "GET" {
                    out.write_all(&bytes)?;
                }
            }
            _ => {
                out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")?;
            }
        }
        out.flush()?;
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
