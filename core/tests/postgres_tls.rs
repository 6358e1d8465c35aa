//! The PostgreSQL store's connection security against a live TLS-only server (issue 21).
//! `scripts/test-postgres.sh` starts the throwaway cluster with TLS on (its own CA and a server
//! certificate for `localhost` only, SCRAM passwords, no plaintext entry in `pg_hba.conf`), and
//! sets `PHIVAULT_PG_URL` (a `verify-full` URL with the password) and `PHIVAULT_PG_OTHER_CA`
//! (a CA that did not sign the server's certificate). Run without them, these tests fail
//! rather than pass for nothing; a plain `cargo test` lists them as ignored.

#![cfg(feature = "postgres")]

use phivault::store::{PgStore, Space, Store};
use std::process::Command;

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: run scripts/test-postgres.sh"),
    }
}

/// The verify-full URL and its password.
fn tls_url() -> (String, String) {
    let url = env("PHIVAULT_PG_URL");
    assert!(
        url.contains("sslmode=verify-full"),
        "the test cluster URL is verify-full"
    );
    let userinfo = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(u, _)| u)
        .expect("user info");
    let password = userinfo.split_once(':').expect("a password in the URL").1;
    (url.clone(), password.to_owned())
}

fn refused(url: &str, password: &str) -> String {
    let e = PgStore::connect(url).expect_err("the connection must be refused");
    let msg = e.to_string();
    assert!(
        !msg.contains(password),
        "the password is in an error: {msg}"
    );
    assert!(
        !format!("{e:?}").contains(password),
        "the password is in Debug"
    );
    msg
}

fn set_param(url: &str, key: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with(&format!("{key}=")))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("{key}={value}"));
    format!("{base}?{}", pairs.join("&"))
}

#[test]
#[ignore = "needs the TLS PostgreSQL cluster of scripts/test-postgres.sh"]
fn verify_full_connects_and_checks_the_server() {
    let (url, password) = tls_url();
    let store = PgStore::connect(&url).expect("verify-full with the right CA");
    assert!(store.get(Space::Meta, b"absent").expect("get").is_none());
    assert!(!format!("{store:?}").contains(&password));

    // A CA that did not sign the server's certificate.
    let wrong = set_param(&url, "sslrootcert", &env("PHIVAULT_PG_OTHER_CA"));
    let msg = refused(&wrong, &password);
    assert!(
        msg.contains("certificate") || msg.contains("UnknownIssuer"),
        "the error should say the certificate was refused: {msg}"
    );
    // verify-ca accepts the right CA for any name; verify-full checks the name: the server's
    // certificate names `localhost` only, so 127.0.0.1 is refused by verify-full.
    let by_ip = url.replacen("@localhost:", "@127.0.0.1:", 1);
    assert_ne!(by_ip, url, "the test URL names localhost");
    let msg = refused(&by_ip, &password);
    assert!(msg.contains("certificate") || msg.contains("Name"), "{msg}");
    PgStore::connect(&set_param(&by_ip, "sslmode", "verify-ca"))
        .expect("verify-ca: the chain is good, the name is not checked");
    // require without a root: encrypted, not authenticated (libpq's meaning) — it connects
    // even with no CA at all.
    let (base, _) = url.split_once('?').expect("query");
    PgStore::connect(&format!("{base}?sslmode=require")).expect("require");
    // With a root certificate, prefer and require check the chain (not the name), as libpq.
    for mode in ["prefer", "require"] {
        let with_wrong = set_param(
            &set_param(&url, "sslmode", mode),
            "sslrootcert",
            &env("PHIVAULT_PG_OTHER_CA"),
        );
        refused(&with_wrong, &password);
        PgStore::connect(&set_param(&by_ip, "sslmode", mode))
            .expect("the right CA: the chain holds, the name is not checked");
    }
}

#[test]
#[ignore = "needs the TLS PostgreSQL cluster of scripts/test-postgres.sh"]
fn plaintext_and_bad_passwords_are_refused_without_echoing_the_password() {
    let (url, password) = tls_url();
    // The server accepts TLS only: a client that will not use it is refused.
    let msg = refused(&set_param(&url, "sslmode", "disable"), &password);
    assert!(
        msg.contains("pg_hba.conf") || msg.contains("no encryption"),
        "{msg}"
    );
    // A wrong password: refused, and neither password is echoed.
    let bad = url.replacen(&format!(":{password}@"), ":Wr0ng-canary-pw@", 1);
    let msg = refused(&bad, &password);
    assert!(!msg.contains("Wr0ng-canary-pw"), "{msg}");
    assert!(msg.contains("password"), "{msg}");
    // A root certificate file that does not exist: named, not the URL.
    let msg = refused(
        &set_param(&url, "sslrootcert", "/nonexistent/ca.pem"),
        &password,
    );
    assert!(msg.contains("/nonexistent/ca.pem"), "{msg}");
}

/// The password from a password file (`PGPASSFILE`), in a child process so that the
/// environment variable is its own.
#[test]
#[ignore = "needs the TLS PostgreSQL cluster of scripts/test-postgres.sh"]
fn the_password_may_come_from_pgpassfile() {
    let (url, password) = tls_url();
    let without = url.replacen(&format!(":{password}@"), "@", 1);
    assert_ne!(without, url);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("pgpass");
    std::fs::write(
        &file,
        format!("# test\nlocalhost:*:*:postgres:{password}\n"),
    )
    .expect("write");
    let run = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "pgpass_child", "--ignored", "--nocapture"])
            .env("PV_PGPASS_URL", &without)
            .env("PGPASSFILE", &file)
            .output()
            .expect("child")
    };
    let ok = run(0o600);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let open = run(0o644);
    assert!(
        !open.status.success(),
        "a world-readable password file must be refused"
    );
    let out =
        String::from_utf8_lossy(&open.stdout).into_owned() + &String::from_utf8_lossy(&open.stderr);
    assert!(out.contains("0600"), "{out}");
    assert!(!out.contains(&password), "{out}");
}

#[test]
#[ignore = "run by the_password_may_come_from_pgpassfile"]
fn pgpass_child() {
    let Ok(url) = std::env::var("PV_PGPASS_URL") else {
        return;
    };
    match PgStore::connect(&url) {
        Ok(s) => {
            s.get(Space::Meta, b"absent").expect("get");
        }
        Err(e) => panic!("connect: {e}"),
    }
}
