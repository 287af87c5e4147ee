//! Tests of the SASL server side: the RFC 5802/7677 exchanges, malformed input, PLAIN and
//! payload encoding, and property tests that no input panics.

use super::*;
use proptest::prelude::*;

fn b64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).expect("test base64")
}

/// Server-side keys for `password`, computed like palaver-core does.
struct OwnedKeys {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl OwnedKeys {
    fn new(mech: Mechanism, password: &str, salt: &[u8], iterations: u32) -> OwnedKeys {
        let hash = hash_of(mech);
        let salted = salted_password(hash, password, salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        OwnedKeys {
            salt: salt.to_vec(),
            iterations,
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
        }
    }

    fn keys(&self) -> ScramKeys<'_> {
        ScramKeys {
            salt: &self.salt,
            iterations: self.iterations,
            stored_key: &self.stored_key,
            server_key: &self.server_key,
        }
    }
}

fn hash_of(mech: Mechanism) -> Hash {
    match mech {
        Mechanism::ScramSha1 => Hash::Sha1,
        _ => Hash::Sha256,
    }
}

fn salted_password(hash: Hash, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; hash.len()];
    match hash {
        Hash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut out),
        Hash::Sha256 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out)
        }
    }
    out
}

/// A test SCRAM client: builds client-final (with proof) from the server-first message.
fn client_final_for(
    mech: Mechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &[u8],
    cbind_b64: &str,
) -> Vec<u8> {
    let hash = hash_of(mech);
    let sf = std::str::from_utf8(server_first).expect("utf8");
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for attr in sf.split(',') {
        if let Some(v) = attr.strip_prefix("r=") {
            nonce = v;
        } else if let Some(v) = attr.strip_prefix("s=") {
            salt = b64(v);
        } else if let Some(v) = attr.strip_prefix("i=") {
            iterations = v.parse().expect("iterations");
        }
    }
    let without_proof = format!("c={cbind_b64},r={nonce}");
    let auth_message = format!("{client_first_bare},{sf},{without_proof}");
    let salted = salted_password(hash, password, &salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.digest(&client_key);
    let signature = hash.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes()
}

fn need_keys(username: &str, authzid: Option<&str>) -> ScramStep {
    ScramStep::NeedKeys {
        username: username.to_string(),
        authzid: authzid.map(str::to_string),
    }
}

#[test]
fn rfc5802_sha1_exchange() {
    let keys = OwnedKeys::new(
        Mechanism::ScramSha1,
        "pencil",
        &b64("QSXCR+Q6sek8bf92"),
        4096,
    );
    let mut server = ScramServer::new(Mechanism::ScramSha1, "3rfcNHYJY1ZVvWVs7j".into());
    let step = server
        .client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
        .expect("client-first");
    assert_eq!(step, need_keys("user", None));
    assert_eq!(server.username(), Some("user"));
    let sf = server.server_first(Some(keys.keys()));
    assert_eq!(
        sf,
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    );
    let sfinal = server
        .client_final(
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        )
        .expect("client-final");
    assert_eq!(sfinal, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert!(server.is_complete());
    assert_eq!(server.username(), Some("user"));
    assert_eq!(server.authzid(), None);
}

#[test]
fn rfc7677_sha256_exchange() {
    let keys = OwnedKeys::new(
        Mechanism::ScramSha256,
        "pencil",
        &b64("W22ZaJ0SNY7soEsUEjb6gQ=="),
        4096,
    );
    let mut server = ScramServer::new(
        Mechanism::ScramSha256,
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
    );
    let step = server
        .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        .expect("client-first");
    assert_eq!(step, need_keys("user", None));
    let sf = server.server_first(Some(keys.keys()));
    assert_eq!(
        sf,
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let sfinal = server
        .client_final(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
              p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        .expect("client-final");
    assert_eq!(sfinal, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    assert!(server.is_complete());
}

/// Runs an exchange with the test client; returns the server's verdict.
fn run(
    mech: Mechanism,
    stored_password: Option<&str>,
    client_password: &str,
    client_first: &str,
    cbind_b64: &str,
) -> Result<Vec<u8>, SaslError> {
    let keys = stored_password.map(|p| OwnedKeys::new(mech, p, b"0123456789abcdef", 64));
    let mut server = ScramServer::new(mech, random_nonce());
    server.client_first(client_first.as_bytes())?;
    let sf = server.server_first(keys.as_ref().map(OwnedKeys::keys));
    let bare = client_first.splitn(3, ',').nth(2).expect("bare");
    let cf = client_final_for(mech, client_password, bare, &sf, cbind_b64);
    server.client_final(&cf)
}

#[test]
fn round_trip_with_test_client() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        let v = run(mech, Some("s3cret"), "s3cret", "n,,n=alice,r=abc", "biws").expect("success");
        assert!(v.starts_with(b"v="));
    }
}

#[test]
fn wrong_password_is_not_authorized() {
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        assert_eq!(
            run(mech, Some("s3cret"), "S3cret", "n,,n=alice,r=abc", "biws"),
            Err(SaslError::NotAuthorized)
        );
    }
}

#[test]
fn unknown_user_gets_plausible_challenge_then_not_authorized() {
    let mut a = ScramServer::new(Mechanism::ScramSha256, "srv".into());
    a.client_first(b"n,,n=ghost,r=abc").expect("client-first");
    let sf_a = String::from_utf8(a.server_first(None)).expect("utf8");
    let mut b = ScramServer::new(Mechanism::ScramSha256, "srv".into());
    b.client_first(b"n,,n=ghost,r=abc").expect("client-first");
    let sf_b = String::from_utf8(b.server_first(None)).expect("utf8");
    // Stable for the same user, so repeated probes see the same salt.
    assert_eq!(sf_a, sf_b);
    let salt = sf_a
        .split(',')
        .find_map(|a| a.strip_prefix("s="))
        .expect("salt");
    assert_eq!(b64(salt).len(), 16);
    assert!(sf_a.ends_with(",i=4096"));
    // Different for another user.
    let mut c = ScramServer::new(Mechanism::ScramSha256, "srv".into());
    c.client_first(b"n,,n=ghost2,r=abc").expect("client-first");
    assert_ne!(String::from_utf8(c.server_first(None)).expect("utf8"), sf_a);
    // Whatever password the client tries, the exchange fails with not-authorized.
    for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        for pw in ["", "pencil", "anything"] {
            assert_eq!(
                run(mech, None, pw, "n,,n=ghost,r=abc", "biws"),
                Err(SaslError::NotAuthorized)
            );
        }
    }
}

#[test]
fn y_flag_and_authzid_are_echoed_in_channel_binding() {
    let v = run(
        Mechanism::ScramSha256,
        Some("pw"),
        "pw",
        "y,,n=alice,r=abc",
        "eSws",
    );
    assert!(v.is_ok());
    // Echoing "n,," after sending "y,," is a downgrade: refused.
    assert_eq!(
        run(
            Mechanism::ScramSha256,
            Some("pw"),
            "pw",
            "y,,n=alice,r=abc",
            "biws"
        ),
        Err(SaslError::NotAuthorized)
    );
    assert_eq!(
        run(
            Mechanism::ScramSha256,
            Some("pw"),
            "pw",
            "n,,n=alice,r=abc",
            "eSws"
        ),
        Err(SaslError::NotAuthorized)
    );
    let cf = "n,a=alice@example.org,n=alice,r=abc";
    let cb = STANDARD.encode("n,a=alice@example.org,");
    assert!(run(Mechanism::ScramSha1, Some("pw"), "pw", cf, &cb).is_ok());
    assert_eq!(
        run(Mechanism::ScramSha1, Some("pw"), "pw", cf, "biws"),
        Err(SaslError::NotAuthorized)
    );
    let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
    assert_eq!(
        server.client_first(cf.as_bytes()),
        Ok(need_keys("alice", Some("alice@example.org")))
    );
    assert_eq!(server.authzid(), Some("alice@example.org"));
}

#[test]
fn saslname_escapes_are_decoded() {
    let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
    assert_eq!(
        server.client_first(b"n,a=a=3Db=2Cc,n=us=2Cer=3D,r=abc"),
        Ok(need_keys("us,er=", Some("a=b,c")))
    );
    // The escaped name round-trips through a full exchange.
    assert!(run(
        Mechanism::ScramSha256,
        Some("pw"),
        "pw",
        "n,,n=us=2Cer=3D,r=abc",
        "biws"
    )
    .is_ok());
    for bad in [
        &b"n,,n=us=2Xer,r=abc"[..],
        b"n,,n=user=,r=abc",
        b"n,,n=us=er,r=abc",
        b"n,,n=u\0ser,r=abc",
        b"n,a=,n=user,r=abc",
        b"n,a=x=,n=user,r=abc",
    ] {
        let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
        assert!(
            matches!(
                server.client_first(bad),
                Err(SaslError::MalformedRequest(_))
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn malformed_client_first_is_rejected() {
    let huge = format!("n,,n=user,r={}", "a".repeat(MAX_SCRAM_MESSAGE));
    let cases: Vec<&[u8]> = vec![
        b"",
        b"n",
        b"n,",
        b"n,,",
        b"x,,n=user,r=abc",
        b"p=tls-unique,,n=user,r=abc",
        b"p=tls-exporter,,n=user,r=abc",
        b"n,,m=ext,n=user,r=abc",
        b"n,,r=abc",
        b"n,,n=user",
        b"n,,n=user,",
        b"n,,n=user,r=",
        b"n,,n=,r=abc",
        b"n,,n=user,x=abc",
        b"n,,n=user,r=ab c",
        b"n,,n=user,r=abc,",
        b"n,,n=user,r=abc,1=x",
        b"n,,n=user,r=abc,x",
        b"n,,n=user,r=abc,x=",
        b"n,b=x,n=user,r=abc",
        b"n,,n=us\xffer,r=abc",
        huge.as_bytes(),
    ];
    for case in cases {
        let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
        assert!(
            matches!(
                server.client_first(case),
                Err(SaslError::MalformedRequest(_))
            ),
            "{:?}",
            String::from_utf8_lossy(case)
        );
        // The exchange is over.
        assert_eq!(server.server_first(None), Vec::<u8>::new());
        assert!(server.client_final(b"c=biws,r=x,p=AAAA").is_err());
    }
    // Extensions after the nonce are allowed and ignored.
    let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
    assert!(server.client_first(b"n,,n=user,r=abc,e=xyz").is_ok());
}

/// A server that has sent server-first for user "user" with password "pencil".
fn server_awaiting_final() -> (ScramServer, Vec<u8>) {
    let keys = OwnedKeys::new(Mechanism::ScramSha256, "pencil", b"saltsaltsaltsalt", 64);
    let mut server = ScramServer::new(Mechanism::ScramSha256, "SRV".into());
    server
        .client_first(b"n,,n=user,r=CLI")
        .expect("client-first");
    let sf = server.server_first(Some(keys.keys()));
    (server, sf)
}

#[test]
fn malformed_client_final_is_rejected() {
    let huge = format!("c=biws,r=CLISRV,p={}", "A".repeat(MAX_SCRAM_MESSAGE));
    let cases: Vec<&[u8]> = vec![
        b"",
        b"c=biws,r=CLISRV",
        b"r=CLISRV,p=AAAA",
        b"c=biws,p=AAAA",
        b"c=biws,r=CLISRV,p=!!!!",
        b"c=b!ws,r=CLISRV,p=AAAA",
        b"c=biws,r=CLISRV,p=AAAA,x=y",
        b"c=biws,r=CLISRV,bad,p=AAAA",
        b"c=biws,r=CLI\xffSRV,p=AAAA",
        huge.as_bytes(),
    ];
    for case in cases {
        let (mut server, _) = server_awaiting_final();
        let got = server.client_final(case);
        assert!(
            matches!(got, Err(SaslError::MalformedRequest(_))),
            "{:?} -> {got:?}",
            String::from_utf8_lossy(case)
        );
        assert!(!server.is_complete());
    }
}

#[test]
fn client_final_checks_nonce_and_proof() {
    let (mut server, sf) = server_awaiting_final();
    let good = client_final_for(
        Mechanism::ScramSha256,
        "pencil",
        "n=user,r=CLI",
        &sf,
        "biws",
    );
    // Wrong nonce (same proof computation, tampered nonce) is refused.
    let tampered = String::from_utf8(good.clone())
        .expect("utf8")
        .replace("r=CLISRV", "r=CLISRX");
    assert_eq!(
        server.client_final(tampered.as_bytes()),
        Err(SaslError::NotAuthorized)
    );
    // One failure ends the exchange: even the right proof is refused afterwards.
    assert!(server.client_final(&good).is_err());

    // Proofs of the wrong length (including empty).
    for msg in [&b"c=biws,r=CLISRV,p=AAAA"[..], b"c=biws,r=CLISRV,p="] {
        let (mut server, _) = server_awaiting_final();
        assert_eq!(server.client_final(msg), Err(SaslError::NotAuthorized));
    }

    // The good message works on a fresh exchange, exactly once.
    let (mut server, _) = server_awaiting_final();
    assert!(server.client_final(&good).is_ok());
    assert!(server.is_complete());
    assert!(matches!(
        server.client_final(&good),
        Err(SaslError::MalformedRequest(_))
    ));
}

#[test]
fn calls_out_of_order_fail() {
    let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
    assert_eq!(server.server_first(None), Vec::<u8>::new());
    assert!(server.client_first(b"n,,n=user,r=abc").is_err());

    let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
    assert!(matches!(
        server.client_final(b"c=biws,r=abc,p=AAAA"),
        Err(SaslError::MalformedRequest(_))
    ));

    let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
    server
        .client_first(b"n,,n=user,r=abc")
        .expect("client-first");
    assert!(server.client_first(b"n,,n=user,r=abc").is_err());
    assert_eq!(server.username(), None);
}

#[test]
fn plain_is_not_a_scram_mechanism() {
    let mut server = ScramServer::new(Mechanism::Plain, "x".into());
    assert_eq!(
        server.client_first(b"n,,n=user,r=abc"),
        Err(SaslError::InvalidMechanism)
    );
}

#[test]
fn invalid_server_nonce_is_replaced() {
    for bad in ["", "a,b", "with space", "caf\u{e9}"] {
        let mut server = ScramServer::new(Mechanism::ScramSha1, bad.into());
        server
            .client_first(b"n,,n=user,r=abc")
            .expect("client-first");
        let sf = String::from_utf8(server.server_first(None)).expect("utf8");
        let nonce = sf.split(',').next().and_then(|r| r.strip_prefix("r=abc"));
        let nonce = nonce.expect("nonce");
        assert_eq!(nonce.len(), 32, "{sf}");
        assert!(is_valid_nonce(nonce));
    }
}

#[test]
fn mechanism_names() {
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
        assert_eq!(m.to_string(), m.name());
    }
    assert_eq!(
        Mechanism::from_name("SCRAM-SHA-1"),
        Some(Mechanism::ScramSha1)
    );
    assert_eq!(Mechanism::from_name("scram-sha-1"), None);
    assert_eq!(Mechanism::from_name("SCRAM-SHA-1-PLUS"), None);
    assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
    assert!(Mechanism::ScramSha1.is_scram());
    assert!(!Mechanism::Plain.is_scram());
}

#[test]
fn error_conditions() {
    let cases = [
        (malformed("x"), "malformed-request"),
        (SaslError::NotAuthorized, "not-authorized"),
        (SaslError::InvalidMechanism, "invalid-mechanism"),
        (SaslError::EncryptionRequired, "encryption-required"),
        (SaslError::Aborted, "aborted"),
        (SaslError::InvalidAuthzid, "invalid-authzid"),
        (SaslError::IncorrectEncoding, "incorrect-encoding"),
    ];
    for (err, cond) in cases {
        assert_eq!(err.condition(), cond);
    }
}

#[test]
fn plain_parsing() {
    assert_eq!(
        parse_plain(b"\0tim\0tanstaaftanstaaf"),
        Ok(PlainCredentials {
            authzid: None,
            authcid: "tim".into(),
            password: "tanstaaftanstaaf".into(),
        })
    );
    assert_eq!(
        parse_plain(b"Ursel\0Kurt\0xipj3plmq"),
        Ok(PlainCredentials {
            authzid: Some("Ursel".into()),
            authcid: "Kurt".into(),
            password: "xipj3plmq".into(),
        })
    );
    // Non-ASCII is kept as is.
    assert_eq!(
        parse_plain("\0j\u{f6}rg\0p\u{e4}ss".as_bytes()).map(|c| c.password),
        Ok("p\u{e4}ss".to_string())
    );
    let huge = format!("\0user\0{}", "p".repeat(MAX_PLAIN_MESSAGE));
    for bad in [
        &b""[..],
        b"user",
        b"\0user",
        b"user\0pass",
        b"\0\0pass",
        b"\0user\0",
        b"\0user\0pa\0ss",
        b"\0\0\0",
        b"\0us\xffer\0pass",
        huge.as_bytes(),
    ] {
        assert!(
            matches!(parse_plain(bad), Err(SaslError::MalformedRequest(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn plain_debug_hides_password() {
    let creds = parse_plain(b"\0tim\0hunter2").expect("plain");
    let shown = format!("{creds:?}");
    assert!(shown.contains("tim"));
    assert!(!shown.contains("hunter2"));
}

#[test]
fn payload_encoding() {
    assert_eq!(decode_payload(""), Ok(Vec::new()));
    assert_eq!(decode_payload("="), Ok(Vec::new()));
    assert_eq!(decode_payload(" \n"), Ok(Vec::new()));
    assert_eq!(decode_payload("biws"), Ok(b"n,,".to_vec()));
    assert_eq!(
        decode_payload(" AHRpbQB0aW0= \r\n"),
        Ok(b"\0tim\0tim".to_vec())
    );
    assert_eq!(decode_payload("AHRpbQB0aW0"), Ok(b"\0tim\0tim".to_vec()));
    assert_eq!(decode_payload("bi ws"), Err(SaslError::IncorrectEncoding));
    assert_eq!(decode_payload("!!!!"), Err(SaslError::IncorrectEncoding));
    assert_eq!(decode_payload("a"), Err(SaslError::IncorrectEncoding));
    assert!(matches!(
        decode_payload(&"A".repeat(MAX_PAYLOAD_TEXT + 4)),
        Err(SaslError::MalformedRequest(_))
    ));
    assert_eq!(encode_payload(b""), "=");
    assert_eq!(encode_payload(b"n,,"), "biws");
    let data = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";
    assert_eq!(decode_payload(&encode_payload(data)), Ok(data.to_vec()));
}

#[test]
fn random_nonces() {
    let a = random_nonce();
    let b = random_nonce();
    assert_eq!(a.len(), 32);
    assert!(is_valid_nonce(&a));
    assert_ne!(a, b);
}

#[test]
fn debug_does_not_leak_keys() {
    let keys = OwnedKeys::new(Mechanism::ScramSha1, "pw", b"salt", 2);
    let shown = format!("{:?}", keys.keys());
    assert!(shown.contains("iterations"));
    let (server, _) = server_awaiting_final();
    assert!(format!("{server:?}").contains("await-client-final"));
}

proptest! {
    #[test]
    fn arbitrary_client_first_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
        if server.client_first(&msg).is_ok() {
            let _ = server.server_first(None);
            let _ = server.client_final(&msg);
        }
    }

    #[test]
    fn structured_client_first_never_panics(msg in "[nyp]?(=[a-z-]*)?,(a=[^,]*)?,(m=|n=)[a-z=2CD\u{0}]*,(r=[!-~]*)?(,.*)?") {
        let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
        let _ = server.client_first(msg.as_bytes());
    }

    #[test]
    fn arbitrary_client_final_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..256)) {
        let (mut server, _) = server_awaiting_final();
        let _ = server.client_final(&msg);
        let mut unknown = ScramServer::new(Mechanism::ScramSha1, "SRV".into());
        unknown.client_first(b"n,,n=ghost,r=CLI").expect("client-first");
        let _ = unknown.server_first(None);
        prop_assert!(unknown.client_final(&msg).is_err());
    }

    #[test]
    fn structured_client_final_never_panics(msg in "(c=[A-Za-z0-9+/=]*)?,(r=CLISRV|r=[!-~]*)?(,[a-z]=[^,]*)*,p=[A-Za-z0-9+/=]{0,60}") {
        let (mut server, _) = server_awaiting_final();
        prop_assert!(server.client_final(msg.as_bytes()).is_err());
    }

    #[test]
    fn arbitrary_plain_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(creds) = parse_plain(&msg) {
            prop_assert!(!creds.authcid.is_empty() && !creds.password.is_empty());
        }
    }

    #[test]
    fn arbitrary_payload_never_panics(text in ".{0,64}") {
        let _ = decode_payload(&text);
    }

    #[test]
    fn payload_round_trips(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        prop_assert_eq!(decode_payload(&encode_payload(&data)), Ok(data));
    }
}
