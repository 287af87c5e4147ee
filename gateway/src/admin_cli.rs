//! The administrative subcommands (`user`, `room`, `category`, `certs`): each opens the store of
//! the configured data directory (creating and migrating it when needed), does one thing, and
//! prints the result on standard output. Errors end the process with status 1.

use crate::bootstrap::{self, now_millis, say};
use crate::cli::{
    CategoryCommand, CertsCommand, PasswordSource, RoomCommand, RoomCreateArgs, UserCommand,
};
use crate::config::Config;
use anyhow::{anyhow, bail, Context as _};
use palaver_core::engine::{Engine, EngineConfig};
use palaver_core::{Category, Principal, RoomConfig, Store, StoreError, UserId};
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;

async fn open(config: &mut Config) -> anyhow::Result<Arc<dyn Store>> {
    bootstrap::prepare_data_dir(config)?;
    bootstrap::open_store(config).await
}

fn parse_jid(jid: &str) -> anyhow::Result<UserId> {
    UserId::parse(jid).ok_or_else(|| {
        anyhow!("{jid:?} is not a valid user address (expected local@domain, e.g. alice@localhost)")
    })
}

fn read_password(src: &PasswordSource) -> anyhow::Result<String> {
    let password = match &src.password {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    Ok(password)
}

/// `palaver user …`
pub async fn user(mut config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = open(&mut config).await?;
    match cmd {
        UserCommand::Add { jid, password } => {
            let user = parse_jid(&jid)?;
            let password = read_password(&password)?;
            if user.domain() != config.domain {
                eprintln!(
                    "palaver: warning: {user} is not in the served domain {}; it cannot log in here",
                    config.domain
                );
            }
            let record =
                palaver_core::credentials::new_user_record(user.clone(), &password, now_millis());
            match store.create_user(&record).await {
                Ok(()) => say(&format!("user {user} added")),
                Err(StoreError::AlreadyExists) => {
                    bail!("user {user} already exists (use `palaver user passwd` to change the password)")
                }
                Err(e) => return Err(e).with_context(|| format!("cannot add user {user}")),
            }
        }
        UserCommand::Passwd { jid, password } => {
            let user = parse_jid(&jid)?;
            let password = read_password(&password)?;
            let created_at = match store.get_user(&user).await? {
                Some(existing) => existing.created_at,
                None => bail!("no user {user}"),
            };
            let record =
                palaver_core::credentials::new_user_record(user.clone(), &password, created_at);
            match store.update_user(&record).await {
                Ok(()) => say(&format!("password of {user} changed")),
                Err(StoreError::NotFound) => bail!("no user {user}"),
                Err(e) => return Err(e).with_context(|| format!("cannot update user {user}")),
            }
        }
        UserCommand::Del { jid } => {
            let user = parse_jid(&jid)?;
            if !store.delete_user(&user).await? {
                bail!("no user {user}");
            }
            say(&format!("user {user} deleted"));
        }
        UserCommand::List => {
            for user in store.list_users().await? {
                say(user.as_str());
            }
        }
        UserCommand::Import { file } => {
            crate::user_import::run(store, &file, &config.domain).await?;
        }
    }
    Ok(())
}

/// `palaver room …`
pub async fn room(mut config: Config, cmd: RoomCommand) -> anyhow::Result<()> {
    let store = open(&mut config).await?;
    match cmd {
        RoomCommand::Create(args) => room_create(&config, store, args).await?,
        RoomCommand::List => {
            let names: HashMap<uuid::Uuid, String> = store
                .list_categories()
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect();
            let mut rows = vec![[
                "NAME".to_string(),
                "CATEGORY".into(),
                "TITLE".into(),
                "VISIBILITY".into(),
                "MEMBERS-ONLY".into(),
                "PERSISTENT".into(),
            ]];
            for r in store.list_rooms().await? {
                let category = r
                    .category
                    .map(|id| names.get(&id).cloned().unwrap_or_else(|| id.to_string()))
                    .unwrap_or_else(|| "-".into());
                rows.push([
                    r.name,
                    category,
                    r.config.title,
                    if r.config.public { "public" } else { "private" }.into(),
                    yes_no(r.config.members_only),
                    yes_no(r.config.persistent),
                ]);
            }
            print_table(&rows);
        }
        RoomCommand::Delete { name } => {
            let name = name.trim().to_lowercase();
            let Some(record) = store.get_room(&name).await? else {
                bail!("no room {name}");
            };
            if !store.delete_room(record.id).await? {
                bail!("no room {name}");
            }
            say(&format!("room {name} deleted"));
        }
    }
    Ok(())
}

async fn room_create(
    config: &Config,
    store: Arc<dyn Store>,
    args: RoomCreateArgs,
) -> anyhow::Result<()> {
    let category = if args.no_category {
        None
    } else if let Some(name) = &args.category {
        match store.get_category_by_name(name).await? {
            Some(c) => Some(c),
            None => bail!("no category {name:?} (create it with `palaver category create`)"),
        }
    } else {
        match config.default_category() {
            Some(name) => store.get_category_by_name(name).await?,
            None => None,
        }
    };
    let owner = args.owner.as_deref().map(parse_jid).transpose()?;
    let rc = RoomConfig {
        title: args.title.unwrap_or_default(),
        description: args.description.unwrap_or_default(),
        persistent: true,
        public: !args.private,
        members_only: args.members_only,
        moderated: args.moderated,
        password: args.password.filter(|p| !p.is_empty()),
        history_length: config.rooms.history_on_join,
        ..RoomConfig::default()
    };
    let engine = Engine::new(store, EngineConfig::default());
    let record = match engine
        .create_room(&args.name, rc, category.as_ref(), owner.as_ref())
        .await
    {
        Ok(r) => r,
        Err(palaver_core::engine::EngineError::Store(StoreError::AlreadyExists)) => {
            bail!("room {} already exists", args.name.trim().to_lowercase())
        }
        Err(e) => bail!("cannot create room {:?}: {e}", args.name),
    };
    let category = category.map(|c| format!(" in category {}", c.name));
    say(&format!(
        "room {}@{} created{}",
        record.name,
        config.muc_domain(),
        category.unwrap_or_default()
    ));
    Ok(())
}

fn parse_principals(what: &str, list: &str) -> anyhow::Result<Vec<Principal>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Principal::parse(item) {
            Some(p) => out.push(p),
            None => bail!("{what}: {item:?} is not `*`, `@domain` or `user@domain`"),
        }
    }
    if out.is_empty() {
        bail!("{what}: the list is empty (use `*` for everyone)");
    }
    Ok(out)
}

fn join_principals(list: &[Principal]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `palaver category …`
pub async fn category(mut config: Config, cmd: CategoryCommand) -> anyhow::Result<()> {
    let store = open(&mut config).await?;
    match cmd {
        CategoryCommand::Create {
            name,
            description,
            creators,
            members,
        } => {
            let name = name.trim().to_string();
            if name.is_empty() {
                bail!("the category name must not be empty");
            }
            let category = Category {
                id: uuid::Uuid::new_v4(),
                name: name.clone(),
                description,
                creators: parse_principals("--creators", &creators)?,
                members: parse_principals("--members", &members)?,
                created_at: now_millis(),
            };
            match store.create_category(&category).await {
                Ok(()) => say(&format!("category {name} created")),
                Err(StoreError::AlreadyExists) => bail!("category {name:?} already exists"),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create category {name:?}"))
                }
            }
        }
        CategoryCommand::List => {
            let mut rows = vec![[
                "NAME".to_string(),
                "CREATORS".into(),
                "MEMBERS".into(),
                "DESCRIPTION".into(),
            ]];
            for c in store.list_categories().await? {
                rows.push([
                    c.name,
                    join_principals(&c.creators),
                    join_principals(&c.members),
                    c.description,
                ]);
            }
            print_table(&rows);
        }
        CategoryCommand::Delete { name } => {
            let Some(c) = store.get_category_by_name(name.trim()).await? else {
                bail!("no category {name:?}");
            };
            if !store.delete_category(c.id).await? {
                bail!("no category {name:?}");
            }
            say(&format!("category {} deleted", c.name));
        }
    }
    Ok(())
}

/// `palaver certs …`
pub fn certs(mut config: Config, cmd: CertsCommand) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Dev => {
            bootstrap::prepare_data_dir(&mut config)?;
            let (paths, generated) = bootstrap::dev_certs(&config)?;
            say(&format!(
                "{} development certificates for {}",
                if generated {
                    "generated"
                } else {
                    "kept existing"
                },
                config.cert_names().join(", ")
            ));
            say(&format!("ca_cert {}", paths.ca_cert.display()));
            say(&format!("ca_key  {}", paths.ca_key.display()));
            say(&format!("cert    {}", paths.cert.display()));
            say(&format!("key     {}", paths.key.display()));
            say(&format!("clients should trust {}", paths.ca_cert.display()));
        }
        CertsCommand::Pool { node, ca_dir, out } => {
            if !palaver_core::pool::valid_id(&node) {
                anyhow::bail!(
                    "{node:?} is not a valid node id (1-63 of a-z, 0-9, -, not first or last)"
                );
            }
            let out = out.unwrap_or_else(|| ca_dir.clone());
            let name = palaver_core::pool::cert_name(&node);
            let (paths, generated) = palaver_certs::ensure_pool_certs(&ca_dir, &out, &name)?;
            say(&format!(
                "{} pool certificate for {name}",
                if generated { "issued" } else { "kept existing" }
            ));
            say(&format!(
                "ca_key  {} (keep it off the nodes)",
                paths.ca_key.display()
            ));
            say("for this node's palaver.toml:");
            say("[pool]");
            say(&format!("node_id = \"{node}\""));
            say(&format!("ca = {:?}", paths.ca.display().to_string()));
            say(&format!("cert = {:?}", paths.cert.display().to_string()));
            say(&format!("key = {:?}", paths.key.display().to_string()));
        }
    }
    Ok(())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Prints rows as left-aligned columns separated by two spaces (first row is the header).
fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        say(line.trim_end());
    }
}
