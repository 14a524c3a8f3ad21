//! A throwaway PostgreSQL 15 cluster (Debian's `postgresql-15`, installed by scripts/setup.sh) on a
//! free loopback port: `initdb` into a fresh temporary directory, `pg_ctl start` with `fsync=off`,
//! stopped with `pg_ctl -m fast` (or its postmaster killed by pid) and removed when dropped, also
//! when the test panics. Never the package's own cluster on 5432.
//!
//! As root (initdb refuses root) the directory belongs to `postgres` (mode 700) and `initdb` and
//! `pg_ctl` run as that user (`runuser -u postgres --`); otherwise as the current user. Clients
//! connect over TCP as the superuser `postgres`, without a password (`-A trust`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where Debian's package puts the binaries (not on PATH: only the `pg_wrapper` links are).
const DEBIAN_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// How many times [`Postgres::start_with`] tries another port when the one it picked was taken
/// between choosing it and the server binding it.
const PORT_ATTEMPTS: usize = 3;

static CLUSTERS: AtomicU64 = AtomicU64::new(0);

/// The directory of `initdb`, `pg_ctl` and `psql`: Debian's PostgreSQL 15, else `pg_config --bindir`.
/// Panics, naming scripts/setup.sh, when there is none.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let debian = PathBuf::from(DEBIAN_BIN_DIR);
        if debian.join("initdb").is_file() {
            return debian;
        }
        let configured = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
            .filter(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
        configured.unwrap_or_else(|| {
            panic!(
                "PostgreSQL not found: no {DEBIAN_BIN_DIR}/initdb and no `pg_config --bindir` with \
                 initdb in it; run `bash scripts/setup.sh` (it installs postgresql-15)"
            )
        })
    })
}

/// One PostgreSQL binary of [`bin_dir`].
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Whether this process runs as root (the owner of `/proc/self` is its effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|meta| meta.uid() == 0)
        .unwrap_or(false)
}

/// The single-quoted form of `value` for the shell command line `pg_ctl -o` builds.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
}

/// The command name of process `pid` (`/proc/PID/comm`).
fn process_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim_end().to_owned())
}

/// A command's status, stdout and stderr, for a panic message.
fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim_end(),
        String::from_utf8_lossy(&output.stderr).trim_end()
    )
}

/// A throwaway PostgreSQL cluster; see the module's documentation.
pub struct Postgres {
    port: u16,
    /// The temporary directory: `data/` (the cluster), `log` (the server's log) and the
    /// Unix-domain socket.
    dir: PathBuf,
    /// The extra `-c name=value` settings it was started with.
    settings: Vec<(String, String)>,
    /// Whether `initdb` and `pg_ctl` run as `postgres` through `runuser` (this process is root).
    as_postgres: bool,
}

impl Postgres {
    /// Initialises and starts a fresh cluster on a free loopback port.
    pub fn start() -> Postgres {
        Postgres::start_with(&[])
    }

    /// Like [`Postgres::start`], with extra server settings (`-c name=value`), such as
    /// `[("wal_level", "logical")]`.
    pub fn start_with(settings: &[(&str, &str)]) -> Postgres {
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("live-relay-pg-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("a directory for PostgreSQL at {}: {e}", dir.display()));
        let mut postgres = Postgres {
            port: 0,
            dir,
            settings: settings
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            as_postgres: running_as_root(),
        };
        // From here on, a panic drops `postgres`, which removes the directory.
        std::fs::set_permissions(&postgres.dir, std::fs::Permissions::from_mode(0o700))
            .expect("mode 700 on the PostgreSQL directory");
        if postgres.as_postgres {
            let chown = Command::new("chown")
                .arg("postgres:")
                .arg(&postgres.dir)
                .output()
                .expect("run chown");
            assert!(
                chown.status.success(),
                "chown postgres: {}: {}",
                postgres.dir.display(),
                describe(&chown)
            );
        }
        let initdb = postgres
            .pg_command("initdb")
            .arg("-D")
            .arg(postgres.data_dir())
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb -D {}: {}",
            postgres.data_dir().display(),
            describe(&initdb)
        );
        let mut attempt = 1;
        loop {
            postgres.port = super::redis::free_port();
            match postgres.try_start() {
                Ok(()) => return postgres,
                Err(why) if attempt < PORT_ATTEMPTS && why.contains("already in use") => {
                    attempt += 1;
                }
                Err(why) => panic!("pg_ctl start on port {}: {why}", postgres.port),
            }
        }
    }

    /// The superuser's URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres", "postgres")
    }

    /// The URL for `user` (no password: the cluster trusts everyone) and database `db`.
    pub fn url_for(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log so far (empty when unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The postmaster's pid, from `data/postmaster.pid` (`None` when it is not running).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// A crash and a recovery: `pg_ctl -m immediate -w restart` (no shutdown checkpoint, every
    /// connection cut), on the same port with the same settings.
    pub fn restart_immediate(&self) {
        let output = self
            .pg_ctl()
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-m", "immediate", "-w", "restart", "-o"])
            .arg(self.server_options())
            .output()
            .expect("run pg_ctl restart");
        assert!(
            output.status.success(),
            "pg_ctl -m immediate restart: {}\nlog:\n{}",
            describe(&output),
            self.log()
        );
    }

    /// Stops the server (`pg_ctl -m fast -w stop`): connections are cut, the data stays.
    pub fn stop_fast(&self) {
        let output = self.stop_command().output().expect("run pg_ctl stop");
        assert!(
            output.status.success(),
            "pg_ctl -m fast stop: {}\nlog:\n{}",
            describe(&output),
            self.log()
        );
    }

    /// Starts the stopped server again, on the same port with the same settings.
    pub fn start_again(&self) {
        if let Err(why) = self.try_start() {
            panic!("pg_ctl start again on port {}: {why}", self.port);
        }
    }

    /// Runs `sql` with `psql` as the superuser on the `postgres` database; returns its output
    /// (unaligned, tuples only, without the last newline). Panics with psql's stderr on an error.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|stderr| panic!("psql failed on {sql:?}:\n{stderr}"))
    }

    /// Like [`Postgres::psql`], returning psql's stderr on an error (stopping at the first
    /// failing statement).
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(bin("psql"))
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d"])
            .arg(self.url())
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        // A failure to write shows in psql's status and stderr below.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(sql.as_bytes());
        }
        let output = child.wait_with_output().expect("psql's output");
        if output.status.success() {
            let stdout = String::from_utf8_lossy(&output.stdout);
            Ok(stdout.strip_suffix('\n').unwrap_or(&stdout).to_owned())
        } else {
            Err(format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            ))
        }
    }

    /// `pg_ctl start` on `self.port`; the error names pg_ctl's output and the server's log.
    fn try_start(&self) -> Result<(), String> {
        let output = self
            .pg_ctl()
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o"])
            .arg(self.server_options())
            .arg("start")
            .output()
            .map_err(|e| format!("run pg_ctl: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{}\nlog:\n{}", describe(&output), self.log()))
        }
    }

    /// The server's options (`pg_ctl -o`): loopback only on `self.port`, its socket in the
    /// temporary directory, no fsync, room for many pools, and the extra settings.
    fn server_options(&self) -> String {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            shell_quote(&self.dir.display().to_string())
        );
        for (name, value) in &self.settings {
            options.push_str(&format!(" -c {}", shell_quote(&format!("{name}={value}"))));
        }
        options
    }

    /// `pg_ctl -D data` (as `postgres` when this process is root). Whatever starts a server must
    /// also pass `-l`: without it the postmaster inherits pg_ctl's stdout and stderr, and
    /// `Command::output` waits for them to close until the server stops.
    fn pg_ctl(&self) -> Command {
        let mut command = self.pg_command("pg_ctl");
        command.arg("-D").arg(self.data_dir());
        command
    }

    /// `pg_ctl -D data -m fast -w -t 30 stop`.
    fn stop_command(&self) -> Command {
        let mut command = self.pg_ctl();
        command.args(["-m", "fast", "-w", "-t", "30", "stop"]);
        command
    }

    /// The PostgreSQL program `name`, run as `postgres` when this process is root, from the
    /// temporary directory (that user may not enter the test's working directory).
    fn pg_command(&self, name: &str) -> Command {
        let mut command = if self.as_postgres {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(bin(name));
            runuser
        } else {
            Command::new(bin(name))
        };
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }
}

impl Drop for Postgres {
    /// Stops the server (`pg_ctl -m fast`; if that fails, SIGKILL to the postmaster, whose
    /// backends then exit) and removes the temporary directory. Never panics.
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            let stopped = self
                .stop_command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|status| status.success())
                .unwrap_or(false);
            // Only a live `postgres` process: after a crash the pid file may name a reused pid.
            if !stopped && process_alive(pid) && process_name(pid).as_deref() == Some("postgres") {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while process_alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
