//! End-to-end tests: development CA files on disk, and real TLS handshakes
//! over loopback TCP between `server_config` and `client_config`.

use std::path::Path;
use std::sync::Arc;

use palaver_certs::{
    client_config, ensure_dev_certs, load_certs, load_key, server_config, server_config_reloadable,
    CertError, DevCertPaths, ReloadableCert,
};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const ALPN: &[&[u8]] = &[b"xmpp-client", b"h2"];

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn dev_certs(dir: &Path) -> DevCertPaths {
    ensure_dev_certs(dir, &names(&["localhost", "conference.localhost"]))
        .expect("ensure_dev_certs")
        .0
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

/// What the client saw of a completed handshake.
struct Seen {
    leaf: Vec<u8>,
    alpn: Option<Vec<u8>>,
}

/// Runs one TLS connection over 127.0.0.1: the server writes "ok" after its
/// handshake, the client reads it. Returns the client's view, or the client
/// error as text.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> Result<Seen, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        tls.write_all(b"ok").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
        Ok::<(), String>(())
    });

    let result = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        // Resumed sessions would report the certificate of the original
        // handshake; every connection here must show what is served now.
        let mut fresh = (*client).clone();
        fresh.resumption = Resumption::disabled();
        let mut tls = TlsConnector::from(Arc::new(fresh))
            .connect(server_name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"ok");
        let conn = tls.get_ref().1;
        let leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .ok_or("no peer certificate")?;
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok(Seen { leaf, alpn })
    }
    .await;

    let server_result = server_task.await.expect("server task");
    if result.is_ok() {
        server_result.expect("server side of a successful handshake");
    }
    result
}

fn first_cert(path: &Path) -> Vec<u8> {
    load_certs(path).expect("certs")[0].to_vec()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn creates_files_with_private_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("certs");
    let (paths, generated) =
        ensure_dev_certs(&dir, &names(&["localhost"])).expect("ensure_dev_certs");
    assert!(generated);
    assert_eq!(paths, DevCertPaths::in_dir(&dir));
    for path in [&paths.ca_cert, &paths.ca_key, &paths.cert, &paths.key] {
        assert!(path.is_file(), "{} exists", path.display());
    }
    assert_eq!(
        load_certs(&paths.cert).expect("chain").len(),
        2,
        "leaf + CA"
    );
    assert_eq!(
        load_certs(&paths.cert).expect("chain")[1],
        load_certs(&paths.ca_cert).expect("ca")[0]
    );
    load_key(&paths.key).expect("server key");
    load_key(&paths.ca_key).expect("CA key");
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&paths.ca_key), 0o600);
        assert_eq!(mode(&paths.key), 0o600);
    }
}

#[test]
fn second_call_generates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let list = names(&["localhost", "conference.localhost"]);
    let (paths, first) = ensure_dev_certs(tmp.path(), &list).expect("first");
    assert!(first);
    let before = [
        read(&paths.ca_cert),
        read(&paths.ca_key),
        read(&paths.cert),
        read(&paths.key),
    ];
    // Order, case and duplicates of the requested names do not matter.
    let again = names(&["Conference.Localhost", "localhost", "localhost"]);
    let (_, second) = ensure_dev_certs(tmp.path(), &again).expect("second");
    assert!(!second);
    let after = [
        read(&paths.ca_cert),
        read(&paths.ca_key),
        read(&paths.cert),
        read(&paths.key),
    ];
    assert_eq!(before, after);
}

#[test]
fn new_name_reissues_leaf_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (paths, _) = ensure_dev_certs(tmp.path(), &names(&["localhost"])).expect("first");
    let ca = read(&paths.ca_cert);
    let ca_key = read(&paths.ca_key);
    let leaf = read(&paths.cert);
    let key = read(&paths.key);

    let (_, generated) =
        ensure_dev_certs(tmp.path(), &names(&["localhost", "pubsub.localhost"])).expect("second");
    assert!(generated);
    assert_eq!(read(&paths.ca_cert), ca, "CA certificate unchanged");
    assert_eq!(read(&paths.ca_key), ca_key, "CA key unchanged");
    assert_ne!(read(&paths.cert), leaf, "leaf re-issued");
    assert_ne!(read(&paths.key), key, "leaf key replaced");
    #[cfg(unix)]
    assert_eq!(mode(&paths.key), 0o600);

    // A subset of the names is still covered: nothing to do.
    let (_, again) = ensure_dev_certs(tmp.path(), &names(&["pubsub.localhost"])).expect("third");
    assert!(!again);
}

#[test]
fn damaged_files_are_regenerated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (paths, _) = ensure_dev_certs(tmp.path(), &names(&["localhost"])).expect("first");
    let ca = read(&paths.ca_cert);
    std::fs::write(&paths.cert, b"garbage").expect("write");
    let (_, generated) = ensure_dev_certs(tmp.path(), &names(&["localhost"])).expect("repair");
    assert!(generated);
    assert_eq!(read(&paths.ca_cert), ca, "leaf repaired with the same CA");

    std::fs::write(&paths.ca_cert, b"-----BEGIN CERTIFICATE-----\n!!!\n").expect("write");
    let (_, generated) = ensure_dev_certs(tmp.path(), &names(&["localhost"])).expect("new CA");
    assert!(generated);
    assert_ne!(read(&paths.ca_cert), ca);
    server_config(&paths.cert, &paths.key, ALPN).expect("usable again");
}

#[test]
fn invalid_names_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = ensure_dev_certs(tmp.path(), &names(&["not a hostname"])).expect_err("invalid");
    assert!(matches!(err, CertError::Gen(_)), "{err:?}");
}

#[tokio::test]
async fn handshake_succeeds_for_covered_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = dev_certs(tmp.path());
    let server = server_config(&paths.cert, &paths.key, ALPN).expect("server config");
    let client = client_config(&paths.ca_cert).expect("client config");
    let leaf = first_cert(&paths.cert);
    for name in ["localhost", "conference.localhost", "127.0.0.1", "::1"] {
        let seen = handshake(server.clone(), client.clone(), name)
            .await
            .unwrap_or_else(|e| panic!("handshake for {name}: {e}"));
        assert_eq!(seen.leaf, leaf);
        assert_eq!(seen.alpn, None, "client offered no ALPN");
    }
}

#[tokio::test]
async fn alpn_is_negotiated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = dev_certs(tmp.path());
    let server = server_config(&paths.cert, &paths.key, ALPN).expect("server config");
    let mut client = (*client_config(&paths.ca_cert).expect("client config")).clone();
    client.alpn_protocols = vec![b"h2".to_vec(), b"xmpp-client".to_vec()];
    let seen = handshake(server, Arc::new(client), "localhost")
        .await
        .expect("handshake");
    assert_eq!(
        seen.alpn.as_deref(),
        Some(&b"xmpp-client"[..]),
        "server preference wins"
    );
}

#[tokio::test]
async fn handshake_fails_for_other_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = dev_certs(tmp.path());
    let server = server_config(&paths.cert, &paths.key, ALPN).expect("server config");
    let client = client_config(&paths.ca_cert).expect("client config");
    let err = handshake(server, client, "example.com")
        .await
        .err()
        .expect("example.com must be rejected");
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn handshake_fails_for_client_trusting_other_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = dev_certs(&tmp.path().join("a"));
    let other = dev_certs(&tmp.path().join("b"));
    let server = server_config(&paths.cert, &paths.key, ALPN).expect("server config");
    let client = client_config(&other.ca_cert).expect("client config");
    let err = handshake(server, client, "localhost")
        .await
        .err()
        .expect("unknown CA must be rejected");
    assert!(err.contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn reload_swaps_served_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = dev_certs(tmp.path());
    let resolver = Arc::new(ReloadableCert::new(&paths.cert, &paths.key).expect("resolver"));
    let server = server_config_reloadable(resolver.clone(), ALPN).expect("server config");
    let client = client_config(&paths.ca_cert).expect("client config");

    let first = handshake(server.clone(), client.clone(), "localhost")
        .await
        .expect("first handshake");
    assert_eq!(first.leaf, first_cert(&paths.cert));

    let (_, generated) = ensure_dev_certs(
        tmp.path(),
        &names(&["localhost", "conference.localhost", "upload.localhost"]),
    )
    .expect("re-issue");
    assert!(generated);
    let new_leaf = first_cert(&paths.cert);
    assert_ne!(new_leaf, first.leaf);

    // Not reloaded yet: still the old certificate, which lacks the new name.
    let stale = handshake(server.clone(), client.clone(), "localhost")
        .await
        .expect("stale handshake");
    assert_eq!(stale.leaf, first.leaf);
    assert!(
        handshake(server.clone(), client.clone(), "upload.localhost")
            .await
            .is_err()
    );

    resolver.reload().expect("reload");
    let second = handshake(server.clone(), client.clone(), "upload.localhost")
        .await
        .expect("handshake after reload");
    assert_eq!(second.leaf, new_leaf);

    // A failed reload keeps serving the last good certificate.
    std::fs::write(&paths.cert, b"not a certificate").expect("write");
    assert!(resolver.reload().is_err());
    let third = handshake(server, client, "localhost")
        .await
        .expect("handshake after failed reload");
    assert_eq!(third.leaf, new_leaf);
}

#[test]
fn mismatched_key_is_rejected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = dev_certs(&tmp.path().join("a"));
    let b = dev_certs(&tmp.path().join("b"));
    let err = server_config(&a.cert, &b.key, ALPN).expect_err("mismatch");
    assert!(matches!(err, CertError::Rustls(_)), "{err:?}");
    let err = ReloadableCert::new(&a.cert, &b.key).expect_err("mismatch");
    assert!(matches!(err, CertError::Rustls(_)), "{err:?}");
}

#[test]
fn garbage_pem_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = dev_certs(&tmp.path().join("good"));
    let dir = tmp.path();
    let write = |name: &str, data: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, data).expect("write");
        path
    };
    let text = write("text.pem", b"hello, I am not PEM at all\n");
    let binary = write("binary.pem", &[0u8, 159, 146, 150, 255, 10, 13]);
    let broken = write(
        "broken.pem",
        b"-----BEGIN CERTIFICATE-----\nMIIB$$$not base64$$$\n-----END CERTIFICATE-----\n",
    );
    let unterminated = write("unterminated.pem", b"-----BEGIN PRIVATE KEY-----\nMIIB\n");
    let bogus_der = write(
        "bogus-der.pem",
        b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n\
          -----BEGIN PRIVATE KEY-----\nAAECAwQF\n-----END PRIVATE KEY-----\n",
    );
    let missing = dir.join("missing.pem");

    assert!(matches!(load_certs(&text), Err(CertError::NoCerts(_))));
    assert!(matches!(load_certs(&binary), Err(CertError::NoCerts(_))));
    assert!(matches!(load_certs(&broken), Err(CertError::Pem(_))));
    assert!(matches!(load_key(&text), Err(CertError::NoKey(_))));
    assert!(matches!(load_key(&unterminated), Err(CertError::Pem(_))));
    assert!(matches!(load_key(&paths.cert), Err(CertError::NoKey(_))));
    assert!(matches!(load_certs(&paths.key), Err(CertError::NoCerts(_))));
    assert!(matches!(load_certs(&missing), Err(CertError::Io { .. })));

    for (cert, key) in [
        (&text, &paths.key),
        (&broken, &paths.key),
        (&paths.cert, &unterminated),
        (&bogus_der, &bogus_der),
        (&paths.cert, &bogus_der),
        (&bogus_der, &paths.key),
    ] {
        assert!(server_config(cert, key, ALPN).is_err(), "{cert:?} {key:?}");
        assert!(ReloadableCert::new(cert, key).is_err(), "{cert:?} {key:?}");
    }
    assert!(client_config(&text).is_err());
    assert!(client_config(&broken).is_err());
    assert!(client_config(&bogus_der).is_err());
    assert!(client_config(&missing).is_err());
}
