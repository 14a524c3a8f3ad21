//! A TCP proxy on loopback that fails the way networks fail, put between a relay node and its
//! Redis: it passes bytes, delays each chunk, black-holes them (keeping the sockets open, as a
//! silent partition does: no FIN, no RST), cuts every flow, or forgets only the flows open now
//! (as a NAT or firewall that lost its state does) while new ones get through.
#![allow(dead_code)] // each test crate uses part of it

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the proxy does with the bytes of its flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Passes them on at once.
    Pass,
    /// Passes each chunk on after this long (in both directions).
    Delay(Duration),
    /// Passes chunks to the target after this long and back at once (one direction slow).
    DelayToTarget(Duration),
    /// Drops them, keeping every socket open; new connections are accepted and black-holed too.
    BlackHole,
    /// Closes every flow and refuses new ones (closes them at once).
    Cut,
    /// Black-holes the flows open when this mode was set; new flows pass.
    DropOpenFlows,
}

struct Shared {
    mode: watch::Sender<Mode>,
    /// Flows opened before this generation are black-holed (`DropOpenFlows`).
    dropped_below: AtomicU64,
    next_flow: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A running proxy; stopped (every flow closed) when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `target` on a free loopback port, in [`Mode::Pass`].
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("local addr");
        let (mode, _) = watch::channel(Mode::Pass);
        let shared = Arc::new(Shared {
            mode,
            dropped_below: AtomicU64::new(0),
            next_flow: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, target, Arc::clone(&shared)));
        FaultProxy {
            addr,
            shared,
            accept,
        }
    }

    /// `redis://` URL of the proxy.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        if mode == Mode::DropOpenFlows {
            let next = self.shared.next_flow.load(Ordering::SeqCst);
            self.shared.dropped_below.store(next, Ordering::SeqCst);
        }
        self.shared.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        let tasks =
            std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let flow = shared.next_flow.fetch_add(1, Ordering::SeqCst);
        if *shared.mode.borrow() == Mode::Cut {
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(target).await else {
            drop(client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let up = tokio::spawn(pump(
            client_read,
            server_write,
            flow,
            true,
            Arc::clone(&shared),
        ));
        let down = tokio::spawn(pump(
            server_read,
            client_write,
            flow,
            false,
            Arc::clone(&shared),
        ));
        let mut tasks = shared.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(up);
        tasks.push(down);
    }
}

/// How long a chunk read now waits before it is written, or `None` when it is dropped.
fn fate(mode: Mode, to_target: bool, black_holed: bool) -> Option<Duration> {
    if black_holed {
        return None;
    }
    match mode {
        Mode::Pass | Mode::DropOpenFlows => Some(Duration::ZERO),
        Mode::Delay(d) => Some(d),
        Mode::DelayToTarget(d) => Some(if to_target { d } else { Duration::ZERO }),
        Mode::BlackHole | Mode::Cut => None,
    }
}

/// Moves one direction of a flow: reads chunks and hands them, with their due time, to a writer
/// that keeps their order.
async fn pump(
    mut from: OwnedReadHalf,
    to: OwnedWriteHalf,
    flow: u64,
    to_target: bool,
    shared: Arc<Shared>,
) {
    let (queue, due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(write_when_due(to, due));
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            _ = mode.changed() => {
                if *mode.borrow() == Mode::Cut {
                    break;
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let current = *mode.borrow();
        if current == Mode::Cut {
            break;
        }
        let black_holed = flow < shared.dropped_below.load(Ordering::SeqCst);
        if let Some(delay) = fate(current, to_target, black_holed) {
            if queue
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    }
    drop(queue);
    if *mode.borrow() == Mode::Cut {
        writer.abort();
    } else {
        let _ = writer.await;
    }
}

async fn write_when_due(
    mut to: OwnedWriteHalf,
    mut due: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
) {
    while let Some((at, chunk)) = due.recv().await {
        tokio::time::sleep_until(at).await;
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}
