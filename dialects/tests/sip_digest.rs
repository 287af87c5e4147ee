//! Digest authentication: the RFC 7616 §3.9.1 vectors (MD5 and SHA-256) for the response
//! arithmetic, then full challenge/verify round trips with our stateless nonces: success for
//! both algorithms, wrong password, unknown user, wrong realm, stale and forged nonces,
//! replayed nonce counts, malformed credentials, and the bounded replay map.

use palaver_dialects::sip::digest::{
    ha1_hex, DigestAlgo, DigestCredentials, DigestError, DigestOk, DigestServer,
};

const RFC_REALM: &str = "http-auth@example.org";

fn rfc_authorization(algorithm: &str, response: &str) -> String {
    format!(
        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", \
         algorithm={algorithm}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
         response=\"{response}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    )
}

const MD5_RESPONSE: &str = "8ca523f5e9506fed4657c9700eebdbec";
const SHA256_RESPONSE: &str = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1";

#[test]
fn rfc7616_vectors() {
    for (algo, name, expected) in [
        (DigestAlgo::Md5, "MD5", MD5_RESPONSE),
        (DigestAlgo::Sha256, "SHA-256", SHA256_RESPONSE),
    ] {
        let creds =
            DigestCredentials::parse(&rfc_authorization(name, expected)).expect("should succeed");
        assert_eq!(creds.algo(), Some(algo));
        let ha1 = ha1_hex(algo, "Mufasa", RFC_REALM, "Circle of Life");
        assert_eq!(creds.expected_response(algo, "GET", &ha1), expected);
        assert_eq!(creds.response, expected);
    }
}

#[test]
fn rfc7616_vectors_through_verify() {
    // The response checks out, but the RFC's nonce is not one of ours: stale, not wrong.
    let mut server = DigestServer::new([7; 32], RFC_REALM, 300);
    let lookup = |user: &str, algo| {
        (user == "Mufasa").then(|| ha1_hex(algo, user, RFC_REALM, "Circle of Life"))
    };
    for (name, response) in [("MD5", MD5_RESPONSE), ("SHA-256", SHA256_RESPONSE)] {
        let header = rfc_authorization(name, response);
        assert_eq!(
            server.verify("GET", Some(&header), 1_000, lookup),
            Err(DigestError::StaleNonce)
        );
        let wrong = |user: &str, algo| Some(ha1_hex(algo, user, RFC_REALM, "Circle of Death"));
        assert_eq!(
            server.verify("GET", Some(&header), 1_000, wrong),
            Err(DigestError::WrongResponse)
        );
        assert_eq!(
            server.verify("POST", Some(&header), 1_000, lookup),
            Err(DigestError::WrongResponse),
            "the method is part of HA2"
        );
    }
}

const REALM: &str = "localhost";

fn lookup(user: &str, algo: DigestAlgo) -> Option<String> {
    (user == "alice").then(|| ha1_hex(algo, "alice", REALM, "wonderland"))
}

fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge.find(&format!("{name}=")).expect("should succeed") + name.len() + 1;
    let rest = &challenge[start..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    &rest[..rest.find(['"', ',']).unwrap_or(rest.len())]
}

/// What a UA sends back for `challenge`.
fn answer(challenge: &str, user: &str, password: &str, method: &str, nc: u32) -> String {
    let algo = DigestAlgo::from_name(param(challenge, "algorithm")).expect("should succeed");
    let creds = DigestCredentials {
        username: user.into(),
        realm: param(challenge, "realm").into(),
        nonce: param(challenge, "nonce").into(),
        uri: "sip:localhost".into(),
        cnonce: Some("0a4f113b".into()),
        nc: Some(format!("{nc:08x}")),
        qop: Some("auth".into()),
        ..Default::default()
    };
    let response =
        creds.expected_response(algo, method, &ha1_hex(algo, user, &creds.realm, password));
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"sip:localhost\", \
         response=\"{response}\", algorithm={}, cnonce=\"0a4f113b\", qop=auth, nc={:08x}, \
         opaque=\"{}\"",
        creds.realm,
        creds.nonce,
        algo.name(),
        nc,
        param(challenge, "opaque")
    )
}

#[test]
fn challenge_shape() {
    let server = DigestServer::new([1; 32], REALM, 300);
    let values = server.challenge(100, false);
    assert_eq!(values.len(), 2);
    assert!(values[0].starts_with("Digest realm=\"localhost\", nonce=\""));
    assert!(values[0].contains("algorithm=SHA-256"));
    assert!(values[1].contains("algorithm=MD5"));
    for v in &values {
        assert!(v.contains("qop=\"auth\""));
        assert!(v.contains("opaque=\""));
        assert!(!v.contains("stale"));
    }
    assert_eq!(param(&values[0], "nonce"), param(&values[1], "nonce"));
    assert!(server.challenge(100, true)[0].ends_with(", stale=TRUE"));
    assert_ne!(
        server.nonce(100),
        server.nonce(100),
        "salted: unique within a second"
    );
}

#[test]
fn verify_round_trips_and_replays() {
    let mut server = DigestServer::new([2; 32], REALM, 300);
    for index in 0..2 {
        // A fresh challenge per algorithm: both values of one challenge share its nonce.
        let challenge = server.challenge(1_000, false).remove(index);
        let first = answer(&challenge, "alice", "wonderland", "REGISTER", 1);
        let algo = DigestAlgo::from_name(param(&challenge, "algorithm")).expect("should succeed");
        assert_eq!(
            server.verify("REGISTER", Some(&first), 1_010, lookup),
            Ok(DigestOk {
                user: "alice".into(),
                algo
            })
        );
        assert_eq!(
            server.verify("REGISTER", Some(&first), 1_011, lookup),
            Err(DigestError::Replay)
        );
        let second = answer(&challenge, "alice", "wonderland", "REGISTER", 2);
        assert!(server
            .verify("REGISTER", Some(&second), 1_012, lookup)
            .is_ok());
        assert_eq!(
            server.verify("REGISTER", Some(&first), 1_013, lookup),
            Err(DigestError::Replay),
            "nc must increase"
        );
        let later = answer(&challenge, "alice", "wonderland", "MESSAGE", 3);
        assert!(server
            .verify("MESSAGE", Some(&later), 1_300, lookup)
            .is_ok());
        let expired = answer(&challenge, "alice", "wonderland", "REGISTER", 4);
        assert_eq!(
            server.verify("REGISTER", Some(&expired), 1_301, lookup),
            Err(DigestError::StaleNonce)
        );
    }
}

#[test]
fn verify_failures() {
    let mut server = DigestServer::new([3; 32], REALM, 300);
    let challenge = server.challenge(50, false).remove(0);
    let ok = answer(&challenge, "alice", "wonderland", "REGISTER", 1);
    assert_eq!(
        server.verify("REGISTER", None, 50, lookup),
        Err(DigestError::Missing)
    );
    let wrong = answer(&challenge, "alice", "looking-glass", "REGISTER", 1);
    assert_eq!(
        server.verify("REGISTER", Some(&wrong), 50, lookup),
        Err(DigestError::WrongResponse)
    );
    let bob = answer(&challenge, "bob", "x", "REGISTER", 1);
    assert_eq!(
        server.verify("REGISTER", Some(&bob), 50, lookup),
        Err(DigestError::UnknownUser)
    );
    let realm = ok.replace("realm=\"localhost\"", "realm=\"elsewhere\"");
    assert_eq!(
        server.verify("REGISTER", Some(&realm), 50, lookup),
        Err(DigestError::WrongRealm)
    );

    // Another server (other secret) issued the nonce, or someone edited it: stale, so the
    // client retries with a fresh challenge. Same for a foreign opaque.
    let mut other = DigestServer::new([4; 32], REALM, 300);
    assert_eq!(
        other.verify("REGISTER", Some(&ok), 50, lookup),
        Err(DigestError::StaleNonce)
    );
    let nonce = param(&challenge, "nonce");
    let mut forged_nonce = nonce.to_string();
    forged_nonce.replace_range(0..1, if nonce.starts_with('A') { "B" } else { "A" });
    let forged = answer(
        &challenge.replace(nonce, &forged_nonce),
        "alice",
        "wonderland",
        "REGISTER",
        1,
    );
    assert_eq!(
        server.verify("REGISTER", Some(&forged), 50, lookup),
        Err(DigestError::StaleNonce)
    );
    let opaque = param(&challenge, "opaque");
    let foreign_opaque = ok.replace(opaque, "0000");
    assert_eq!(
        server.verify("REGISTER", Some(&foreign_opaque), 50, lookup),
        Err(DigestError::StaleNonce)
    );
    let future = server.challenge(10_000, false).remove(0);
    let from_future = answer(&future, "alice", "wonderland", "REGISTER", 1);
    assert_eq!(
        server.verify("REGISTER", Some(&from_future), 50, lookup),
        Err(DigestError::StaleNonce)
    );

    for bad in [
        "Basic YWxpY2U6d29uZGVybGFuZA==".to_string(),
        "Digest".to_string(),
        ok.replace("qop=auth, ", ""),
        ok.replace("qop=auth", "qop=auth-int"),
        ok.replace("nc=00000001", "nc=1"),
        ok.replace("nc=00000001", "nc=0000000g"),
        ok.replace("cnonce=\"0a4f113b\"", "cnonce=\"\""),
        ok.replace("uri=\"sip:localhost\"", "uri=\"\""),
        ok.replace("algorithm=SHA-256", "algorithm=SHA-256-sess"),
        ok.replace("algorithm=SHA-256", "algorithm=SHA-512-256"),
        ok.replace("response=\"", "response=\"00"),
        ok.replace(param(&ok, "response"), &"z".repeat(64)),
        ok.replace(", ", " "),
        format!("{ok}, nonce=\"dup\""),
    ] {
        assert_eq!(
            server.verify("REGISTER", Some(&bad), 50, lookup),
            Err(DigestError::Malformed),
            "{bad}"
        );
    }
    // None of the failures consumed the nonce.
    assert!(server.verify("REGISTER", Some(&ok), 50, lookup).is_ok());
}

#[test]
fn replay_map_is_bounded_without_reopening_replays() {
    let mut server = DigestServer::new([5; 32], REALM, 300).with_max_tracked(2);
    let challenges: Vec<String> = (0..3)
        .map(|i| server.challenge(100 + i, false).remove(0))
        .collect();
    for c in &challenges {
        let a = answer(c, "alice", "wonderland", "REGISTER", 1);
        assert!(server.verify("REGISTER", Some(&a), 110, lookup).is_ok());
        assert!(server.tracked() <= 2);
    }
    // The oldest nonce was evicted: it is now stale, even with a fresh nc.
    let evicted = answer(&challenges[0], "alice", "wonderland", "REGISTER", 2);
    assert_eq!(
        server.verify("REGISTER", Some(&evicted), 111, lookup),
        Err(DigestError::StaleNonce)
    );
    // Still-tracked nonces keep working, newer ones too; expired entries make room first.
    let kept = answer(&challenges[2], "alice", "wonderland", "REGISTER", 2);
    assert!(server.verify("REGISTER", Some(&kept), 111, lookup).is_ok());
    let fresh = server.challenge(500, false).remove(0);
    let a = answer(&fresh, "alice", "wonderland", "REGISTER", 1);
    assert!(server.verify("REGISTER", Some(&a), 500, lookup).is_ok());
    assert!(server.tracked() <= 2);
}
