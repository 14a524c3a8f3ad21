//! Load client of the relay fan-out benchmark.
//!
//! Opens `--conns` subscriber connections to a protocol v1 server (the relay, or the Node `ws`
//! broadcast server of bench/fanout/node-server.mjs, which speaks the same frames), subscribes each
//! to one channel, measures the server's RSS before and after (memory per idle connection), then
//! publishes from one more connection and measures, at the subscribers, delivered events per second
//! and the publish→delivery latency (each event carries its send time; sender and receivers share
//! this process's monotonic clock).
//!
//! Modes: `--window W` (saturation: at most W events in flight, counted over all subscribers) or
//! `--rate R` (paced: R publishes per second). Prints one JSON object on stdout.
//!
//! Several servers (bench/cluster: relay nodes sharing a Redis): `--url` takes a comma-separated
//! list and the subscribers are spread over it round-robin; the publisher connects to
//! `--publish-url` (the first URL by default; `--publishers K` opens K publisher connections
//! there and sends publish i on connection i % K); `--server-pid` takes a list too (RSS and CPU are
//! summed). `--redis HOST:PORT` reads Redis's `INFO` at the start and the end of the measured
//! window (returned as text, for the caller to compare).

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

static START: OnceLock<Instant> = OnceLock::new();
fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

struct Opts {
    urls: Vec<String>,
    publish_url: Option<String>,
    redis: Option<String>,
    conns: usize,
    channel: String,
    duration_s: f64,
    warmup_s: f64,
    window: u64,
    rate: f64,
    server_pids: Vec<u32>,
    publishers: usize,
    connect_concurrency: usize,
    threads: usize,
    idle_settle_ms: u64,
}

fn parse() -> Opts {
    let mut o = Opts {
        urls: vec!["ws://127.0.0.1:8787/ws".into()],
        publish_url: None,
        redis: None,
        conns: 100,
        channel: "bench".into(),
        duration_s: 5.0,
        warmup_s: 1.0,
        window: 16,
        rate: 0.0,
        server_pids: Vec::new(),
        publishers: 1,
        connect_concurrency: 200,
        threads: 2,
        idle_settle_ms: 1000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--url" => o.urls = v.split(',').map(str::to_owned).collect(),
            "--publish-url" => o.publish_url = Some(v),
            "--publishers" => o.publishers = v.parse().expect("--publishers"),
            "--redis" => o.redis = Some(v),
            "--conns" => o.conns = v.parse().expect("--conns"),
            "--channel" => o.channel = v,
            "--duration-s" => o.duration_s = v.parse().expect("--duration-s"),
            "--warmup-s" => o.warmup_s = v.parse().expect("--warmup-s"),
            "--window" => o.window = v.parse().expect("--window"),
            "--rate" => o.rate = v.parse().expect("--rate"),
            "--server-pid" => o.server_pids = v.split(',').map(|p| p.parse().expect("--server-pid")).collect(),
            "--connect-concurrency" => o.connect_concurrency = v.parse().expect("--connect-concurrency"),
            "--threads" => o.threads = v.parse().expect("--threads"),
            "--idle-settle-ms" => o.idle_settle_ms = v.parse().expect("--idle-settle-ms"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    o
}

/// Resident set size of a process in KiB (VmRSS).
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU seconds of a process (or of this one, with `self`).
fn cpu_s(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The number after the first `key` (e.g. `"t":`) in a frame, if any.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// The send time the publisher put in an event's payload.
fn stamp(text: &str) -> Option<u64> {
    number_after(text, "\"t\":")
}

/// Redis's `INFO` (the sections asked for), over a fresh connection (one inline command).
async fn redis_info(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect to Redis");
    s.write_all(b"INFO commandstats cpu memory stats\r\n").await.expect("INFO");
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 16 * 1024];
        let n = s.read(&mut chunk).await.expect("read INFO");
        assert!(n > 0, "Redis closed the connection during INFO");
        buf.extend_from_slice(&chunk[..n]);
        // `$<len>\r\n<body>\r\n`
        if let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
            let len: usize = std::str::from_utf8(&buf[1..eol]).ok().and_then(|l| l.parse().ok()).expect("INFO reply");
            if buf.len() >= eol + 2 + len {
                return String::from_utf8_lossy(&buf[eol + 2..eol + 2 + len]).into_owned();
            }
        }
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Shared {
    delivered: AtomicU64,
    measuring: AtomicBool,
    publisher_waiting: AtomicBool,
    progress: Notify,
    problems: AtomicU64,
    /// Events whose seq was not the subscriber's previous one + 1, and the seqs skipped over.
    seq_gaps: AtomicU64,
    seq_skipped: AtomicU64,
}

async fn connect(url: &str) -> Ws {
    let mut tries = 0;
    loop {
        match tokio_tungstenite::connect_async_with_config(url, None, true).await {
            Ok((ws, _)) => return ws,
            Err(e) => {
                tries += 1;
                if tries > 20 {
                    panic!("cannot connect to {url}: {e}");
                }
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
        }
    }
}

/// Reads frames until one contains `needle`; answers protocol pings on the way.
async fn wait_for(ws: &mut Ws, needle: &str) {
    while let Some(msg) = ws.next().await {
        if let Ok(Message::Text(t)) = msg {
            if t.as_str().contains(needle) {
                return;
            }
            if t.as_str().contains("\"op\":\"ping\"") {
                let _ = ws.send(Message::text("{\"op\":\"pong\"}")).await;
            }
        }
    }
    panic!("connection closed while waiting for {needle}");
}

/// A minimal WebSocket client for the subscribers: a hand-written upgrade and frame reader over a
/// tokio `TcpStream` (server frames are unmasked; text, ping and close are handled), so that the
/// load client spends as little CPU per delivered frame as possible and the servers stay the
/// bottleneck. The publisher uses tokio-tungstenite.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl RawWs {
    async fn connect(url: &str) -> std::io::Result<RawWs> {
        let rest = url.strip_prefix("ws://").expect("ws:// URL");
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let mut ws = RawWs { stream, buf: Vec::with_capacity(16 * 1024), start: 0 };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: wlp.v1\r\n\r\n"
        );
        ws.stream.write_all(request.as_bytes()).await?;
        loop {
            if let Some(end) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                if !ws.buf.starts_with(b"HTTP/1.1 101") {
                    return Err(std::io::Error::other(String::from_utf8_lossy(&ws.buf).into_owned()));
                }
                ws.start = end + 4;
                return Ok(ws);
            }
            ws.fill().await?;
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 8 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        if self.buf.capacity() - len < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let cap = self.buf.capacity();
        self.buf.resize(cap, 0);
        let n = self.stream.read(&mut self.buf[len..]).await?;
        self.buf.truncate(len + n);
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// The next complete frame: (opcode, payload range in `buf`).
    fn frame(&self) -> Option<(u8, std::ops::Range<usize>)> {
        let b = &self.buf[self.start..];
        if b.len() < 2 {
            return None;
        }
        let (len, head) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < head + len {
            return None;
        }
        Some((b[0] & 0x0f, self.start + head..self.start + head + len))
    }

    /// Sends a masked (key 0) frame.
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut f = Vec::with_capacity(payload.len() + 8);
        f.push(0x80 | opcode);
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        self.stream.write_all(&f).await
    }

    /// Reads frames until a text frame containing `needle`.
    async fn wait_for(&mut self, needle: &str) -> std::io::Result<()> {
        loop {
            while let Some((op, range)) = self.frame() {
                self.start = range.end;
                let text = std::str::from_utf8(&self.buf[range]).unwrap_or("");
                if op == 1 && text.contains(needle) {
                    return Ok(());
                }
            }
            self.fill().await?;
        }
    }
}

async fn subscriber(mut ws: RawWs, shared: Arc<Shared>, mut stop: watch::Receiver<bool>, out: mpsc::UnboundedSender<(u64, Vec<u32>)>) {
    let mut lat: Vec<u32> = Vec::new();
    let mut events: u64 = 0;
    let mut last_seq: Option<u64> = None;
    'outer: loop {
        let mut pongs = 0;
        while let Some((op, range)) = ws.frame() {
            ws.start = range.end;
            let text = std::str::from_utf8(&ws.buf[range]).unwrap_or("");
            match op {
                1 if text.starts_with("{\"op\":\"event\"") => {
                    shared.delivered.fetch_add(1, Relaxed);
                    events += 1;
                    if let Some(seq) = number_after(text, "\"seq\":") {
                        if let Some(last) = last_seq.filter(|&last| seq != last + 1) {
                            shared.seq_gaps.fetch_add(1, Relaxed);
                            shared.seq_skipped.fetch_add(seq.saturating_sub(last + 1), Relaxed);
                        }
                        last_seq = Some(seq);
                    }
                    if shared.measuring.load(Relaxed) {
                        if let Some(sent) = stamp(text) {
                            lat.push(now_us().saturating_sub(sent).min(u32::MAX as u64) as u32);
                        }
                    }
                    if shared.publisher_waiting.load(Relaxed) {
                        shared.progress.notify_one();
                    }
                }
                1 if text.contains("\"op\":\"ping\"") => pongs += 1,
                1 if text.contains("\"op\":\"error\"") => {
                    shared.problems.fetch_add(1, Relaxed);
                    eprintln!("server error frame: {text}");
                }
                8 => {
                    shared.problems.fetch_add(1, Relaxed);
                    break 'outer;
                }
                _ => {}
            }
        }
        for _ in 0..pongs {
            if ws.send(1, b"{\"op\":\"pong\"}").await.is_err() {
                break 'outer;
            }
        }
        tokio::select! {
            r = ws.fill() => if r.is_err() {
                if !*stop.borrow() {
                    shared.problems.fetch_add(1, Relaxed);
                }
                break;
            },
            _ = stop.changed() => break,
        }
    }
    let _ = out.send((events, lat));
    let _ = ws.send(8, &[0x03, 0xe8]).await;
}

fn pct(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let o = parse();
    START.get_or_init(Instant::now);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(o));
}

async fn run(o: Opts) {
    let shared = Arc::new(Shared {
        delivered: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        publisher_waiting: AtomicBool::new(false),
        progress: Notify::new(),
        problems: AtomicU64::new(0),
        seq_gaps: AtomicU64::new(0),
        seq_skipped: AtomicU64::new(0),
    });
    let rss = |pids: &[u32]| pids.iter().map(|&p| rss_kib(p).unwrap_or(0)).sum::<u64>();
    let rss0 = rss(&o.server_pids);

    // Subscribers.
    let t_connect = Instant::now();
    let sem = Arc::new(Semaphore::new(o.connect_concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel();
    let subscribe = format!("{{\"op\":\"subscribe\",\"channels\":[{{\"channel\":\"{}\"}}]}}", o.channel);
    let mut ready = Vec::with_capacity(o.conns);
    for i in 0..o.conns {
        let permit = Arc::clone(&sem).acquire_owned().await.expect("semaphore");
        let url = o.urls[i % o.urls.len()].clone();
        let (sub, shared, stop, out) = (subscribe.clone(), Arc::clone(&shared), stop_rx.clone(), lat_tx.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(ready_rx);
        tokio::spawn(async move {
            let mut tries = 0;
            let mut ws = loop {
                match RawWs::connect(&url).await {
                    Ok(ws) => break ws,
                    Err(e) if tries < 20 => {
                        tries += 1;
                        eprintln!("connect failed ({e}); retrying");
                        tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                    }
                    Err(e) => panic!("cannot connect to {url}: {e}"),
                }
            };
            ws.wait_for("\"op\":\"hello\"").await.expect("hello");
            ws.send(1, sub.as_bytes()).await.expect("send subscribe");
            ws.wait_for("\"op\":\"subscribed\"").await.expect("subscribed");
            drop(permit);
            let _ = ready_tx.send(());
            subscriber(ws, shared, stop, out).await;
        });
    }
    drop(lat_tx);
    for r in ready {
        r.await.expect("a subscriber failed to start");
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(o.idle_settle_ms)).await;
    let rss_idle = rss(&o.server_pids);
    let rss_idle_each: Vec<u64> = o.server_pids.iter().map(|&p| rss_kib(p).unwrap_or(0)).collect();

    // Publishers (one by default; with several, publish i goes to connection i % publishers).
    let acks = Arc::new(AtomicU64::new(0));
    let mut pub_txs = Vec::with_capacity(o.publishers);
    for _ in 0..o.publishers.max(1) {
        let mut publisher = connect(o.publish_url.as_deref().unwrap_or(&o.urls[0])).await;
        wait_for(&mut publisher, "\"op\":\"hello\"").await;
        let (pub_tx, mut pub_rx) = publisher.split();
        pub_txs.push(pub_tx);
        let acks = Arc::clone(&acks);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = pub_rx.next().await {
                if let Message::Text(t) = msg {
                    if t.as_str().contains("\"op\":\"ack\"") {
                        acks.fetch_add(1, Relaxed);
                    } else if t.as_str().contains("\"op\":\"error\"") {
                        eprintln!("publish refused: {}", t.as_str());
                    }
                }
            }
        });
    }
    let n = o.conns as u64;
    let mut published: u64 = 0;
    let begin = Instant::now();
    let warm_end = begin + Duration::from_secs_f64(o.warmup_s);
    let end = warm_end + Duration::from_secs_f64(o.duration_s);
    let mut measure_start: Option<(Instant, u64, u64, f64, f64)> = None; // (when, delivered, published, server cpu, client cpu)
    let server_cpu = |pids: &[u32]| -> f64 {
        if pids.is_empty() {
            return f64::NAN;
        }
        pids.iter().map(|p| cpu_s(&p.to_string()).unwrap_or(f64::NAN)).sum()
    };
    let mut redis_start = String::new();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if measure_start.is_none() && now >= warm_end {
            if let Some(addr) = &o.redis {
                redis_start = redis_info(addr).await;
            }
            let now = Instant::now();
            shared.measuring.store(true, Relaxed);
            measure_start = Some((now, shared.delivered.load(Relaxed), published, server_cpu(&o.server_pids), cpu_s("self").unwrap_or(f64::NAN)));
        }
        if o.rate > 0.0 {
            let due = (begin.elapsed().as_secs_f64() * o.rate) as u64;
            if published >= due {
                let next = begin + Duration::from_secs_f64((published + 1) as f64 / o.rate);
                tokio::time::sleep_until(next.into()).await;
                continue;
            }
        } else {
            // Saturation: at most `window` events not yet delivered to every subscriber.
            if published * n >= shared.delivered.load(Relaxed) + o.window * n {
                shared.publisher_waiting.store(true, Relaxed);
                let wait = shared.progress.notified();
                if published * n >= shared.delivered.load(Relaxed) + o.window * n {
                    let _ = tokio::time::timeout(Duration::from_millis(100), wait).await;
                }
                shared.publisher_waiting.store(false, Relaxed);
                continue;
            }
        }
        published += 1;
        let frame = format!(
            "{{\"op\":\"publish\",\"id\":{published},\"channel\":\"{}\",\"type\":\"updated\",\"payload\":{{\"ids\":[{}],\"t\":{}}}}}",
            o.channel,
            published % 1000,
            now_us()
        );
        let k = (published % pub_txs.len() as u64) as usize;
        pub_txs[k].send(Message::text(frame)).await.expect("publish");
    }
    let (m_when, m_delivered, m_published, m_server_cpu, m_client_cpu) = measure_start.expect("no measurement window");
    let seconds = m_when.elapsed().as_secs_f64();
    let delivered_in_window = shared.delivered.load(Relaxed) - m_delivered;
    let published_in_window = published - m_published;
    let server_cpu_s = server_cpu(&o.server_pids) - m_server_cpu;
    let client_cpu_s = cpu_s("self").unwrap_or(f64::NAN) - m_client_cpu;
    shared.measuring.store(false, Relaxed);
    let redis_end = match &o.redis {
        Some(addr) => redis_info(addr).await,
        None => String::new(),
    };

    // Drain: everything published must reach every subscriber.
    let expected = published * n;
    let drain_start = Instant::now();
    while (shared.delivered.load(Relaxed) < expected || acks.load(Relaxed) < published) && drain_start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_s = drain_start.elapsed().as_secs_f64();
    let delivered_total = shared.delivered.load(Relaxed);
    let rss_end = rss(&o.server_pids);
    let _ = stop_tx.send(true);
    let mut lat: Vec<u32> = Vec::new();
    // Subscribers that received fewer events than were published, and the fewest any received.
    let (mut short, mut fewest) = (0u64, u64::MAX);
    while let Some((events, v)) = lat_rx.recv().await {
        if events < published {
            short += 1;
        }
        fewest = fewest.min(events);
        lat.extend(v);
    }
    lat.sort_unstable();
    for mut pub_tx in pub_txs {
        let _ = pub_tx.close().await;
    }

    println!(
        "{{\"conns\":{},\"mode\":\"{}\",\"window\":{},\"rate\":{},\"seconds\":{:.3},\"published\":{},\"published_in_window\":{},\"delivered_in_window\":{},\"delivered_per_s\":{:.1},\"expected_total\":{},\"delivered_total\":{},\"acks\":{},\"problems\":{},\"lat_samples\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"connect_s\":{:.3},\"rss0_kib\":{},\"rss_idle_kib\":{},\"rss_end_kib\":{},\"idle_kib_per_conn\":{:.2},\"server_cpu_s\":{:.3},\"client_cpu_s\":{:.3},\"rss_idle_kib_each\":{:?},\"drain_s\":{:.3},\"seq_gaps\":{},\"seq_skipped\":{},\"short_subscribers\":{},\"fewest_events\":{},\"redis_info_start\":{},\"redis_info_end\":{}}}",
        o.conns,
        if o.rate > 0.0 { "paced" } else { "saturate" },
        o.window,
        o.rate,
        seconds,
        published,
        published_in_window,
        delivered_in_window,
        delivered_in_window as f64 / seconds,
        expected,
        delivered_total,
        acks.load(Relaxed),
        shared.problems.load(Relaxed),
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
        lat.last().copied().unwrap_or(0),
        connect_s,
        rss0,
        rss_idle,
        rss_end,
        (rss_idle as f64 - rss0 as f64) / o.conns as f64,
        server_cpu_s,
        client_cpu_s,
        rss_idle_each,
        drain_s,
        shared.seq_gaps.load(Relaxed),
        shared.seq_skipped.load(Relaxed),
        short,
        if fewest == u64::MAX { 0 } else { fewest },
        json_string(&redis_start),
        json_string(&redis_end),
    );
    std::process::exit(0);
}
