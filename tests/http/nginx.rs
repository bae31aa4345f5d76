//! Debian's nginx for the tests: one process (`master_process off`) in the foreground, its
//! configuration, logs, pid file and temporary paths in a tempdir, listening on 127.0.0.1 and
//! [::1] at a port found free, and with TLS on a second port when asked. Stopped by its PID.
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::wait_timeout;

/// A running nginx serving `www()`.
pub struct Nginx {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The HTTPS port, when started with a certificate.
    pub tls_port: Option<u16>,
}

/// A certificate and its key, in PEM files.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Nginx {
    /// nginx on plain HTTP.
    pub fn start() -> Nginx {
        Self::start_with(None)
    }

    /// nginx on plain HTTP and on HTTPS with `cert`.
    pub fn start_tls(cert: &Cert) -> Nginx {
        Self::start_with(Some(cert))
    }

    fn start_with(cert: Option<&Cert>) -> Nginx {
        let mut dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        // A port found free can be taken before nginx binds it: try again with another.
        for _ in 0..5 {
            let port = free_port();
            let tls_port = cert.map(|_| free_port());
            let conf = config(dir.path(), port, tls_port.zip(cert));
            std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
            let child = Command::new(nginx_program())
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx (apt-get install nginx; .ci/run does)");
            let mut nginx = Nginx {
                child,
                dir,
                port,
                tls_port,
            };
            match nginx.wait_ready() {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") || log.contains("held by") => {
                    // Dropping stops it; the tempdir is taken back for the next try.
                    dir = std::mem::replace(&mut nginx.dir, tempfile::tempdir().unwrap());
                }
                Err(log) => panic!("nginx did not start: {log}"),
            }
        }
        panic!("nginx found no free port in 5 tries");
    }

    /// Waits (10 s at most) until every listening socket accepts a connection; on an early
    /// exit, returns the error log.
    fn wait_ready(&mut self) -> Result<(), String> {
        let mut addrs = vec![
            SocketAddr::from(([127, 0, 0, 1], self.port)),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.port)),
        ];
        if let Some(t) = self.tls_port {
            addrs.push(SocketAddr::from(([127, 0, 0, 1], t)));
        }
        // Its ports are its own (another process may have bound one after it was found free).
        for port in [Some(self.port), self.tls_port].into_iter().flatten() {
            crate::common::ports::wait_held(&mut self.child, false, port, Duration::from_secs(10))
                .map_err(|e| format!("{e}: {}", self.error_log()))?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.error_log()));
            }
            let ready = addrs
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not accepting after 10 s: {}", self.error_log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The directory nginx serves.
    pub fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `http://[::1]:PORT` + `path`.
    pub fn url6(&self, path: &str) -> String {
        format!("http://[::1]:{}{path}", self.port)
    }

    /// `https://HOST:TLS_PORT` + `path`.
    pub fn tls_url(&self, host: &str, path: &str) -> String {
        format!(
            "https://{host}:{}{path}",
            self.tls_port.expect("no TLS port")
        )
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The access log (format `t` below), in full.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Waits (5 s at most) for the access log to hold `n` lines; nginx writes a line once a
    /// request is done, which can be just after the client has the last byte.
    pub fn access_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines: Vec<String> = self.access_log().lines().map(String::from).collect();
            if lines.len() >= n || Instant::now() >= deadline {
                return lines;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown; SIGKILL only if that is not done in 5 s.
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        if wait_timeout(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// nginx lives in /usr/sbin, which a user's PATH may lack.
fn nginx_program() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// A port free on both 127.0.0.1 and [::1], below the ephemeral range
/// (`common::unused_port`); nginx is started again on another when it lost a race (its bind
/// failed, or another process holds the port too: `common::ports::wait_held`).
pub fn free_port() -> u16 {
    crate::common::unused_port(false)
}

/// The configuration: text/plain gzip-compressed (so chunked), a redirect chain and a loop on
/// the plain server; on the TLS server, a redirect to the plain one.
fn config(dir: &Path, port: u16, tls: Option<(u16, &Cert)>) -> String {
    let d = dir.display();
    let tls_server = match tls {
        None => String::new(),
        Some((tls_port, cert)) => format!(
            "
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        listen [::1]:{tls_port} ssl;
        ssl_certificate {};
        ssl_certificate_key {};
        root {d}/www;
        location = /to-http {{ return 302 http://127.0.0.1:{port}/mib.bin; }}
    }}",
            cert.cert.display(),
            cert.key.display()
        ),
    };
    format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    types {{ text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    log_format t '$remote_addr $request_method $request_uri $status $body_bytes_sent '
                 'enc=$sent_http_content_encoding len=$sent_http_content_length';
    access_log {d}/access.log t;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    sendfile on;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 1;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {d}/www;
        location = /r302 {{ return 302 /r301; }}
        location = /r301 {{ return 301 /r307; }}
        location = /r307 {{ return 307 /mib.bin; }}
        location = /loop-a {{ return 302 /loop-b; }}
        location = /loop-b {{ return 302 /loop-a; }}
    }}{tls_server}
}}
"
    )
}
