//! [`Kamailio`]: a real Kamailio (the Debian package's `kamailio` binary and modules) started
//! for one test as the SIP front end of a palaver server, the way docs/sip-proxy.md describes.
//!
//! The harness writes a `kamailio.cfg` into a temporary directory, checks it with
//! `kamailio -c` (a refused file is an error showing what Kamailio said), and runs `kamailio
//! -DD -E -f cfg` in the foreground with its log in that directory ([`Kamailio::log`]). It
//! listens only on 127.0.0.1, UDP and TCP on one port picked free by the OS (asked for with a
//! std bind, released, handed to Kamailio; retried when Kamailio then fails to bind it).
//!
//! The routing script:
//! * Max-Forwards and sanity checks; CANCEL and retransmissions go to `tm`;
//! * requests with a To tag (in-dialog: re-SUBSCRIBE, NOTIFY) follow their Route set
//!   (`loose_route()`) and are relayed with `t_relay()`;
//! * initial requests with a Route naming us (palaver's MESSAGEs to contacts registered here,
//!   whose Route is the Path we added) are relayed to their Request-URI, over the client's
//!   existing TCP connection (Kamailio reuses a connection to the same ip:port);
//! * REGISTER gets `add_path()` and goes to palaver;
//! * requests to `ocschat@<domain>` or any URI at `conference.<domain>` get `record_route()`
//!   and go to palaver (`$du`, TCP by default, UDP with [`Forward::Udp`]);
//! * requests from palaver itself without a Route are relayed to their Request-URI;
//! * anything else is answered 404.
//!
//! The binary is `$PALAVER_KAMAILIO`, else `kamailio` on `PATH`, else `/usr/sbin/kamailio`;
//! when none exists starting fails (tests never skip). The process group is sent SIGTERM (then
//! SIGKILL) when the value is dropped; `PALAVER_E2E_KEEP=1` keeps the directory (cfg, logs).

use anyhow::{anyhow, bail, Context as _, Result};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's package puts the modules.
pub const MODULES_DIR: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";
/// How long Kamailio may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Ports tried before giving up.
const PORT_ATTEMPTS: u32 = 5;
/// How long Kamailio gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The transport Kamailio uses towards palaver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// `$du = "sip:<palaver>;transport=tcp"` (the default).
    Tcp,
    /// `$du = "sip:<palaver>;transport=udp"`.
    Udp,
}

impl Forward {
    fn param(self) -> &'static str {
        match self {
            Forward::Tcp => "tcp",
            Forward::Udp => "udp",
        }
    }
}

/// A running Kamailio in front of one palaver server.
pub struct Kamailio {
    child: Option<Child>,
    port: u16,
    /// The configuration and logs (kept with `PALAVER_E2E_KEEP`).
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    cfg_path: PathBuf,
}

impl Kamailio {
    /// Starts Kamailio forwarding to palaver's SIP TCP listener `palaver_sip_tcp`.
    pub async fn start(palaver_sip_tcp: SocketAddr) -> Result<Kamailio> {
        Kamailio::start_with(palaver_sip_tcp, Forward::Tcp).await
    }

    /// Starts Kamailio forwarding to `palaver` (palaver's listener for `forward`).
    pub async fn start_with(palaver: SocketAddr, forward: Forward) -> Result<Kamailio> {
        let bin = kamailio_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("palaver-kamailio-")
            .tempdir()
            .context("creating Kamailio's directory")?;
        let cfg_path = dir.path().join("kamailio.cfg");
        let mut last_error = None;
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port().context("finding a free port for Kamailio")?;
            std::fs::write(&cfg_path, config(port, palaver, forward))
                .context("writing kamailio.cfg")?;
            check_config(&bin, &cfg_path)?;
            let log_path = dir.path().join(format!("kamailio-{attempt}.log"));
            let mut child = Some(spawn(&bin, &cfg_path, dir.path(), &log_path)?);
            let waited = wait_listening(&mut child, port).await;
            let log = read_log(&log_path);
            match waited {
                Ok(()) => {
                    return Ok(Kamailio {
                        child,
                        port,
                        dir: Some(dir),
                        log_path,
                        cfg_path,
                    })
                }
                Err(e) => {
                    stop(&mut child);
                    let port_taken = log.contains("Address already in use");
                    let e = e.context(format!(
                        "Kamailio (attempt {attempt}, port {port}) log:\n{log}"
                    ));
                    if !port_taken {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("Kamailio did not start")))
    }

    /// Kamailio's UDP address (`127.0.0.1:port`).
    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kamailio's TCP address (same port as UDP).
    pub fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Everything Kamailio logged so far (for failure messages).
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// The configuration file in use.
    pub fn config_path(&self) -> &Path {
        &self.cfg_path
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        stop(&mut self.child);
        if std::env::var_os("PALAVER_E2E_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "palaver e2e: kept Kamailio's directory {}",
                    dir.keep().display()
                );
            }
        }
    }
}

/// The binary: `$PALAVER_KAMAILIO`, `kamailio` on `PATH`, or `/usr/sbin/kamailio`.
pub fn kamailio_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PALAVER_KAMAILIO") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("$PALAVER_KAMAILIO={} is not a file", p.display());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("kamailio"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    if let Some(p) = on_path {
        return Ok(p);
    }
    let sbin = PathBuf::from("/usr/sbin/kamailio");
    if sbin.is_file() {
        return Ok(sbin);
    }
    bail!(
        "kamailio is not installed (apt-get install kamailio, or run scripts/test as root; \
         $PALAVER_KAMAILIO names another binary)"
    )
}

/// A port free for both UDP and TCP on 127.0.0.1 (released before returning: Kamailio binds
/// it, and a race is retried by the caller).
fn free_port() -> Result<u16> {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP on 127.0.0.1")
}

/// The routing script (see the module documentation).
pub fn config(port: u16, palaver: SocketAddr, forward: Forward) -> String {
    let domain = crate::DOMAIN;
    let rooms = crate::MUC_DOMAIN;
    let (pip, pport) = (palaver.ip(), palaver.port());
    let proto = forward.param();
    format!(
        r#"#!KAMAILIO
# Written by palaver's e2e harness (tests/src/kamailio.rs): Kamailio in front of palaver.
debug=2
log_stderror=yes
log_facility=LOG_LOCAL0
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
dns=no
rev_dns=no
use_dns_cache=no
# Connections to palaver carry the registrations made through them: keep them open longer
# than palaver's sip.max_expires (3600 s by default), since traffic refreshes them.
tcp_connection_lifetime=3605

mpath="{MODULES_DIR}/"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "sanity.so"
loadmodule "xlog.so"
loadmodule "path.so"

modparam("rr", "enable_full_lr", 1)

request_route {{
    xlog("L_INFO", "palaver-e2e: $rm $ru from $proto:$si:$sp (Route: $hdr(Route))
");
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check()) {{
        xlog("L_WARN", "palaver-e2e: malformed $rm from $si:$sp
");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (!is_method("ACK")) {{
        t_check_trans();
    }}
    # In-dialog requests (re-SUBSCRIBE, NOTIFY): follow the route set.
    if (has_totag()) {{
        if (loose_route()) {{
            route(RELAY);
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                route(RELAY);
            }}
            exit;
        }}
        sl_send_reply("404", "Not Here");
        exit;
    }}
    # palaver's requests to contacts registered here carry our Path as Route.
    if (loose_route()) {{
        route(RELAY);
    }}
    if (is_method("REGISTER")) {{
        if (!add_path()) {{
            sl_send_reply("503", "Cannot Add Path");
            exit;
        }}
        route(PALAVER);
    }}
    if ($rU == "ocschat" || $rd == "{rooms}" || ($rd == "{domain}" && $rU == $null)) {{
        record_route();
        route(PALAVER);
    }}
    # palaver's own requests without a route (to users that joined without registering).
    if ($si == "{pip}" && $sp == {pport}) {{
        route(RELAY);
    }}
    sl_send_reply("404", "Not Served Here");
    exit;
}}

route[PALAVER] {{
    $du = "sip:{pip}:{pport};transport={proto}";
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"#
    )
}

/// `kamailio -c -f cfg`: fails with Kamailio's output when it refuses the file.
fn check_config(bin: &Path, cfg: &Path) -> Result<()> {
    let out = Command::new(bin)
        .arg("-c")
        .arg("-f")
        .arg(cfg)
        .args(["-L", MODULES_DIR])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} -c", bin.display()))?;
    if !out.status.success() {
        bail!(
            "kamailio -c refused {} ({}):\n{}{}",
            cfg.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `kamailio -DD -E -f cfg` in its own process group, output to `log`.
fn spawn(bin: &Path, cfg: &Path, dir: &Path, log: &Path) -> Result<Child> {
    let out = File::create(log).context("creating Kamailio's log")?;
    let err = out.try_clone()?;
    Command::new(bin)
        .args(["-DD", "-E", "-m", "32", "-M", "8"])
        .arg("-f")
        .arg(cfg)
        .arg("-Y")
        .arg(dir)
        .arg("-w")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// Waits until Kamailio accepts TCP connections on `port`; fails when it exits first.
async fn wait_listening(child: &mut Option<Child>, port: u16) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(child) = child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("kamailio exited at start ({status})");
            }
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            // Someone listens: make sure it is Kamailio, not a process that took the port
            // while Kamailio failed to bind it and is exiting.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("kamailio exited at start ({status})");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("kamailio does not listen on {addr} after {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// SIGTERM to the process group, then SIGKILL after [`STOP_TIMEOUT`]; waits for the main
/// process.
fn stop(child: &mut Option<Child>) {
    let Some(mut child) = child.take() else {
        return;
    };
    let pid = child.id();
    if matches!(child.try_wait(), Ok(None)) {
        signal_group(pid, "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Workers left behind (or a main process that ignored SIGTERM) go too.
    signal_group(pid, "KILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// `kill -SIG -pgid` through /bin/sh (the workspace forbids `unsafe`, so no libc::kill).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("/bin/sh")
        .args([
            "-c",
            "kill -\"$1\" -\"$2\" 2>/dev/null",
            "sh",
            signal,
            &pgid.to_string(),
        ])
        .stdin(Stdio::null())
        .status();
}
