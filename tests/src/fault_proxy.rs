//! A loopback HTTP proxy that injects faults between a client and a real
//! registry: error statuses (with or without `Retry-After`), dropped and
//! reset connections, stalls, truncated requests and responses, and bytes
//! flipped in either direction, chosen per request by a schedule. Each
//! connection carries one request (`Connection: close`), which keeps the
//! proxy simple and the faults exact.
//!
//! Requests may be routed to more than one upstream by path prefix
//! ([`FaultProxy::route`]), and text in response heads rewritten
//! ([`FaultProxy::rewrite_heads`]): a registry's bearer challenge can then
//! name the proxy as its token service, so the token requests pass through
//! the proxy (and its faults) too.
//!
//! ```no_run
//! use airgap_e2e::fault_proxy::{nth_matching, Fault, FaultProxy};
//! // The second blob upload is answered 503 once; everything else passes.
//! let proxy = FaultProxy::start(
//!     "127.0.0.1:5000",
//!     nth_matching(|m, p| m == "PUT" && p.contains("/blobs/uploads/"), 1, 1, Fault::Status(503)),
//! );
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    Pass,
    /// Answer with this status without forwarding, no `Retry-After`.
    Status(u16),
    /// Answer with this status and `Retry-After: SECONDS` without forwarding.
    RetryAfter(u16, u32),
    /// Read the request head, then close the connection (FIN) without an
    /// answer: the client sees the connection closed before any response.
    Drop,
    /// Read half of the request body, then reset the connection (RST,
    /// `SO_LINGER` 0) without forwarding anything.
    Reset,
    /// Wait, then forward.
    Stall(Duration),
    /// Forward, but drop the connection after this many bytes of the
    /// response (head included): a download broken part-way.
    Cut(u64),
    /// Forward, but drop the connection after the response's head and
    /// this many bytes of its body.
    CutBody(u64),
    /// Forward the request head and this many bytes of its body upstream,
    /// then drop both connections: the registry sees an upload cut off.
    CutRequest(u64),
    /// Forward, flipping every bit of the response body's byte at this
    /// offset (the last byte when the body is shorter; nothing without a
    /// body).
    FlipResponse(u64),
    /// Forward, flipping every bit of the request body's byte at this
    /// offset (the last byte when the body is shorter; nothing without a
    /// body).
    FlipRequest(u64),
}

/// Decides the fault for request number `n` (from 0) with this method and path.
pub type Schedule = dyn Fn(usize, &str, &str) -> Fault + Send + Sync;

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The method.
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The fault applied.
    pub fault: Fault,
    /// The status the upstream answered, when the request reached it and
    /// its answer's head came back.
    pub upstream_status: Option<u16>,
}

/// A schedule that applies `fault` to the requests matching `matches`
/// (method, path) from the `skip`-th such request (counted from 0), `times`
/// times (`usize::MAX`: every one), and passes everything else.
pub fn nth_matching(
    matches: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    skip: usize,
    times: usize,
    fault: Fault,
) -> Box<Schedule> {
    let seen = AtomicUsize::new(0);
    Box::new(move |_, method, path| {
        if !matches(method, path) {
            return Fault::Pass;
        }
        let i = seen.fetch_add(1, Ordering::SeqCst);
        if i >= skip && i - skip < times {
            fault
        } else {
            Fault::Pass
        }
    })
}

/// Where requests go and what is changed on the way.
struct Config {
    schedule: Arc<Schedule>,
    /// (path prefix, upstream), first match wins; else the default upstream.
    routes: Vec<(String, String)>,
    /// (from, to) replacements in response heads.
    rewrites: Vec<(String, String)>,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    log: Arc<Mutex<Vec<Entry>>>,
    config: Arc<Mutex<Config>>,
    counter: Arc<AtomicUsize>,
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
        let config = Arc::new(Mutex::new(Config {
            schedule: Arc::from(schedule),
            routes: Vec::new(),
            rewrites: Vec::new(),
        }));
        let upstream = upstream.to_string();
        let (stop2, log2, config2, counter2) =
            (stop.clone(), log.clone(), config.clone(), counter.clone());
        let handle = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (up, config, log, counter) = (
                            upstream.clone(),
                            config2.clone(),
                            log2.clone(),
                            counter2.clone(),
                        );
                        std::thread::spawn(move || {
                            let _ = serve(conn, &up, &config, &log, &counter);
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
            config,
            counter,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Every request seen: method, path and the fault applied.
    pub fn requests(&self) -> Vec<(String, String, Fault)> {
        self.entries()
            .into_iter()
            .map(|e| (e.method, e.path, e.fault))
            .collect()
    }

    /// Every request seen, with the upstream's status.
    pub fn entries(&self) -> Vec<Entry> {
        self.log.lock().expect("lock").clone()
    }

    /// Replaces the schedule, forgets the requests seen and counts them
    /// from 0 again.
    pub fn set_schedule(&self, schedule: Box<Schedule>) {
        self.config.lock().expect("lock").schedule = Arc::from(schedule);
        self.log.lock().expect("lock").clear();
        self.counter.store(0, Ordering::SeqCst);
    }

    /// Sends requests whose path starts with `prefix` to `upstream`
    /// (`host:port`) instead of the default upstream.
    pub fn route(&self, prefix: &str, upstream: &str) {
        self.config
            .lock()
            .expect("lock")
            .routes
            .push((prefix.to_string(), upstream.to_string()));
    }

    /// Replaces `from` with `to` in every response head (status line and
    /// headers; bodies are never rewritten).
    pub fn rewrite_heads(&self, from: &str, to: &str) {
        self.config
            .lock()
            .expect("lock")
            .rewrites
            .push((from.to_string(), to.to_string()));
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

/// Reads up to and including the blank line that ends an HTTP head,
/// one byte at a time (so nothing of the body is consumed), at most 64 KiB.
fn read_head(conn: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    Ok(Some(head))
}

/// Closes with a TCP reset instead of an orderly shutdown.
fn reset(conn: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(conn);
}

/// Copies exactly `len` bytes, flipping the byte at `flip` (clamped to the
/// last one) when given.
fn copy_flipping(
    from: &mut impl Read,
    to: &mut impl Write,
    len: Option<u64>,
    flip: Option<u64>,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut done = 0u64;
    let flip_at = match (flip, len) {
        (Some(at), Some(len)) if len > 0 => Some(at.min(len - 1)),
        (Some(at), None) => Some(at),
        _ => None,
    };
    loop {
        let want = match len {
            Some(len) if done >= len => break,
            Some(len) => ((len - done) as usize).min(buf.len()),
            None => buf.len(),
        };
        let n = from.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if let Some(at) = flip_at {
            if at >= done && at < done + n as u64 {
                buf[(at - done) as usize] ^= 0xff;
            }
        }
        to.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(done)
}

/// The length of a response's body: none for HEAD, 1xx, 204 and 304,
/// else its Content-Length; `None` (read to the end) without one.
fn response_body_len(method: &str, status: Option<u16>, head: &str) -> Option<u64> {
    if method == "HEAD" || matches!(status, Some(100..=199 | 204 | 304)) {
        return Some(0);
    }
    head.split("\r\n").find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<u64>().ok())
    })
}

fn serve(
    mut conn: TcpStream,
    default_upstream: &str,
    config: &Mutex<Config>,
    log: &Mutex<Vec<Entry>>,
    counter: &AtomicUsize,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some(head) = read_head(&mut conn)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0u64;
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
    let (schedule, upstream, rewrites) = {
        let c = config.lock().expect("lock");
        let upstream = c
            .routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| default_upstream.to_string());
        (c.schedule.clone(), upstream, c.rewrites.clone())
    };
    let fault = schedule(n, &method, &path);
    let index = {
        let mut l = log.lock().expect("lock");
        l.push(Entry {
            method: method.clone(),
            path: path.clone(),
            fault,
            upstream_status: None,
        });
        l.len() - 1
    };
    match fault {
        Fault::Drop => {
            let _ = conn.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fault::Reset => {
            let mut part = vec![0u8; (length / 2) as usize];
            let _ = conn.read_exact(&mut part);
            reset(conn);
            return Ok(());
        }
        Fault::Status(code) | Fault::RetryAfter(code, _) => {
            std::io::copy(&mut (&mut conn).take(length), &mut std::io::sink())?;
            let retry_after = match fault {
                Fault::RetryAfter(_, secs) => format!("Retry-After: {secs}\r\n"),
                _ => String::new(),
            };
            let reply = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\n{retry_after}Connection: close\r\n\r\n"
            );
            conn.write_all(reply.as_bytes())?;
            let _ = conn.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fault::Stall(d) => std::thread::sleep(d),
        _ => {}
    }
    let mut up = TcpStream::connect(&upstream)?;
    let new_head = format!("{}\r\n\r\n", kept.join("\r\n"));
    up.write_all(new_head.as_bytes())?;
    match fault {
        Fault::CutRequest(k) => {
            copy_flipping(&mut conn, &mut up, Some(k.min(length)), None)?;
            // Let the registry read what was sent before the cut.
            std::thread::sleep(Duration::from_millis(50));
            reset(up);
            reset(conn);
            return Ok(());
        }
        Fault::FlipRequest(at) => {
            copy_flipping(&mut conn, &mut up, Some(length), Some(at))?;
        }
        _ => {
            copy_flipping(&mut conn, &mut up, Some(length), None)?;
        }
    }
    // The response: its head (rewritten if asked), then the body.
    let Some(resp_head) = read_head(&mut up)? else {
        let _ = conn.shutdown(Shutdown::Both);
        return Ok(());
    };
    let mut resp_text = String::from_utf8_lossy(&resp_head).into_owned();
    for (from, to) in &rewrites {
        resp_text = resp_text.replace(from, to);
    }
    let status = resp_text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    log.lock().expect("lock")[index].upstream_status = status;
    // Servers that keep the connection open despite `Connection: close`
    // (the test token server) end the body where Content-Length says.
    let body_len = response_body_len(&method, status, &resp_text);
    let resp_head = resp_text.into_bytes();
    match fault {
        Fault::Cut(k) => {
            let head_part = (k as usize).min(resp_head.len());
            conn.write_all(&resp_head[..head_part])?;
            let rest = k.saturating_sub(resp_head.len() as u64);
            let rest = body_len.map_or(rest, |l| l.min(rest));
            copy_flipping(&mut up, &mut conn, Some(rest), None)?;
        }
        Fault::CutBody(k) => {
            conn.write_all(&resp_head)?;
            let rest = body_len.map_or(k, |l| l.min(k));
            copy_flipping(&mut up, &mut conn, Some(rest), None)?;
            reset(conn);
            return Ok(());
        }
        Fault::FlipResponse(at) => {
            conn.write_all(&resp_head)?;
            copy_flipping(&mut up, &mut conn, body_len, Some(at))?;
        }
        _ => {
            conn.write_all(&resp_head)?;
            copy_flipping(&mut up, &mut conn, body_len, None)?;
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}
