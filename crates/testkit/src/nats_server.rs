//! A real `nats-server -js` child process on a free loopback port.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::TestkitError;

/// Environment variable naming the `nats-server` binary; PATH is searched when it is unset.
pub const NATS_SERVER_BIN_ENV: &str = "NATS_SERVER_BIN";

/// How long a fresh or restarted server gets to answer with `INFO`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a graceful stop (SIGTERM) may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// A freshly probed port can be taken by someone else before the server binds it.
const START_ATTEMPTS: usize = 5;
/// JetStream file storage each test server may reserve (streams reserve their `max_bytes`).
const TEST_MAX_FILE_STORE: &str = "1TB";

/// How clients must authenticate to a test server (`nats-server --auth` or `--user/--pass`).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum ServerAuth {
    /// Anyone may connect.
    #[default]
    None,
    /// Clients must present this token.
    Token(String),
    /// Clients must present this user and password.
    UserPassword { user: String, password: String },
    /// Clients must sign the server's nonce with the seed of this nkey user (`U...` public key).
    Nkey(String),
    /// Operator mode: the server trusts an operator and resolves its accounts from this
    /// configuration text (see [`crate::nats_jwt::Operator::server_config`]); users present
    /// `.creds` files.
    Operator(String),
}

/// Test credentials are not secret, but keep the habit: never print them.
impl std::fmt::Debug for ServerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerAuth::None => "None",
            ServerAuth::Token(_) => "Token(***)",
            ServerAuth::UserPassword { .. } => "UserPassword(***)",
            ServerAuth::Nkey(_) => "Nkey(***)",
            ServerAuth::Operator(_) => "Operator(***)",
        })
    }
}

/// TLS for a test server: its certificate and key (PEM), and optionally a CA that client
/// certificates must chain to (`--tlsverify`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub verify_clients_with: Option<PathBuf>,
}

/// How to start a test server; the default is a plain, open server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsServerOptions {
    pub auth: ServerAuth,
    pub tls: Option<ServerTls>,
    /// JetStream file storage in bytes; `None` is a generous fixed limit (1 TB), never the
    /// free-disk guess nats-server makes on its own.
    pub max_file_store: Option<u64>,
}

/// A running `nats-server -js` bound to `127.0.0.1:<port>` with its own store directory.
///
/// Dropping it kills the process and removes the directory.
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    options: NatsServerOptions,
    // Holds the store dir and the log; removed on drop, after the child is killed.
    dir: TempDir,
    child: Option<Child>,
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServer")
            .field("port", &self.port)
            .field("options", &self.options)
            .field("dir", &self.dir.path())
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl NatsServer {
    /// Starts a server on a free port and waits until it answers with JetStream enabled.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(NatsServerOptions::default())
    }

    /// Starts a server that requires `auth` and, when given, TLS; restarts keep both.
    pub fn start_with(options: NatsServerOptions) -> Result<Self, TestkitError> {
        let bin = find_binary()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let dir = tempfile::Builder::new()
                .prefix("mend-nats-")
                .tempdir()
                .map_err(TestkitError::TempDir)?;
            let mut server = NatsServer {
                bin: bin.clone(),
                port,
                options: options.clone(),
                dir,
                child: None,
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                // Most likely the port was taken between probing and binding: try another.
                Err(error @ TestkitError::ExitedEarly { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(TestkitError::BinaryNotFound))
    }

    /// The client URL, e.g. `nats://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The loopback port the server listens on (stable across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (stable across restarts).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The server's log file (stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// Whether the process is (still) running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the server gracefully (SIGTERM, so JetStream flushes its store), killing it if it
    /// does not exit in time. Stopping a stopped server does nothing.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let terminated = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if matches!(terminated, Ok(status) if status.success()) {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if child.try_wait().map_err(TestkitError::Stop)?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(POLL_INTERVAL);
            }
        }
        kill_child(&mut child)
    }

    /// Kills the server abruptly (SIGKILL), as a crash would. Messages JetStream acknowledged
    /// but had not yet written out may be lost; use [`NatsServer::stop`] to test restarts.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        match self.child.take() {
            Some(mut child) => kill_child(&mut child),
            None => Ok(()),
        }
    }

    /// Starts a stopped server again on the same port and store dir and waits until it is
    /// ready. Starting a running server does nothing.
    pub fn resume(&mut self) -> Result<(), TestkitError> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn_and_wait()
    }

    /// Stops the server gracefully and starts it again on the same port and store dir.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        self.resume()
    }

    fn spawn_and_wait(&mut self) -> Result<(), TestkitError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(TestkitError::TempDir)?;
        let log_err = log.try_clone().map_err(TestkitError::TempDir)?;
        // JetStream's file storage is sized from the free disk unless set: on a machine with
        // less than ~15 GiB free, mend's default stream limits (11.25 GiB reserved) would be
        // refused. The tests write megabytes, so the limit is set, not measured.
        let config = self.dir.path().join("nats-server.conf");
        std::fs::write(
            &config,
            format!(
                "jetstream {{\n  store_dir: {:?}\n  max_file_store: {}\n}}\n{}",
                self.store_dir().display().to_string(),
                self.options
                    .max_file_store
                    .map_or_else(|| TEST_MAX_FILE_STORE.to_owned(), |bytes| bytes.to_string()),
                match &self.options.auth {
                    // nkey users exist only in a config file.
                    ServerAuth::Nkey(public) => {
                        format!("authorization {{\n  users = [ {{ nkey: {public} }} ]\n}}\n")
                    }
                    ServerAuth::Operator(config) => config.clone(),
                    _ => String::new(),
                },
            ),
        )
        .map_err(TestkitError::TempDir)?;
        let mut command = Command::new(&self.bin);
        command
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()]);
        match &self.options.auth {
            ServerAuth::None | ServerAuth::Nkey(_) | ServerAuth::Operator(_) => {}
            ServerAuth::Token(token) => {
                command.args(["--auth", token]);
            }
            ServerAuth::UserPassword { user, password } => {
                command.args(["--user", user, "--pass", password]);
            }
        }
        if let Some(tls) = &self.options.tls {
            command
                .arg("--tls")
                .arg("--tlscert")
                .arg(&tls.cert)
                .arg("--tlskey")
                .arg(&tls.key);
            if let Some(ca) = &tls.verify_clients_with {
                command.arg("--tlsverify").arg("--tlscacert").arg(ca);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls until the server greets a client with a JetStream-enabled `INFO` line.
    fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let started = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(TestkitError::ExitedEarly {
                    status: status.to_string(),
                    log: log_tail(&self.log_path()),
                });
            }
            if greets_with_jetstream(address) {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = self.kill();
                return Err(TestkitError::NotReady {
                    port: self.port,
                    waited_ms: started.elapsed().as_millis(),
                    log: log_tail(&self.log_path()),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // The TempDir field is dropped after this, so the store goes only once the process is gone.
        let _ = self.kill();
    }
}

fn kill_child(child: &mut Child) -> Result<(), TestkitError> {
    // An already-exited child makes kill() fail; wait() still reaps it.
    let _ = child.kill();
    child.wait().map_err(TestkitError::Stop)?;
    Ok(())
}

fn greets_with_jetstream(address: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    match BufReader::new(stream).read_line(&mut line) {
        Ok(_) => line.starts_with("INFO ") && line.contains("\"jetstream\":true"),
        Err(_) => false,
    }
}

fn find_binary() -> Result<PathBuf, TestkitError> {
    if let Some(explicit) = std::env::var_os(NATS_SERVER_BIN_ENV) {
        let path = PathBuf::from(explicit);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(TestkitError::BinaryNotFound)
        };
    }
    let path = std::env::var_os("PATH").ok_or(TestkitError::BinaryNotFound)?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or(TestkitError::BinaryNotFound)
}

/// A loopback address no one listens on right now, for a service a test starts (the port may
/// be taken again before it binds; tests that start many retry or tolerate that).
pub fn free_addr() -> SocketAddr {
    let port = free_port().unwrap_or_else(|error| panic!("no free loopback port: {error}"));
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(TestkitError::FreePort)?;
    let port = listener
        .local_addr()
        .map_err(TestkitError::FreePort)?
        .port();
    Ok(port)
}

fn log_tail(path: &Path) -> String {
    let Ok(file) = File::open(path) else {
        return String::from("<no log>");
    };
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    let start = lines.len().saturating_sub(20);
    lines[start..].join("\n")
}
