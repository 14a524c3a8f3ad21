//! A connection's outbound queue: bounded, one lock taken per push and per pop, and nothing
//! allocated while it is empty.
//!
//! Written for the fan-out, where one event is pushed to thousands of queues in a row: tokio's
//! bounded `mpsc` spent a semaphore permit per push, released it under the semaphore's lock per
//! pop, and allocated its first block of 32 slots (1.3 KiB) for every connection, idle or not
//! (bench/RESULTS.md, relay fan-out). Here a push is a lock, a `VecDeque` push and, when the
//! receiver waits, one wake; the receiver keeps at most [`KEPT_SLOTS`] slots once drained.

use super::outbound::Outbound;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The most slots a drained queue keeps allocated; a queue that grew past them (a burst, a
/// replay) gives its buffer back when it is empty again.
const KEPT_SLOTS: usize = 32;

/// A new queue that holds up to `capacity` frames (at least 1).
pub fn queue(capacity: usize) -> (QueueTx, QueueRx) {
    let shared = Arc::new(Shared {
        capacity: capacity.max(1),
        senders: AtomicUsize::new(1),
        state: Mutex::new(State::default()),
    });
    (QueueTx(Arc::clone(&shared)), QueueRx(shared))
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds `capacity` frames.
    Full,
    /// The receiver is gone.
    Closed,
}

#[derive(Debug)]
struct Shared {
    capacity: usize,
    /// Live [`QueueTx`] handles; the receiver sees the end of the queue when the last one goes.
    senders: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Outbound>,
    /// The receiver's waker, stored when it found the queue empty; taken by the next push (or
    /// kick), so a receiver that is busy is not woken again for every frame.
    waker: Option<Waker>,
    /// The receiver was dropped.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few field and `VecDeque` operations that do not panic midway.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn pop(&mut self) -> Option<Outbound> {
        let frame = self.frames.pop_front();
        if self.frames.is_empty() && self.frames.capacity() > KEPT_SLOTS {
            self.frames = VecDeque::new();
        }
        frame
    }
}

/// The sending side; clones share the queue.
#[derive(Debug)]
pub struct QueueTx(Arc<Shared>);

impl QueueTx {
    /// Queues `frame`, waking the receiver if it waits.
    pub fn push(&self, frame: Outbound) -> Result<(), PushError> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        if state.frames.len() >= self.0.capacity {
            return Err(PushError::Full);
        }
        state.frames.push_back(frame);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Wakes the receiver if it waits (for a [`Kick`](super::Kick), which it looks at when woken).
    pub fn wake_receiver(&self) {
        let waker = self.0.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// How many more frames fit right now.
    pub fn room(&self) -> usize {
        self.0.capacity.saturating_sub(self.0.lock().frames.len())
    }
}

impl Clone for QueueTx {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        QueueTx(Arc::clone(&self.0))
    }
}

impl Drop for QueueTx {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake_receiver();
        }
    }
}

/// The receiving side, owned by the connection's task.
#[derive(Debug)]
pub struct QueueRx(Arc<Shared>);

impl QueueRx {
    /// The next frame; `None` once the queue is empty and every sender is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        let mut state = self.0.lock();
        if let Some(frame) = state.pop() {
            return Poll::Ready(Some(frame));
        }
        // Read under the lock: a sender's last drop takes the waker under it after the count
        // reached zero, so either the count is seen here or the waker stored below is woken.
        if self.0.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.0.lock().pop()
    }
}

impl Drop for QueueRx {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.closed = true;
        let frames = std::mem::take(&mut state.frames);
        drop(state);
        drop(frames);
    }
}

/// A waker that records that it was woken, for the tests of the queue and of its users.
#[cfg(test)]
pub(super) mod test_waker {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    #[derive(Default)]
    pub struct Flag(pub AtomicBool);

    impl Flag {
        /// A new flag and a waker that raises it.
        pub fn waker() -> (Arc<Flag>, Waker) {
            let flag = Arc::new(Flag::default());
            (Arc::clone(&flag), Waker::from(flag))
        }
    }

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ws::Utf8Bytes;

    fn frame(text: &'static str) -> Outbound {
        Outbound::other(Utf8Bytes::from_static(text))
    }

    fn text(frame: Option<Outbound>) -> Option<String> {
        frame.map(|f| f.text.as_str().to_owned())
    }

    use test_waker::Flag;

    #[test]
    fn frames_come_out_in_order_up_to_the_capacity() {
        let (tx, mut rx) = queue(2);
        assert_eq!(tx.room(), 2);
        tx.push(frame("a")).expect("room");
        tx.push(frame("b")).expect("room");
        assert_eq!(tx.push(frame("c")), Err(PushError::Full));
        assert_eq!(tx.room(), 0);
        assert_eq!(text(rx.try_recv()).as_deref(), Some("a"));
        assert_eq!(tx.room(), 1);
        tx.push(frame("d")).expect("room again");
        assert_eq!(text(rx.try_recv()).as_deref(), Some("b"));
        assert_eq!(text(rx.try_recv()).as_deref(), Some("d"));
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn a_waiting_receiver_is_woken_by_a_push_and_by_the_last_sender_leaving() {
        let (tx, mut rx) = queue(4);
        let (flag, waker) = Flag::waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.push(frame("a")).expect("room");
        assert!(flag.0.swap(false, Ordering::SeqCst), "woken by the push");
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(Some(_))));

        let second = tx.clone();
        assert!(rx.poll_recv(&mut cx).is_pending());
        drop(tx);
        assert!(!flag.0.load(Ordering::SeqCst), "a sender is left");
        drop(second);
        assert!(
            flag.0.load(Ordering::SeqCst),
            "woken by the last sender leaving"
        );
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn frames_queued_before_the_senders_left_are_still_received() {
        let (tx, mut rx) = queue(4);
        tx.push(frame("a")).expect("room");
        drop(tx);
        let (_, waker) = Flag::waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn pushing_after_the_receiver_left_fails_and_keeps_nothing() {
        let (tx, rx) = queue(4);
        tx.push(frame("a")).expect("room");
        drop(rx);
        assert_eq!(tx.push(frame("b")), Err(PushError::Closed));
        assert!(tx.0.lock().frames.is_empty());
    }

    #[test]
    fn a_drained_queue_gives_back_a_large_buffer_and_keeps_a_small_one() {
        let (tx, mut rx) = queue(1024);
        for _ in 0..200 {
            tx.push(frame("x")).expect("room");
        }
        while rx.try_recv().is_some() {}
        assert_eq!(tx.0.lock().frames.capacity(), 0);
        tx.push(frame("x")).expect("room");
        rx.try_recv();
        let kept = tx.0.lock().frames.capacity();
        assert!((1..=KEPT_SLOTS).contains(&kept), "{kept}");
    }

    #[tokio::test]
    async fn recv_waits_for_a_frame_pushed_from_another_task() {
        let (tx, mut rx) = queue(4);
        let pusher = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.push(frame("later")).expect("room");
            tx
        });
        assert_eq!(text(rx.recv().await).as_deref(), Some("later"));
        drop(pusher.await.expect("the pusher ran"));
        assert!(rx.recv().await.is_none());
    }
}
