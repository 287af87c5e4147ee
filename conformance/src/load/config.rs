//! Load run settings: the command-line flags ([`LoadArgs`]), the TOML scenario file
//! ([`Scenario`], the same names in snake_case), and the resolved [`Config`]. A flag given on
//! the command line overrides the file's key, which overrides the default. Paths in a scenario
//! file are relative to the file's directory.

use crate::client::sasl::Mechanism;
use crate::client::TlsMode;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the sessions do once they are in their rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Post messages at the configured rate and measure delivery latency.
    Chat,
    /// Stay idle for `hold_secs`, then ping the server once from every session.
    Idle,
    /// Query one existing room's archive (XEP-0313 MAM) and measure the page latency.
    History,
}

/// How connections are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    Starttls,
    Direct,
    Off,
}

impl Tls {
    pub fn mode(self) -> TlsMode {
        match self {
            Tls::Starttls => TlsMode::StartTls,
            Tls::Direct => TlsMode::Direct,
            Tls::Off => TlsMode::Off,
        }
    }
}

/// The protocol the sessions speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// XMPP c2s with MUC rooms.
    Xmpp,
    /// SIP pager-mode rooms (MESSAGE to the room URI; palaver or Kamailio imc).
    Sip,
}

/// The SIP transport of `--protocol sip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    Udp,
    Tcp,
}

/// How often each poster posts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Messages per second per poster (open loop, on a fixed schedule).
    PerSecond(f64),
    /// The next message as soon as the previous one came back from the room.
    ClosedLoop,
}

/// How far apart the first posts of closed-loop posters are spread.
const CLOSED_LOOP_SPREAD: Duration = Duration::from_millis(50);

impl Rate {
    /// When poster `idx` posts first in a chat phase starting at `start`: a fixed per-poster
    /// offset (golden-ratio sequence) spreads posters over one interval.
    pub fn first_post(self, idx: usize, start: tokio::time::Instant) -> tokio::time::Instant {
        let spread = match self {
            Rate::PerSecond(r) => Duration::from_secs_f64(1.0 / r),
            Rate::ClosedLoop => CLOSED_LOOP_SPREAD,
        };
        let frac = (idx as f64 * 0.618_033_988_749_895).fract();
        start + spread.mul_f64(frac)
    }

    /// The post after the one due at `at`: on schedule for a fixed rate; none for closed loop
    /// (the echo schedules it).
    pub fn next_post(self, at: tokio::time::Instant) -> Option<tokio::time::Instant> {
        match self {
            Rate::PerSecond(r) => Some(at + Duration::from_secs_f64(1.0 / r)),
            Rate::ClosedLoop => None,
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        if s.eq_ignore_ascii_case("closed-loop") {
            return Ok(Rate::ClosedLoop);
        }
        match s.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "rate must be a positive number of messages per second or `closed-loop`, not {s:?}"
            )),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::PerSecond(r) => s.serialize_f64(*r),
            Rate::ClosedLoop => s.serialize_str("closed-loop"),
        }
    }
}

/// `rate` in a scenario file: a number or the string `closed-loop`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RateSpec {
    Int(i64),
    Float(f64),
    Text(String),
}

impl RateSpec {
    fn parse(&self) -> Result<Rate, String> {
        match self {
            RateSpec::Int(i) => i.to_string().parse(),
            RateSpec::Float(f) => f.to_string().parse(),
            RateSpec::Text(t) => t.parse(),
        }
    }
}

/// `palaver-conformance load` flags. Every one is optional here so that a scenario file can
/// supply it; the defaults are applied in [`Config::resolve`] (see docs/load.md).
#[derive(clap::Args, Debug, Default)]
pub struct LoadArgs {
    /// TOML scenario file (keys named like the flags, in snake_case); flags override it.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// `chat` (post and measure latency, default), `idle` (connect, join, hold, ping) or
    /// `history` (MAM queries on one existing room, see docs/load.md).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// `xmpp` (default) or `sip` (pager-mode rooms over SIP MESSAGE).
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// SIP transport: udp (default) or tcp.
    #[arg(long, value_enum)]
    pub sip_transport: Option<SipTransport>,
    /// SIP room URI template ({room}, {muc_domain}) [default: sip:{room}@{muc_domain}].
    #[arg(long)]
    pub sip_room_uri: Option<String>,
    /// SIP join command template ({nick}, {room}) [default: #join {nick}].
    #[arg(long)]
    pub sip_join: Option<String>,
    /// SIP command the room's first user sends to create it ({room}; "" = none)
    /// [default: #create {room}].
    #[arg(long)]
    pub sip_create: Option<String>,
    /// Server address, host:port [default: 127.0.0.1:5222]. A comma-separated list (the
    /// nodes of a pool) spreads the users over the servers in turn: user i → server i mod n.
    #[arg(long)]
    pub server: Option<String>,
    /// XMPP domain [default: localhost].
    #[arg(long)]
    pub domain: Option<String>,
    /// MUC service [default: conference.<domain>].
    #[arg(long)]
    pub muc_domain: Option<String>,
    /// starttls (default), direct (XEP-0368) or off.
    #[arg(long, value_enum)]
    pub tls: Option<Tls>,
    /// CA certificate(s) to trust (PEM); required unless --tls off.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Name the server certificate must carry [default: the domain].
    #[arg(long)]
    pub tls_name: Option<String>,
    /// auto (strongest offered, default), SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN.
    #[arg(long)]
    pub mechanism: Option<String>,
    /// File of `user:password` lines (user = local part or bare JID; `#` comments).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Without --credentials users are PREFIX<first-index> … [default: load].
    #[arg(long)]
    pub user_prefix: Option<String>,
    /// Password of every PREFIXn user.
    #[arg(long)]
    pub password: Option<String>,
    /// Number of users [default: rooms × occupants, else 100 (history mode: 10); with
    /// --credentials every line].
    #[arg(long)]
    pub count: Option<usize>,
    /// Index of the first PREFIXn user [default: 1].
    #[arg(long)]
    pub first_index: Option<usize>,
    /// Number of rooms, PREFIX1…PREFIXn (see --room-prefix) [default: 1].
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Room names instead of --rooms/--room-prefix (repeat; `name` or `name@service`).
    #[arg(long = "room", value_name = "NAME")]
    pub room: Vec<String>,
    /// Prefix of generated room names [default: loadroom].
    #[arg(long)]
    pub room_prefix: Option<String>,
    /// Occupants per room; the run then uses rooms × occupants users.
    #[arg(long)]
    pub occupants: Option<usize>,
    /// Occupants per room that post [default: all].
    #[arg(long)]
    pub posters: Option<usize>,
    /// Messages per second per poster, or `closed-loop` [default: 1; history mode: MAM
    /// queries per second per session, default closed-loop].
    #[arg(long)]
    pub rate: Option<Rate>,
    /// Message body size in bytes (at least the 40-odd bytes of the stamp) [default: 100].
    #[arg(long)]
    pub size: Option<usize>,
    /// Seconds of posting [default: 10].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds to wait for outstanding deliveries after posting stops [default: 5].
    #[arg(long)]
    pub drain: Option<f64>,
    /// New connections per second; 0 = as fast as --login-concurrency allows [default: 200].
    #[arg(long)]
    pub ramp: Option<f64>,
    /// Logins (connect … join) in progress at once at most [default: 200].
    #[arg(long)]
    pub login_concurrency: Option<usize>,
    /// Idle mode: seconds to hold the sessions before the ping round [default: 2].
    #[arg(long)]
    pub hold_secs: Option<f64>,
    /// Local address to connect from (repeat; or a range 127.0.0.2-127.0.0.9); round-robin.
    #[arg(long = "source", value_name = "IP")]
    pub source: Vec<String>,
    /// Server process to sample (RSS and CPU from /proc).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Seconds each protocol step may take [default: 10].
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Seconds of silence after which a session sends a whitespace keep-alive [default: 60].
    #[arg(long)]
    pub keepalive_secs: Option<f64>,
    /// Also write the report as JSON to FILE (`-` = stdout instead of the table).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Exit with status 2 when any error happened or a delivery is missing.
    #[arg(long)]
    pub fail_on_error: bool,
}

/// A scenario file: the flags' names in snake_case (`source` may be `sources`, `room`
/// `room_names`). Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    mode: Option<Mode>,
    protocol: Option<Protocol>,
    sip_transport: Option<SipTransport>,
    sip_room_uri: Option<String>,
    sip_join: Option<String>,
    sip_create: Option<String>,
    server: Option<String>,
    domain: Option<String>,
    muc_domain: Option<String>,
    tls: Option<Tls>,
    ca: Option<PathBuf>,
    tls_name: Option<String>,
    mechanism: Option<String>,
    credentials: Option<PathBuf>,
    user_prefix: Option<String>,
    password: Option<String>,
    count: Option<usize>,
    first_index: Option<usize>,
    rooms: Option<usize>,
    #[serde(alias = "room_names")]
    room: Option<Vec<String>>,
    room_prefix: Option<String>,
    occupants: Option<usize>,
    posters: Option<usize>,
    rate: Option<RateSpec>,
    size: Option<usize>,
    duration: Option<f64>,
    drain: Option<f64>,
    ramp: Option<f64>,
    login_concurrency: Option<usize>,
    hold_secs: Option<f64>,
    #[serde(alias = "sources")]
    source: Option<Vec<String>>,
    pid: Option<u32>,
    timeout: Option<f64>,
    keepalive_secs: Option<f64>,
    json: Option<PathBuf>,
    fail_on_error: Option<bool>,
}

/// The resolved settings of a run (echoed in the JSON report; the password is not).
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub mode: Mode,
    pub protocol: Protocol,
    pub sip_transport: SipTransport,
    /// Templates: `{room}` (local part of the room), `{muc_domain}`, `{nick}`.
    pub sip_room_uri: String,
    pub sip_join: String,
    pub sip_create: String,
    pub server: String,
    pub domain: String,
    pub muc_domain: String,
    pub tls: Tls,
    pub ca: Option<PathBuf>,
    pub tls_name: String,
    /// `None` = the strongest the server offers.
    #[serde(serialize_with = "ser_mechanism")]
    pub mechanism: Option<Mechanism>,
    pub credentials: Option<PathBuf>,
    pub user_prefix: String,
    #[serde(skip)]
    pub password: Option<String>,
    pub count: Option<usize>,
    pub first_index: usize,
    /// Bare room JIDs; user i joins `rooms[i % rooms.len()]`.
    pub rooms: Vec<String>,
    pub occupants: Option<usize>,
    pub posters: Option<usize>,
    pub rate: Rate,
    pub size: usize,
    pub duration_secs: f64,
    pub drain_secs: f64,
    pub ramp: f64,
    pub login_concurrency: usize,
    pub hold_secs: f64,
    pub sources: Vec<IpAddr>,
    pub pid: Option<u32>,
    pub timeout_secs: f64,
    pub keepalive_secs: f64,
    pub json: Option<PathBuf>,
    pub fail_on_error: bool,
}

fn ser_mechanism<S: serde::Serializer>(m: &Option<Mechanism>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.map_or("auto", Mechanism::name))
}

impl Config {
    /// Reads the scenario file (if any) and merges it with the flags and the defaults.
    pub fn resolve(args: LoadArgs) -> Result<Config> {
        let (file, base) = match &args.scenario {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let scenario: Scenario =
                    toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (scenario, base)
            }
            None => (Scenario::default(), PathBuf::new()),
        };
        Config::merge(args, file, &base)
    }

    fn merge(args: LoadArgs, file: Scenario, base: &Path) -> Result<Config> {
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let domain = args
            .domain
            .or(file.domain)
            .unwrap_or_else(|| "localhost".into());
        let muc_domain = args
            .muc_domain
            .or(file.muc_domain)
            .unwrap_or_else(|| format!("conference.{domain}"));
        let mechanism = match args
            .mechanism
            .or(file.mechanism)
            .filter(|m| !m.eq_ignore_ascii_case("auto"))
        {
            Some(m) => Some(Mechanism::from_name(&m).with_context(|| {
                format!("unknown mechanism {m:?} (auto, SCRAM-SHA-256, SCRAM-SHA-1, PLAIN)")
            })?),
            None => None,
        };
        let mode = args.mode.or(file.mode).unwrap_or(Mode::Chat);
        let history = mode == Mode::History;
        let rate = match (args.rate, file.rate) {
            (Some(r), _) => r,
            (None, Some(spec)) => spec.parse().map_err(anyhow::Error::msg)?,
            (None, None) if history => Rate::ClosedLoop,
            (None, None) => Rate::PerSecond(1.0),
        };
        let room_names = if args.room.is_empty() {
            file.room.unwrap_or_default()
        } else {
            args.room
        };
        if history && room_names.len() != 1 {
            bail!("history mode queries one existing room: give it with --room NAME (once)");
        }
        let rooms = if room_names.is_empty() {
            let n = args.rooms.or(file.rooms).unwrap_or(1);
            let prefix = args
                .room_prefix
                .or(file.room_prefix)
                .unwrap_or_else(|| "loadroom".into());
            (1..=n).map(|i| format!("{prefix}{i}")).collect()
        } else {
            room_names
        };
        let rooms: Vec<String> = rooms
            .into_iter()
            .map(|r| {
                if r.contains('@') {
                    r
                } else {
                    format!("{r}@{muc_domain}")
                }
            })
            .collect();
        let source_specs = if args.source.is_empty() {
            file.source.unwrap_or_default()
        } else {
            args.source
        };
        let mut sources = Vec::new();
        for spec in &source_specs {
            sources.extend(parse_sources(spec)?);
        }
        let cfg = Config {
            mode,
            protocol: args.protocol.or(file.protocol).unwrap_or(Protocol::Xmpp),
            sip_transport: args
                .sip_transport
                .or(file.sip_transport)
                .unwrap_or(SipTransport::Udp),
            sip_room_uri: args
                .sip_room_uri
                .or(file.sip_room_uri)
                .unwrap_or_else(|| "sip:{room}@{muc_domain}".into()),
            sip_join: args
                .sip_join
                .or(file.sip_join)
                .unwrap_or_else(|| "#join {nick}".into()),
            sip_create: args
                .sip_create
                .or(file.sip_create)
                .unwrap_or_else(|| "#create {room}".into()),
            server: args
                .server
                .or(file.server)
                .unwrap_or_else(|| "127.0.0.1:5222".into()),
            tls_name: args
                .tls_name
                .or(file.tls_name)
                .unwrap_or_else(|| domain.clone()),
            domain,
            muc_domain,
            tls: args.tls.or(file.tls).unwrap_or(Tls::Starttls),
            ca: args.ca.or(file.ca.map(rel)),
            mechanism,
            credentials: args.credentials.or(file.credentials.map(rel)),
            user_prefix: args
                .user_prefix
                .or(file.user_prefix)
                .unwrap_or_else(|| "load".into()),
            password: args.password.or(file.password),
            count: args
                .count
                .or(file.count)
                .or((history && args.occupants.or(file.occupants).is_none()).then_some(10)),
            first_index: args.first_index.or(file.first_index).unwrap_or(1),
            rooms,
            occupants: args.occupants.or(file.occupants),
            posters: args.posters.or(file.posters),
            rate,
            size: args.size.or(file.size).unwrap_or(100),
            duration_secs: args.duration.or(file.duration).unwrap_or(10.0),
            drain_secs: args.drain.or(file.drain).unwrap_or(5.0),
            ramp: args.ramp.or(file.ramp).unwrap_or(200.0),
            login_concurrency: args
                .login_concurrency
                .or(file.login_concurrency)
                .unwrap_or(200),
            hold_secs: args.hold_secs.or(file.hold_secs).unwrap_or(2.0),
            sources,
            pid: args.pid.or(file.pid),
            timeout_secs: args.timeout.or(file.timeout).unwrap_or(10.0),
            keepalive_secs: args.keepalive_secs.or(file.keepalive_secs).unwrap_or(60.0),
            json: args.json.or(file.json.map(rel)),
            fail_on_error: args.fail_on_error || file.fail_on_error.unwrap_or(false),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                bail!("{name} must be a positive number of seconds, not {v}")
            }
        };
        positive("duration", self.duration_secs)?;
        positive("timeout", self.timeout_secs)?;
        positive("keepalive_secs", self.keepalive_secs)?;
        for (name, v) in [("drain", self.drain_secs), ("hold_secs", self.hold_secs)] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{name} must be zero or more seconds, not {v}");
            }
        }
        if !(self.ramp.is_finite() && self.ramp >= 0.0) {
            bail!("ramp must be zero (unlimited) or more connections per second");
        }
        if self.login_concurrency == 0 {
            bail!("login_concurrency must be at least 1");
        }
        if self.rooms.is_empty() {
            bail!("at least one room is needed");
        }
        if self.occupants == Some(0) {
            bail!("occupants must be at least 1");
        }
        if self.mode == Mode::History && (self.protocol != Protocol::Xmpp || self.rooms.len() != 1)
        {
            bail!("history mode needs XMPP (MAM) and exactly one room");
        }
        if self.protocol == Protocol::Xmpp && self.tls != Tls::Off && self.ca.is_none() {
            bail!("--ca FILE is needed to verify the server's certificate (or use --tls off)");
        }
        Ok(())
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_secs)
    }
    pub fn drain(&self) -> Duration {
        Duration::from_secs_f64(self.drain_secs)
    }
    pub fn hold(&self) -> Duration {
        Duration::from_secs_f64(self.hold_secs)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs_f64(self.keepalive_secs)
    }
}

/// `127.0.0.2` or an IPv4 range `127.0.0.2-127.0.0.9` (at most 65,536 addresses).
pub fn parse_sources(spec: &str) -> Result<Vec<IpAddr>> {
    let spec = spec.trim();
    if let Some((a, b)) = spec.split_once('-') {
        let a: Ipv4Addr = a.trim().parse().with_context(|| format!("source {spec}"))?;
        let b: Ipv4Addr = b.trim().parse().with_context(|| format!("source {spec}"))?;
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a || b - a >= 65_536 {
            bail!("source range {spec} is empty or too large");
        }
        return Ok((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect());
    }
    Ok(vec![spec
        .parse()
        .with_context(|| format!("source address {spec:?}"))?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadArgs,
    }

    fn args(list: &[&str]) -> LoadArgs {
        let mut v = vec!["load"];
        v.extend_from_slice(list);
        Cli::parse_from(v).args
    }

    #[test]
    fn defaults() {
        let c = Config::merge(args(&["--tls", "off"]), Scenario::default(), Path::new(""))
            .expect("valid");
        assert_eq!(c.mode, Mode::Chat);
        assert_eq!(c.server, "127.0.0.1:5222");
        assert_eq!(c.rooms, vec!["loadroom1@conference.localhost"]);
        assert_eq!(c.rate, Rate::PerSecond(1.0));
        assert_eq!(c.mechanism, None);
    }

    #[test]
    fn flags_override_the_scenario() {
        let file: Scenario = toml::from_str(
            "mode = 'idle'\nrooms = 3\nrate = 5\nsize = 300\nca = 'ca.pem'\n\
             sources = ['127.0.0.2-127.0.0.4']\nmechanism = 'PLAIN'\ndomain = 'example.org'",
        )
        .expect("parses");
        let c = Config::merge(
            args(&["--rate", "closed-loop", "--size", "64", "--rooms", "9"]),
            file,
            Path::new("/etc/load"),
        )
        .expect("valid");
        assert_eq!(c.mode, Mode::Idle);
        assert_eq!(c.rate, Rate::ClosedLoop);
        assert_eq!(c.size, 64);
        assert_eq!(c.rooms.len(), 9);
        assert_eq!(c.rooms[0], "loadroom1@conference.example.org");
        assert_eq!(c.ca.as_deref(), Some(Path::new("/etc/load/ca.pem")));
        assert_eq!(c.sources.len(), 3);
        assert_eq!(c.mechanism, Some(Mechanism::Plain));
        assert_eq!(c.tls_name, "example.org");
    }

    #[test]
    fn rates_and_sources() {
        assert_eq!("2.5".parse::<Rate>(), Ok(Rate::PerSecond(2.5)));
        assert_eq!("Closed-Loop".parse::<Rate>(), Ok(Rate::ClosedLoop));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
        let file: Scenario = toml::from_str("rate = 'closed-loop'").expect("parses");
        assert!(matches!(
            file.rate.map(|r| r.parse()),
            Some(Ok(Rate::ClosedLoop))
        ));
        let file: Scenario = toml::from_str("rate = 0.5").expect("parses");
        assert!(matches!(
            file.rate.map(|r| r.parse()),
            Some(Ok(Rate::PerSecond(_)))
        ));
        assert!(parse_sources("127.0.0.9-127.0.0.2").is_err());
        assert_eq!(parse_sources("::1").expect("v6").len(), 1);
    }

    #[test]
    fn sip_settings() {
        let file: Scenario = toml::from_str(
            "protocol = 'sip'\nsip_transport = 'tcp'\nsip_join = '#join {nick} now'",
        )
        .expect("parses");
        // SIP needs no CA.
        let c = Config::merge(args(&["--sip-create", ""]), file, Path::new("")).expect("valid");
        assert_eq!(c.protocol, Protocol::Sip);
        assert_eq!(c.sip_transport, SipTransport::Tcp);
        assert_eq!(c.sip_join, "#join {nick} now");
        assert_eq!(c.sip_create, "");
        assert_eq!(c.sip_room_uri, "sip:{room}@{muc_domain}");
    }

    #[test]
    fn history_mode_defaults() {
        let c = Config::merge(
            args(&["--tls", "off", "--mode", "history", "--room", "big"]),
            Scenario::default(),
            Path::new(""),
        )
        .expect("valid");
        assert_eq!(c.mode, Mode::History);
        assert_eq!(c.rate, Rate::ClosedLoop);
        assert_eq!(c.count, Some(10));
        assert_eq!(c.rooms, vec!["big@conference.localhost"]);
        let c = Config::merge(
            args(&[
                "--tls", "off", "--room", "big", "--count", "3", "--rate", "2",
            ]),
            toml::from_str("mode = 'history'").expect("parses"),
            Path::new(""),
        )
        .expect("valid");
        assert_eq!((c.count, c.rate), (Some(3), Rate::PerSecond(2.0)));
        // One explicit room, over XMPP.
        for bad in [
            &["--tls", "off", "--mode", "history"][..],
            &[
                "--tls", "off", "--mode", "history", "--room", "a", "--room", "b",
            ],
            &["--mode", "history", "--room", "a", "--protocol", "sip"],
        ] {
            assert!(Config::merge(args(bad), Scenario::default(), Path::new("")).is_err());
        }
    }

    #[test]
    fn bad_scenarios_are_refused() {
        assert!(toml::from_str::<Scenario>("users = 3").is_err());
        assert!(Config::merge(args(&[]), Scenario::default(), Path::new("")).is_err());
        assert!(Config::merge(
            args(&["--tls", "off", "--duration", "0"]),
            Scenario::default(),
            Path::new("")
        )
        .is_err());
    }
}
