//! A closed-loop HTTP/1.1 load generator, for what Debian's wrk 4.1 cannot do: `HEAD` (its
//! parser waits for the body a HEAD response announces but never sends, wg/wrk#198).
//!
//!     loadgen -c CONNECTIONS (-d SECONDS | -n REQUESTS) [-m METHOD] [-H 'Name: value']...
//!             [--timeout S] URL
//!
//! One thread per keep-alive connection, each sending a request as soon as the previous
//! answer is complete (as wrk does), for SECONDS or until REQUESTS requests in all were sent
//! (with both, whichever comes first; `-n` alone stops after 300 s at the latest). Prints wrk-like `key=value` lines: requests, seconds,
//! rps, p50/p75/p90/p99 latency in ms, status classes, socket errors. Plain `http://` only.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::exit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

struct Args {
    connections: usize,
    seconds: f64,
    requests: Option<u64>,
    method: String,
    headers: Vec<String>,
    timeout: f64,
    url: String,
}

fn usage() -> ! {
    eprintln!("usage: loadgen -c CONNECTIONS (-d SECONDS | -n REQUESTS) [-m METHOD] [-H 'Name: value']... [--timeout S] http://HOST:PORT/PATH");
    exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        connections: 8,
        seconds: f64::NAN,
        requests: None,
        method: "GET".into(),
        headers: vec![],
        timeout: 5.0,
        url: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "-c" => a.connections = val().parse().unwrap_or_else(|_| usage()),
            "-d" => {
                a.seconds = val()
                    .trim_end_matches('s')
                    .parse()
                    .unwrap_or_else(|_| usage())
            }
            "-n" => a.requests = Some(val().parse().unwrap_or_else(|_| usage())),
            "-m" => a.method = val(),
            "-H" => a.headers.push(val()),
            "--timeout" => {
                a.timeout = val()
                    .trim_end_matches('s')
                    .parse()
                    .unwrap_or_else(|_| usage())
            }
            "-h" | "--help" => usage(),
            _ if a.url.is_empty() && !arg.starts_with('-') => a.url = arg,
            _ => usage(),
        }
    }
    if a.seconds.is_nan() {
        a.seconds = if a.requests.is_some() { 300.0 } else { 10.0 };
    }
    if a.url.is_empty() || a.connections == 0 || a.seconds <= 0.0 || a.requests == Some(0) {
        usage();
    }
    a
}

/// `http://host[:port]/path?query` -> ("host:port", "host[:port]", "/path?query")
fn split_url(url: &str) -> (String, String, String) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| {
        eprintln!("loadgen: only http:// URLs: {url}");
        exit(2)
    });
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    (addr, authority.to_string(), path.to_string())
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    status: [u64; 6], // index = status / 100
    errors: u64,
    bytes: u64,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    len: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    fn open(addr: &std::net::SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Conn {
            stream,
            buf: vec![0; 64 * 1024],
            len: 0,
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.len..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.len += n;
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Skips `n` body bytes, reading as needed.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let have = (self.len as u64).min(n);
            self.consume(have as usize);
            n -= have;
            if n == 0 {
                return Ok(());
            }
            self.fill()?;
        }
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf[..self.len], b"\r\n") {
                let s = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.consume(i + 2);
                return Ok(s);
            }
            self.fill()?;
        }
    }

    /// Reads one response; returns (status, body bytes, keep-alive).
    fn response(&mut self, head_request: bool) -> io::Result<(u16, u64, bool)> {
        let end = loop {
            if let Some(i) = find(&self.buf[..self.len], b"\r\n\r\n") {
                break i;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.consume(end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad status line");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let (mut length, mut chunked, mut close) =
            (None::<u64>, false, status_line.starts_with("HTTP/1.0"));
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v.contains("close") || (close && !v.contains("keep-alive")),
                _ => {}
            }
        }
        let no_body = head_request || status / 100 == 1 || status == 204 || status == 304;
        let mut body = 0u64;
        if no_body {
        } else if chunked {
            loop {
                let size_line = self.line()?;
                let size =
                    u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| {
                            io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                        })?;
                if size == 0 {
                    while !self.line()?.is_empty() {} // trailers
                    break;
                }
                self.skip(size)?;
                body += size;
                if !self.line()?.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk end"));
                }
            }
        } else if let Some(n) = length {
            self.skip(n)?;
            body = n;
        } else {
            // body until the connection closes
            loop {
                body += self.len as u64;
                self.len = 0;
                match self.fill() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            close = true;
        }
        Ok((status, body, !close))
    }
}

fn worker(
    addr: std::net::SocketAddr,
    request: Arc<Vec<u8>>,
    head: bool,
    timeout: Duration,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    budget: Option<(u64, Arc<AtomicU64>)>,
) -> Stats {
    let mut st = Stats {
        latencies_us: Vec::with_capacity(1 << 16),
        ..Default::default()
    };
    let mut conn: Option<Conn> = None;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        // one request (or failed connection attempt) of the budget
        if let Some((limit, sent)) = &budget {
            if sent.fetch_add(1, Ordering::Relaxed) >= *limit {
                break;
            }
        }
        if conn.is_none() {
            match Conn::open(&addr, timeout) {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    st.errors += 1;
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let c = conn.as_mut().unwrap();
        let t0 = Instant::now();
        let result = c.stream.write_all(&request).and_then(|_| c.response(head));
        match result {
            Ok((status, body, keep)) => {
                let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                st.latencies_us.push(us);
                st.status[(status / 100).min(5) as usize] += 1;
                st.bytes += body;
                if !keep {
                    conn = None;
                }
            }
            Err(_) => {
                st.errors += 1;
                conn = None;
            }
        }
    }
    st
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    let a = parse_args();
    let (addr_s, authority, path) = split_url(&a.url);
    let addr = addr_s
        .to_socket_addrs()
        .ok()
        .and_then(|mut i| i.next())
        .unwrap_or_else(|| {
            eprintln!("loadgen: cannot resolve {addr_s}");
            exit(2)
        });
    let mut req = format!("{} {} HTTP/1.1\r\n", a.method, path);
    if !a
        .headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        req.push_str(&format!("Host: {authority}\r\n"));
    }
    for h in &a.headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let request = Arc::new(req.into_bytes());
    let head = a.method.eq_ignore_ascii_case("HEAD");
    let timeout = Duration::from_secs_f64(a.timeout);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let sent = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..a.connections)
        .map(|_| {
            let (request, stop) = (request.clone(), stop.clone());
            let budget = a.requests.map(|n| (n, sent.clone()));
            thread::spawn(move || worker(addr, request, head, timeout, deadline, stop, budget))
        })
        .collect();
    let mut total = Stats::default();
    for h in handles {
        let s = h.join().expect("worker thread panicked");
        total.latencies_us.extend_from_slice(&s.latencies_us);
        for i in 0..6 {
            total.status[i] += s.status[i];
        }
        total.errors += s.errors;
        total.bytes += s.bytes;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut lat = total.latencies_us;
    lat.sort_unstable();
    let n = lat.len();
    println!("requests={n}");
    println!("seconds={secs:.3}");
    println!("rps={:.2}", n as f64 / secs);
    for p in [50.0, 75.0, 90.0, 99.0] {
        println!("p{}_ms={:.3}", p as u32, pct(&lat, p));
    }
    println!("status_1xx={}", total.status[1]);
    println!("status_2xx={}", total.status[2]);
    println!("status_3xx={}", total.status[3]);
    println!("status_4xx={}", total.status[4]);
    println!("status_5xx={}", total.status[5]);
    println!("socket_errors={}", total.errors);
    println!("body_bytes={}", total.bytes);
}
