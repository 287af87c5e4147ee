//! `palaver serve`: prepares the data directory, store, defaults (category, lobby), occupant-id
//! secret, engine and TLS; binds every listener; prints the lines scripts parse on standard
//! output; runs until SIGINT/SIGTERM and then shuts down gracefully.

use crate::config::{redact_url, Config};
use crate::context::Context;
use crate::signals::Signals;
use anyhow::{anyhow, bail, Context as _};
use palaver_core::engine::{Engine, EngineConfig};
use palaver_core::{Category, Principal, RoomConfig, Store};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Length of a newly generated occupant-id secret.
const SECRET_LEN: usize = 32;
/// Shortest occupant-id secret accepted from an existing file.
const MIN_SECRET_LEN: usize = 16;
/// How long `serve` waits for listeners to stop after the shutdown signal.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Writes one line to standard output and flushes it (errors such as a closed pipe are ignored:
/// the server keeps running even if nobody reads its output).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Creates the data directory (mode 0700 when new) and makes `config.data_dir` absolute, so
/// the store URL and printed paths don't depend on the working directory later.
pub fn prepare_data_dir(config: &mut Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    config.data_dir = std::fs::canonicalize(dir)
        .with_context(|| format!("cannot resolve data directory {}", dir.display()))?;
    Ok(())
}

/// Opens (creating and migrating) the configured store.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.store_url();
    palaver_core::open_store(&url)
        .await
        .with_context(|| format!("cannot open store {}", redact_url(&url)))
}

/// Builds the engine settings from the configuration and the occupant-id secret.
pub fn engine_config(config: &Config, secret: Vec<u8>) -> EngineConfig {
    EngineConfig {
        local_domains: vec![config.domain.clone()],
        default_category: config.default_category().map(str::to_string),
        occupant_id_secret: secret,
        max_history: config.rooms.history_on_join.max(200),
        allow_client_room_creation: config.rooms.allow_client_room_creation,
        default_history_length: config.rooms.history_on_join,
        ..EngineConfig::default()
    }
}

/// Reads `<data_dir>/secret`, creating it (32 random bytes, mode 0600) when absent.
pub fn load_or_create_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = data_dir.join("secret");
    match std::fs::File::open(&path) {
        Ok(mut file) => {
            if let Ok(meta) = file.metadata() {
                if meta.mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "secret file is readable by others; chmod 600 it");
                }
            }
            let mut secret = Vec::new();
            file.read_to_end(&mut secret)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if secret.len() < MIN_SECRET_LEN {
                bail!(
                    "{} holds {} bytes; at least {MIN_SECRET_LEN} are needed (delete it to generate a new one)",
                    path.display(),
                    secret.len()
                );
            }
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; SECRET_LEN];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            file.write_all(&secret)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated occupant-id secret");
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}

/// Creates the default category and room when they are configured and absent.
pub async fn ensure_defaults(config: &Config, engine: &Engine) -> anyhow::Result<()> {
    let store = engine.store();
    let mut category = None;
    if let Some(name) = config.default_category() {
        category = store.get_category_by_name(name).await?;
        if category.is_none() {
            let new = Category {
                id: uuid::Uuid::new_v4(),
                name: name.to_string(),
                description: String::new(),
                creators: vec![Principal::Anyone],
                members: vec![Principal::Anyone],
                created_at: now_millis(),
            };
            // Pool nodes sharing one store may start together: another may win the race.
            match store.create_category(&new).await {
                Ok(()) => {
                    tracing::info!(category = name, "created default category");
                    category = Some(new);
                }
                Err(palaver_core::StoreError::AlreadyExists) => {
                    category = store.get_category_by_name(name).await?;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot create default category {name:?}"))
                }
            }
        }
    }
    let room = config.rooms.default_room.as_str();
    if !room.is_empty() && store.get_room(room).await?.is_none() {
        let rc = RoomConfig {
            title: title_case(room),
            persistent: true,
            public: true,
            history_length: config.rooms.history_on_join,
            ..RoomConfig::default()
        };
        match engine.create_room(room, rc, category.as_ref(), None).await {
            Ok(_) => tracing::info!(room, "created default room"),
            Err(palaver_core::engine::EngineError::Store(
                palaver_core::StoreError::AlreadyExists,
            )) => {}
            Err(e) => return Err(anyhow!("cannot create default room {room:?}: {e}")),
        }
    }
    Ok(())
}

/// `lobby` → `Lobby`.
fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Loads the configured certificate or generates the development one. Returns the rustls
/// config and what a client should trust (the dev CA's path, or "configured cert").
pub fn load_tls(
    config: &Config,
) -> anyhow::Result<(
    Arc<rustls::ServerConfig>,
    String,
    Arc<palaver_certs::ReloadableCert>,
)> {
    let (cert, key, trust) = if config.tls.cert.as_os_str().is_empty() {
        let (paths, generated) = dev_certs(config)?;
        let trust = paths.ca_cert.display().to_string();
        if generated {
            tracing::info!(ca = %trust, "generated development certificates");
        }
        (paths.cert, paths.key, trust)
    } else {
        let trust = "configured cert".to_string();
        (config.tls.cert.clone(), config.tls.key.clone(), trust)
    };
    let cannot = |e: palaver_certs::CertError| {
        anyhow!(
            "cannot load TLS certificate {} / key {}: {e}",
            cert.display(),
            key.display()
        )
    };
    // Reloadable: SIGHUP and changed files swap the certificate for new connections.
    let resolver = Arc::new(palaver_certs::ReloadableCert::new(&cert, &key).map_err(cannot)?);
    let tls = palaver_certs::server_config_reloadable(resolver.clone(), &[b"xmpp-client"])
        .map_err(cannot)?;
    Ok((tls, trust, resolver))
}

/// Generates (or reuses) the development CA and leaf under `<data_dir>/certs`.
pub fn dev_certs(config: &Config) -> anyhow::Result<(palaver_certs::DevCertPaths, bool)> {
    let dir: PathBuf = config.dev_cert_dir();
    palaver_certs::ensure_dev_certs(&dir, &config.cert_names()).map_err(|e| {
        anyhow!(
            "cannot create development certificates in {}: {e}",
            dir.display()
        )
    })
}

/// One bound listener and what it serves.
struct Bound {
    listener: TcpListener,
    direct_tls: bool,
    /// `palaver: listening …` line announcing it.
    announce: String,
}

async fn bind_all(config: &Config) -> anyhow::Result<Vec<Bound>> {
    let mut bound = Vec::new();
    let sets = [
        (&config.xmpp.c2s, false, "xmpp-starttls"),
        (&config.xmpp.c2s_direct_tls, true, "xmpp-tls"),
    ];
    for (addrs, direct_tls, kind) in sets {
        for addr in addrs {
            let listener = TcpListener::bind(addr.as_str())
                .await
                .with_context(|| format!("cannot listen on {addr} ({kind})"))?;
            let local = listener
                .local_addr()
                .with_context(|| format!("cannot read the address bound for {addr}"))?;
            bound.push(Bound {
                listener,
                direct_tls,
                announce: format!("palaver: listening {kind} {local}"),
            });
        }
    }
    Ok(bound)
}

/// The first client id of this process: in a pool, the node's origin number sits in the top
/// bits so ids are unique across the pool and tell which node a session is on.
fn first_client_id(config: &Config) -> u64 {
    let origin = config.pool.as_ref().map_or(0, |p| p.origin_of(&p.node_id));
    (u64::from(origin) << palaver_core::engine::CLIENT_ORIGIN_SHIFT) + 1
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(mut config: Config, source: crate::reload::ConfigSource) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    // First, so what the start-up records (pool state, certificate expiry) is in /metrics.
    let metrics_handle = if config.http.listen.is_empty() {
        None
    } else {
        crate::http::install_metrics(config.pool.as_ref().map(|p| p.node_id.as_str()))
    };
    if config.xmpp.c2s.is_empty() && config.xmpp.c2s_direct_tls.is_empty() {
        tracing::warn!("no XMPP listener configured (xmpp.c2s and xmpp.c2s_direct_tls are empty)");
    }
    // Bind first: a port conflict is the most common start failure and touches nothing.
    let bound = bind_all(&config).await?;
    let sip_listeners = crate::sip::bind(&config.sip).await?;
    let http_listeners = crate::http::bind(&config.http.listen).await?;
    let pool_listener = match &config.pool {
        Some(pool) => Some(crate::pool::bind(pool).await?),
        None => None,
    };
    prepare_data_dir(&mut config)?;
    let store = open_store(&config).await?;
    let secret = load_or_create_secret(&config.data_dir)?;
    let engine = Engine::new(store.clone(), engine_config(&config, secret.clone()));
    let (compliance_stop, compliance_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut compliance_sink = None;
    if config.compliance.enabled {
        // Rooms record into the outbox (main store); the drainer copies it to the compliance
        // database and keeps retrying while that database is down.
        let (sink, _writer) = palaver_core::compliance::ComplianceSink::start(store.clone());
        compliance_sink = Some(sink.clone());
        engine.set_compliance(sink);
        let url = config.compliance.url_or_default(&config.data_dir);
        let drainer = palaver_core::compliance::Drainer::new(store.clone(), &url);
        tokio::spawn(drainer.run(async {
            let _ = compliance_stopped.await;
        }));
        tracing::info!("compliance archive on");
    }
    ensure_defaults(&config, &engine).await?;
    let (tls, trust, cert) = load_tls(&config)?;
    let pool_tls = match &pool_listener {
        Some(_) => Some(crate::pool::load_tls(&config)?),
        None => None,
    };
    for b in &bound {
        say(&b.announce);
    }
    for line in &sip_listeners.announcements {
        say(line);
    }
    if let Some((_, line)) = &pool_listener {
        say(line);
    }
    for (_, line) in &http_listeners {
        say(line);
    }

    // The engine joins the pool before any client can send it a command.
    let redirect = tokio::sync::watch::Sender::new(None);
    let pool = match (pool_listener, pool_tls, config.pool.clone()) {
        (Some((listener, _)), Some(pool_tls), Some(cfg)) => Some(crate::pool::start(
            cfg,
            pool_tls,
            listener,
            engine.clone(),
            redirect.clone(),
        )),
        _ => None,
    };
    let http_port = http_listeners
        .first()
        .and_then(|(l, _)| l.local_addr().ok())
        .map(|a| a.port());
    let files = match http_port {
        Some(port) => Some(crate::files::open(&config, store.clone(), port).await?),
        None => None,
    };
    if let (Some(files), Some(sink)) = (&files, compliance_sink) {
        files.set_compliance(sink);
    }
    if let Some(files) = &files {
        engine.set_history_rewriter(files.clone());
    }
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let config = Arc::new(config);
    let ctx = Arc::new(Context {
        config: config.clone(),
        store: store.clone(),
        engine: engine.clone(),
        tls,
        shutdown: shutdown_rx,
        redirect,
        next_client: std::sync::atomic::AtomicU64::new(first_client_id(&config)),
        invitation_relay: std::sync::OnceLock::new(),
        files: files.clone(),
    });
    let svc = crate::xmpp::XmppService::new(ctx.clone());
    tokio::spawn(crate::xmpp::sample_queues(svc.clone()));
    let mut tasks = Vec::with_capacity(bound.len());
    for b in bound {
        let task = crate::xmpp::run_c2s(svc.clone(), b.listener, b.direct_tls);
        tasks.push(tokio::spawn(task));
    }
    let sip = crate::sip::SipService::new(ctx.clone(), svc.clone(), &secret);
    if let Some(pool) = &pool {
        sip.attach_pool(pool.membership.clone());
    }
    tasks.extend(sip.start(sip_listeners));
    if !http_listeners.is_empty() {
        let state = crate::http::HttpState {
            metrics: metrics_handle.clone(),
            store: store.clone(),
            pool: pool.as_ref().map(|p| p.membership.clone()),
            files,
        };
        for (listener, _) in http_listeners {
            let run = crate::http::run(
                listener,
                ctx.tls.clone(),
                state.clone(),
                ctx.shutdown.clone(),
            );
            tasks.push(tokio::spawn(run));
        }
    }
    if let Some(pool) = &pool {
        svc.router.set_peers(pool.membership.clone());
        let xmpp = svc.clone();
        pool.membership
            .on_user_stanza(Box::new(move |user, resource, stanza| {
                xmpp.router.deliver_local(user, resource, stanza);
            }));
        let (xmpp, sip_svc, engine) = (svc.clone(), sip.clone(), engine.clone());
        pool.membership.on_load(Box::new(move || {
            let sip_users: std::collections::HashSet<String> = sip_svc
                .occupants
                .iter()
                .map(|e| e.key().0.clone())
                .collect();
            let users = xmpp.router.users() + sip_users.len();
            let rooms = engine.loaded_room_count();
            (
                u32::try_from(users).unwrap_or(u32::MAX),
                u32::try_from(rooms).unwrap_or(u32::MAX),
            )
        }));
    }

    say(&format!(
        "palaver: domain {}, MUC {}, store {}, CA to trust: {trust}",
        config.domain,
        config.muc_domain(),
        redact_url(&config.store_url()),
    ));
    say(&format!(
        "palaver: add a user with: palaver user add alice@{} --password secret",
        config.domain
    ));
    say("palaver: ready");
    tracing::info!(domain = %config.domain, backend = store.backend(), "palaver ready");

    let reloader =
        crate::reload::Reloader::new(source, cert, svc.conn_limit.clone(), sip.conn_limit.clone());
    tokio::spawn(reloader.clone().watch(ctx.shutdown.clone()));
    let sig = loop {
        match signals.next().await {
            crate::signals::Received::Stop(sig) => break sig,
            crate::signals::Received::Reload => reloader.reload_config(),
        }
    };
    tracing::info!(
        signal = sig,
        "shutting down (send the signal again to stop at once)"
    );
    let graceful = async {
        engine.shutdown().await;
        let _ = shutdown_tx.send(true);
        let _ = tokio::time::timeout(STOP_GRACE, futures::future::join_all(tasks)).await;
        // Let session tasks flush their last stanzas (the 332s) and close their streams.
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    tokio::select! {
        () = graceful => {}
        sig = signals.recv() => {
            tracing::warn!(signal = sig, "second signal: stopping without waiting");
        }
    }
    drop(pool);
    drop(ctx);
    drop(svc);
    drop(sip);
    let _ = compliance_stop.send(());
    say("palaver: stopped");
    Ok(())
}
