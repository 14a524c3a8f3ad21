//! The throwaway PostgreSQL of the tests (common::postgres): it starts, answers, survives an
//! immediate restart and a stop and start, and leaves nothing behind (no process, no directory, its
//! port free), also when the test holding it panics.

mod common;

use common::postgres::{process_alive, Postgres};
use std::net::TcpListener;
use std::path::Path;

/// Checks that nothing of a dropped cluster is left: its postmaster, its directory, its port.
fn assert_gone(pid: u32, data_dir: &Path, port: u16) {
    assert!(!process_alive(pid), "the postmaster {pid} still runs");
    assert!(!data_dir.exists(), "{} is left", data_dir.display());
    TcpListener::bind(("127.0.0.1", port)).expect("the cluster's port is free again");
}

#[test]
fn starts_answers_restarts_and_leaves_nothing_behind() {
    let pg = Postgres::start_with(&[("work_mem", "8MB")]);
    assert_eq!(pg.psql("select 1"), "1");
    assert_eq!(pg.psql("show work_mem"), "8MB");
    assert_eq!(pg.psql("show max_connections"), "200");
    assert_eq!(pg.psql("show fsync"), "off");
    assert_eq!(
        pg.url(),
        format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port())
    );
    pg.psql("create table t (id int primary key); insert into t values (1), (2);");
    let error = pg
        .try_psql("select 1; select nope; select 2")
        .expect_err("an unknown column is an error");
    assert!(error.contains("nope"), "{error}");

    let pid = pg.postmaster_pid().expect("a postmaster");
    pg.restart_immediate();
    assert_eq!(
        pg.psql("select count(*) from t"),
        "2",
        "committed rows survive a crash"
    );
    let restarted = pg.postmaster_pid().expect("a postmaster after the restart");
    assert_ne!(pid, restarted);
    assert!(!process_alive(pid), "the old postmaster is gone");

    pg.stop_fast();
    assert!(pg.try_psql("select 1").is_err(), "stopped");
    assert!(!process_alive(restarted));
    pg.start_again();
    assert_eq!(pg.psql("select count(*) from t"), "2");

    let (pid, data_dir, port) = (
        pg.postmaster_pid().expect("a postmaster"),
        pg.data_dir(),
        pg.port(),
    );
    drop(pg);
    assert_gone(pid, &data_dir, port);
}

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let pg = Postgres::start();
        let pid = pg.postmaster_pid().expect("a postmaster");
        sender.send((pid, pg.data_dir(), pg.port())).expect("send");
        pg.psql("select nope");
    })
    .join();
    assert!(panicked.is_err(), "psql panics on an error");
    let (pid, data_dir, port) = receiver.recv().expect("the cluster's details");
    assert_gone(pid, &data_dir, port);
}
