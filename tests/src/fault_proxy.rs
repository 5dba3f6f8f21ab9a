//! A loopback HTTP proxy that injects faults between a client and a real
//! registry: error statuses, connection resets and stalls, chosen per
//! request by a schedule. Each connection carries one request
//! (`Connection: close`), which keeps the proxy simple and the faults exact.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    Pass,
    /// Answer with this status without forwarding.
    Status(u16),
    /// Read part of the request, then drop the connection.
    Reset,
    /// Wait, then forward.
    Stall(Duration),
    /// Forward, but drop the connection after this many bytes of the
    /// response (head included): a download broken part-way.
    Cut(u64),
}

/// Decides the fault for request number `n` (from 0) with this method and path.
pub type Schedule = dyn Fn(usize, &str, &str) -> Fault + Send + Sync;

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    log: Arc<Mutex<Vec<(String, String, Fault)>>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`host:port`) on a free loopback port.
    pub fn start(upstream: &str, schedule: Box<Schedule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let counter = Arc::new(AtomicUsize::new(0));
        let schedule: Arc<Schedule> = Arc::from(schedule);
        let upstream = upstream.to_string();
        let (stop2, log2) = (stop.clone(), log.clone());
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (up, sched, log, counter) = (
                            upstream.clone(),
                            schedule.clone(),
                            log2.clone(),
                            counter.clone(),
                        );
                        std::thread::spawn(move || {
                            let _ = serve(conn, &up, &*sched, &log, &counter);
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        FaultProxy {
            addr,
            stop,
            handle: Some(handle),
            log,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Every request seen: method, path and the fault applied.
    pub fn requests(&self) -> Vec<(String, String, Fault)> {
        self.log.lock().expect("lock").clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    mut conn: TcpStream,
    upstream: &str,
    schedule: &Schedule,
    log: &Mutex<Vec<(String, String, Fault)>>,
    counter: &AtomicUsize,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    // Request head, bounded.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    let mut kept = vec![request_line.clone()];
    for l in lines.filter(|l| !l.is_empty()) {
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            kept.push(l.to_string());
        }
    }
    kept.push("Connection: close".into());
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let fault = schedule(n, &method, &path);
    log.lock()
        .expect("lock")
        .push((method.clone(), path.clone(), fault));
    match fault {
        Fault::Reset => {
            let mut part = vec![0u8; length / 2];
            let _ = conn.read_exact(&mut part);
            let _ = conn.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fault::Status(code) => {
            let mut body = vec![0u8; length];
            conn.read_exact(&mut body)?;
            let reply = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nRetry-After: 0\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(reply.as_bytes())?;
            return Ok(());
        }
        Fault::Stall(d) => std::thread::sleep(d),
        Fault::Pass | Fault::Cut(_) => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    let new_head = format!("{}\r\n\r\n", kept.join("\r\n"));
    up.write_all(new_head.as_bytes())?;
    let mut body = (&mut conn).take(length as u64);
    std::io::copy(&mut body, &mut up)?;
    match fault {
        Fault::Cut(n) => {
            std::io::copy(&mut (&mut up).take(n), &mut conn)?;
        }
        _ => {
            std::io::copy(&mut up, &mut conn)?;
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}
