//! Files posted to rooms (XEP-0363 HTTP File Upload): [`FileService`] hands out upload slots
//! (a signed PUT URL and the GET URL the file will have), checks the size limit and the
//! uploader's quota, and checks the grants the HTTP handlers ([`http`]) receive. The bytes go
//! to the file store (`palaver_core::files`), the metadata to the SQL store once the bytes are
//! in. URLs carry HMAC signatures ([`token`]) made with a secret every pool node shares, so a
//! slot given out by one node is served by any node that reaches the same file store.

pub mod http;
mod links;
pub mod token;

use palaver_core::files::FileStore;
use palaver_core::model::{Millis, RoomId, UserId};
use palaver_core::Store;
use serde::Deserialize;
use std::sync::Arc;
use token::{pct, UrlSigner};

/// `[files]`: uploads to rooms.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Largest file accepted (bytes), advertised in disco as `max-file-size`.
    pub max_file_bytes: u64,
    /// Total bytes one user may have stored; `0` means no quota.
    pub quota_bytes_per_user: u64,
    /// How long an upload slot's PUT URL stays valid (seconds).
    pub slot_ttl_secs: u64,
    /// How long a download URL stays valid (seconds); `0` means it never expires. A room's
    /// history (on join, archive queries) serves its occupants freshly signed links.
    pub download_ttl_secs: u64,
    /// The HTTPS base URL clients reach palaver's HTTP listener at; empty means
    /// `https://<domain>:<port of the first [http] listen address>`.
    pub public_url: String,
    /// The upload service's JID; empty means `upload.<domain>`.
    pub upload_domain: String,
    /// Where the local file store keeps blobs; empty means `<data_dir>/files`. Pool nodes that
    /// share one directory (a network share) serve each other's uploads.
    pub dir: std::path::PathBuf,
    /// Where blobs live: `local` (the directory `dir`) or `s3` (the bucket of `[files.s3]`).
    pub backend: String,
    /// `[files.s3]`: an S3-compatible bucket (AWS, MinIO, Ceph RGW, Garage, …).
    pub s3: S3Config,
}

/// `[files.s3]`. Empty values fall back to the standard `AWS_*` environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, …).
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// The service's URL; empty means AWS itself (`https://s3.<region>.amazonaws.com`).
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Key prefix for palaver's objects inside the bucket (e.g. `palaver/files`).
    pub prefix: String,
    /// Allow a plain-HTTP endpoint (only for a service on a trusted local network).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl S3Config {
    /// The bucket as an object store.
    fn open(&self) -> anyhow::Result<object_store::aws::AmazonS3> {
        use anyhow::Context as _;
        anyhow::ensure!(!self.bucket.is_empty(), "[files.s3] bucket is required");
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_allow_http(self.allow_http);
        let set = |v: &str| (!v.is_empty()).then(|| v.to_string());
        if let Some(v) = set(&self.endpoint) {
            b = b.with_endpoint(v);
        }
        if let Some(v) = set(&self.region) {
            b = b.with_region(v);
        }
        if let Some(v) = set(&self.access_key_id) {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = set(&self.secret_access_key) {
            b = b.with_secret_access_key(v);
        }
        b.build()
            .with_context(|| format!("[files.s3] bucket {}", self.bucket))
    }
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_file_bytes: 100 * 1024 * 1024,
            quota_bytes_per_user: 1024 * 1024 * 1024,
            slot_ttl_secs: 300,
            download_ttl_secs: 7 * 24 * 3600,
            public_url: String::new(),
            upload_domain: String::new(),
            dir: std::path::PathBuf::new(),
            backend: "local".to_string(),
            s3: S3Config::default(),
        }
    }
}

/// Why a slot is refused.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("the file is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
    #[error("the upload would exceed your quota of {quota} bytes")]
    Quota { quota: u64 },
    #[error("{0}")]
    Bad(&'static str),
    #[error("store: {0}")]
    Store(#[from] palaver_core::StoreError),
}

/// A granted slot: where to PUT and where the file will be.
#[derive(Debug, Clone)]
pub struct Slot {
    pub put_url: String,
    pub get_url: String,
}

/// What a PUT URL grants (every field is covered by its signature).
#[derive(Debug, Clone, Deserialize)]
pub struct UploadGrant {
    /// Uploader (bare JID).
    pub u: String,
    /// File name as the client gave it.
    pub n: String,
    /// Exact size in bytes.
    pub z: u64,
    /// Content type.
    pub t: String,
    /// Room id, or empty.
    #[serde(default)]
    pub r: String,
    /// Expiry (ms since the epoch).
    pub e: Millis,
    /// Signature.
    pub s: String,
}

/// Opens the file service of a server whose first HTTP listener has `http_port`: blobs in
/// `files.dir` (default `<data_dir>/files`), the URL key from the store's shared `files`
/// secret.
pub async fn open(
    config: &crate::config::Config,
    store: Arc<dyn Store>,
    http_port: u16,
) -> anyhow::Result<Arc<FileService>> {
    use anyhow::Context as _;
    let blobs: Arc<dyn FileStore> = match config.files.backend.as_str() {
        "local" | "" => {
            let dir = if config.files.dir.as_os_str().is_empty() {
                config.data_dir.join("files")
            } else {
                config.files.dir.clone()
            };
            let local = palaver_core::files::LocalFileStore::open(&dir)
                .await
                .with_context(|| format!("opening the file store in {}", dir.display()))?;
            Arc::new(local)
        }
        "s3" => {
            let s3 = config.files.s3.open()?;
            Arc::new(palaver_core::files::ObjectFileStore::new(
                Arc::new(s3),
                &config.files.s3.prefix,
            ))
        }
        other => anyhow::bail!("[files] backend must be \"local\" or \"s3\", not {other:?}"),
    };
    let fresh: [u8; 32] = rand::random();
    let key = store
        .shared_secret("files", &fresh)
        .await
        .context("reading the files secret")?;
    let base_url = match config.files.public_url.as_str() {
        "" => format!("https://{}:{http_port}", config.domain),
        url => url.to_string(),
    };
    Ok(Arc::new(FileService::new(
        config.files.clone(),
        blobs,
        store,
        &key,
        base_url,
    )))
}

/// Everything the upload slot IQ and the HTTP handlers share.
pub struct FileService {
    pub config: FilesConfig,
    pub blobs: Arc<dyn FileStore>,
    pub store: Arc<dyn Store>,
    signer: UrlSigner,
    base_url: String,
    /// The compliance archive's sink, when `[compliance]` is on: uploads and downloads are
    /// recorded.
    compliance: std::sync::OnceLock<palaver_core::compliance::ComplianceSink>,
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

impl FileService {
    /// `key` signs the URLs (the pool-wide `files` secret); `base_url` is where clients reach
    /// the HTTP listener, without a trailing slash.
    pub fn new(
        config: FilesConfig,
        blobs: Arc<dyn FileStore>,
        store: Arc<dyn Store>,
        key: &[u8],
        base_url: String,
    ) -> FileService {
        FileService {
            config,
            blobs,
            store,
            signer: UrlSigner::new(key),
            base_url: base_url.trim_end_matches('/').to_string(),
            compliance: std::sync::OnceLock::new(),
        }
    }

    /// Records uploads and downloads in the compliance archive from now on.
    pub fn set_compliance(&self, sink: palaver_core::compliance::ComplianceSink) {
        let _ = self.compliance.set(sink);
    }

    /// Records a file event in the compliance archive (when it is on): `actor` is the
    /// uploader, or empty for a download (a signed URL names no user).
    pub fn record(&self, kind: palaver_core::compliance::EventKind, actor: &str, detail: String) {
        if let Some(sink) = self.compliance.get() {
            sink.record(palaver_core::compliance::ComplianceEvent {
                at: now_ms(),
                room: String::new(),
                actor: actor.to_string(),
                protocol: "http".into(),
                kind,
                detail,
            });
        }
    }

    /// A slot for `uploader`'s file, tied to `room` when the request went to a room.
    pub async fn slot(
        &self,
        uploader: &UserId,
        name: &str,
        size: u64,
        mime: &str,
        room: Option<RoomId>,
    ) -> Result<Slot, SlotError> {
        if name.is_empty() || name.len() > 1024 {
            return Err(SlotError::Bad("the filename must have 1 to 1024 bytes"));
        }
        if mime.len() > 255 || mime.chars().any(|c| c.is_control()) {
            return Err(SlotError::Bad("the content-type is not acceptable"));
        }
        if size > self.config.max_file_bytes {
            return Err(SlotError::TooLarge {
                max: self.config.max_file_bytes,
            });
        }
        let quota = self.config.quota_bytes_per_user;
        if quota > 0
            && self
                .store
                .uploader_bytes(uploader)
                .await?
                .saturating_add(size)
                > quota
        {
            return Err(SlotError::Quota { quota });
        }
        let id = uuid::Uuid::new_v4();
        let expires = now_ms() + (self.config.slot_ttl_secs as Millis) * 1000;
        let room = room.map(|r| r.to_string()).unwrap_or_default();
        let size_s = size.to_string();
        let exp_s = expires.to_string();
        let id_s = id.to_string();
        let sig = self.signer.sign(
            "put",
            &[&id_s, uploader.as_str(), name, &size_s, mime, &room, &exp_s],
        );
        let put_url = format!(
            "{}/upload/{id}/{}?u={}&n={}&z={size}&t={}&r={room}&e={expires}&s={sig}",
            self.base_url,
            pct(&token::clean_name(name)),
            pct(uploader.as_str()),
            pct(name),
            pct(mime),
        );
        Ok(Slot {
            put_url,
            get_url: self.download_url(id, name),
        })
    }

    /// Whether `grant` is a valid, unexpired PUT grant for slot `id`.
    pub fn check_grant(&self, id: uuid::Uuid, g: &UploadGrant) -> bool {
        g.e >= now_ms()
            && self.signer.verify(
                "put",
                &[
                    &id.to_string(),
                    &g.u,
                    &g.n,
                    &g.z.to_string(),
                    &g.t,
                    &g.r,
                    &g.e.to_string(),
                ],
                &g.s,
            )
    }

    /// A fresh expiry (`0`: never) and its signature for downloading file `id`.
    fn download_signature(&self, id: uuid::Uuid) -> (Millis, String) {
        let expires = match self.config.download_ttl_secs {
            0 => 0,
            ttl => now_ms() + (ttl as Millis) * 1000,
        };
        let sig = self
            .signer
            .sign("get", &[&id.to_string(), &expires.to_string()]);
        (expires, sig)
    }

    /// The signed GET URL of file `id`.
    pub fn download_url(&self, id: uuid::Uuid, name: &str) -> String {
        let (expires, sig) = self.download_signature(id);
        format!(
            "{}/files/{id}/{}?e={expires}&s={sig}",
            self.base_url,
            pct(&token::clean_name(name))
        )
    }

    /// Ties the files whose download URLs `sender` posted in `room` to that room, each the
    /// first time it is posted (only by its uploader). Cheap when the text holds no URL of
    /// ours; store errors are logged, never surfaced (the post itself is already stored).
    pub async fn note_post(&self, room: &str, sender: &UserId, body: &str) {
        let prefix = format!("{}/files/", self.base_url);
        let ids: Vec<uuid::Uuid> = body
            .match_indices(&prefix)
            .filter_map(|(at, _)| {
                let rest = &body[at + prefix.len()..];
                uuid::Uuid::parse_str(rest.get(..36)?).ok()
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        let room_id = match self.store.get_room(room).await {
            Ok(Some(r)) => r.id,
            _ => return,
        };
        for id in ids {
            match self.store.get_file(id).await {
                Ok(Some(f)) if f.room.is_none() && &f.uploader == sender => {
                    if let Err(e) = self.store.set_file_room(id, room_id).await {
                        tracing::warn!(%id, error = %e, "could not tie a file to its room");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%id, error = %e, "file lookup failed"),
            }
        }
    }

    /// Whether `(expires, sig)` from a GET URL allow downloading file `id` now.
    pub fn check_download(&self, id: uuid::Uuid, expires: Millis, sig: &str) -> bool {
        (expires == 0 || expires >= now_ms())
            && self
                .signer
                .verify("get", &[&id.to_string(), &expires.to_string()], sig)
    }
}
