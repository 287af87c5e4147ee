//! The HTTP side of file upload: `PUT /upload/<id>/<name>?…` stores the body of a granted
//! slot (413 before reading past the slot's size or the limit, 400 when the body doesn't match
//! Content-Length, 403 for a bad or expired grant, 409 for a slot used twice) and
//! `GET /files/<id>/<name>?e=…&s=…` serves a file to whoever holds its signed URL, with single
//! byte ranges (RFC 9110 §14), a safe Content-Type and a sanitised Content-Disposition.

use super::token::content_disposition;
use super::FileService;
use crate::http::HttpState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use futures::{StreamExt as _, TryStreamExt as _};
use palaver_core::compliance::EventKind;
use palaver_core::files::{BlobId, ByteStream, FileError};
use palaver_core::model::{FileRecord, Millis, UserId};
use palaver_core::StoreError;
use serde::Deserialize;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Longest pause between two chunks of an upload's body.
const BODY_IDLE: Duration = Duration::from_secs(30);

/// The file routes (their handlers answer 404 when files are off).
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/upload/{id}/{name}", put(upload))
        .route("/files/{id}/{name}", get(download))
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// The request body as a byte stream that fails when the client pauses longer than
/// [`BODY_IDLE`].
fn body_stream(body: Body) -> ByteStream {
    let inner = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .boxed();
    futures::stream::unfold(Some(inner), |state| async move {
        let mut s = state?;
        match tokio::time::timeout(BODY_IDLE, s.next()).await {
            Ok(Some(item)) => Some((item, Some(s))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the upload stalled",
                )),
                None,
            )),
        }
    })
    .boxed()
}

async fn upload(
    State(state): State<HttpState>,
    Path((id, _name)): Path<(String, String)>,
    Query(grant): Query<super::UploadGrant>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(files) = state.files.clone() else {
        return plain(StatusCode::NOT_FOUND, "file upload is off");
    };
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return plain(StatusCode::FORBIDDEN, "not an upload slot");
    };
    if !files.check_grant(id, &grant) {
        return plain(
            StatusCode::FORBIDDEN,
            "the upload URL is invalid or expired",
        );
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(length) = length else {
        return plain(StatusCode::LENGTH_REQUIRED, "Content-Length is required");
    };
    if length > grant.z || length > files.config.max_file_bytes {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "larger than the slot allows");
    }
    if length != grant.z {
        return plain(
            StatusCode::BAD_REQUEST,
            "Content-Length is not the slot's size",
        );
    }
    match files.store.get_file(id).await {
        Ok(None) => {}
        Ok(Some(_)) => return plain(StatusCode::CONFLICT, "this slot has been used"),
        Err(e) => return store_failed(e),
    }
    store_upload(&files, id, grant, body_stream(body)).await
}

async fn store_upload(
    files: &Arc<FileService>,
    id: uuid::Uuid,
    grant: super::UploadGrant,
    data: ByteStream,
) -> Response {
    let blob = match files.blobs.put(data, grant.z).await {
        Ok(b) => b,
        Err(FileError::TooLarge { .. }) => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "larger than the slot allows")
        }
        Err(FileError::Aborted(why)) => {
            tracing::debug!(%id, %why, "upload cut short");
            return plain(StatusCode::BAD_REQUEST, "the body was cut short");
        }
        Err(e) => {
            tracing::warn!(%id, error = %e, "file store write failed");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file could not be stored",
            );
        }
    };
    let record = FileRecord {
        id,
        room: grant.r.parse().ok(),
        uploader: UserId(grant.u),
        name: grant.n,
        mime: grant.t,
        size: blob.size,
        sha256: blob.id.hex(),
        created_at: now_ms(),
    };
    if blob.size != grant.z {
        forget_blob(files, &blob.id).await;
        return plain(StatusCode::BAD_REQUEST, "the body is not the slot's size");
    }
    match files.store.insert_file(&record).await {
        Ok(()) => {
            let detail = serde_json::json!({
                "id": id.to_string(), "name": record.name, "mime": record.mime,
                "size": record.size, "sha256": record.sha256, "room_id": record.room,
            });
            files.record(
                EventKind::FileUpload,
                record.uploader.as_str(),
                detail.to_string(),
            );
            metrics::counter!("palaver_file_uploads_total").increment(1);
            metrics::counter!("palaver_file_upload_bytes_total").increment(blob.size);
            tracing::info!(%id, uploader = %record.uploader.as_str(), size = blob.size, "file uploaded");
            plain(StatusCode::CREATED, "stored")
        }
        Err(StoreError::AlreadyExists) => plain(StatusCode::CONFLICT, "this slot has been used"),
        Err(e) => {
            forget_blob(files, &blob.id).await;
            store_failed(e)
        }
    }
}

/// Deletes a blob no file refers to (the bytes of a refused upload).
async fn forget_blob(files: &FileService, id: &BlobId) {
    if matches!(files.store.blob_refs(&id.hex()).await, Ok(0)) {
        let _ = files.blobs.delete(id).await;
    }
}

fn store_failed(e: StoreError) -> Response {
    tracing::warn!(error = %e, "file metadata store failed");
    plain(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
}

#[derive(Deserialize)]
struct DownloadQuery {
    e: Millis,
    s: String,
}

async fn download(
    State(state): State<HttpState>,
    Path((id, _name)): Path<(String, String)>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(files) = state.files.clone() else {
        return plain(StatusCode::NOT_FOUND, "file upload is off");
    };
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return plain(StatusCode::NOT_FOUND, "no such file");
    };
    if !files.check_download(id, q.e, &q.s) {
        return plain(
            StatusCode::FORBIDDEN,
            "the download URL is invalid or expired",
        );
    }
    let file = match files.store.get_file(id).await {
        Ok(Some(f)) => f,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such file"),
        Err(e) => return store_failed(e),
    };
    let Some(blob) = BlobId::from_hex(&file.sha256) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "corrupt file record");
    };
    let range = match requested_range(&headers, file.size) {
        Ok(r) => r,
        Err(()) => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", file.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let stream = match files.blobs.get(&blob, range.clone()).await {
        Ok(s) => s,
        Err(FileError::NotFound) => return plain(StatusCode::NOT_FOUND, "no such file"),
        Err(e) => {
            tracing::warn!(%id, error = %e, "file store read failed");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file could not be read",
            );
        }
    };
    let detail = serde_json::json!({
        "id": id.to_string(), "name": file.name, "size": file.size,
        "range": range.as_ref().map(|r| [r.start, r.end]), "room_id": file.room,
    });
    files.record(EventKind::FileDownload, "", detail.to_string());
    metrics::counter!("palaver_file_downloads_total").increment(1);
    file_response(&file, range, Body::from_stream(stream))
}

/// The response headers of a download (and 206 for a range).
fn file_response(file: &FileRecord, range: Option<Range<u64>>, body: Body) -> Response {
    let (mime, inline) = served_type(&file.mime);
    let disposition = content_disposition(if inline { "inline" } else { "attachment" }, &file.name);
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    let mut set = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, &mime);
    set(header::CONTENT_DISPOSITION, &disposition);
    set(header::ACCEPT_RANGES, "bytes");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    );
    set(header::CACHE_CONTROL, "private, max-age=86400");
    match range {
        Some(r) => {
            set(header::CONTENT_LENGTH, &(r.end - r.start).to_string());
            set(
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{}", r.start, r.end - 1, file.size),
            );
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        None => set(header::CONTENT_LENGTH, &file.size.to_string()),
    }
    resp
}

/// The Content-Type a file is served with (`type/subtype` of what the uploader said, or
/// `application/octet-stream`) and whether it may be shown inline (images, audio, video,
/// plain text — never markup a browser would run).
fn served_type(given: &str) -> (String, bool) {
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let valid = essence
        .split_once('/')
        .is_some_and(|(t, s)| token(t) && token(s));
    if !valid {
        return ("application/octet-stream".into(), false);
    }
    let inline = matches!(
        essence.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "text/plain"
    ) || essence.starts_with("audio/")
        || essence.starts_with("video/");
    let served = if essence == "text/plain" {
        "text/plain; charset=utf-8".to_string()
    } else {
        essence
    };
    (served, inline)
}

/// The single byte range asked for (RFC 9110 §14.1.2): `Ok(None)` for the whole file (no
/// Range header, or one this server ignores such as several ranges), `Err` when it can't be
/// satisfied.
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let n: u64 = last.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = match last {
            "" => size,
            l => l
                .parse::<u64>()
                .map_err(|_| ())?
                .saturating_add(1)
                .min(size),
        };
        start..end
    };
    if range.start >= range.end || range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(h: &str, size: u64) -> Result<Option<Range<u64>>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(h).map_err(|_| ())?);
        requested_range(&headers, size)
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(requested_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(range("bytes=0-4", 10), Ok(Some(0..5)));
        assert_eq!(range("bytes=5-", 10), Ok(Some(5..10)));
        assert_eq!(range("bytes=-3", 10), Ok(Some(7..10)));
        assert_eq!(range("bytes=8-100", 10), Ok(Some(8..10)));
        assert_eq!(range("bytes=-100", 10), Ok(Some(0..10)));
        assert_eq!(range("bytes=10-", 10), Err(()));
        assert_eq!(range("bytes=5-2", 10), Err(()));
        assert_eq!(range("bytes=x-2", 10), Err(()));
        assert_eq!(range("bytes=-0", 10), Err(()));
        assert_eq!(range("bytes=0-1,3-4", 10), Ok(None));
        assert_eq!(range("items=0-1", 10), Ok(None));
    }

    #[test]
    fn served_types_are_safe() {
        assert_eq!(served_type("image/png"), ("image/png".into(), true));
        assert_eq!(served_type("text/html"), ("text/html".into(), false));
        assert_eq!(
            served_type("image/svg+xml"),
            ("image/svg+xml".into(), false)
        );
        assert_eq!(
            served_type("text/plain; charset=latin1").0,
            "text/plain; charset=utf-8"
        );
        assert_eq!(served_type("bogus").0, "application/octet-stream");
        assert_eq!(
            served_type("a/b\r\nX-Evil: 1").0,
            "application/octet-stream"
        );
        assert_eq!(served_type("").0, "application/octet-stream");
    }
}
