//! How a `postgres://` URL becomes connections (feature `postgres`): the libpq-style TLS
//! settings (`sslmode`, `sslrootcert`), the password (in the URL or from a password file), and
//! the pool size. Nothing here is ever printed with the password in it.
//!
//! | `sslmode` | TLS | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default, as libpq) | if the server offers it, else plaintext | no, unless a root certificate is given or `~/.postgresql/root.crt` exists (then the chain, as libpq) |
//! | `require` | always | the same as `prefer` |
//! | `verify-ca` | always | chain to `sslrootcert` |
//! | `verify-full` | always | chain to `sslrootcert` and host name (**the setting for PHI**) |
//!
//! `sslrootcert` is a PEM file of one or more CA certificates; without it, `verify-ca` and
//! `verify-full` read `~/.postgresql/root.crt` as libpq does. Client certificates (`sslcert`,
//! `sslkey`), CRLs, `sslrootcert=system` and `sslmode=allow` are refused with a clear error
//! rather than ignored. TLS is rustls with the `ring` provider: TLS 1.2 and 1.3, no OpenSSL.
//!
//! Without a password in the URL, the password file `PGPASSFILE` (default `~/.pgpass`) is read
//! as libpq reads it (`host:port:database:user:password`, `*` matches anything, `\` escapes);
//! a file that group or others may read is refused.

use crate::error::StoreError;
use postgres::Config;
use postgres::config::{Host, SslMode as PgSslMode};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

/// The URL query parameter that sizes the connection pool (phivault's own; not sent to the
/// server).
pub const POOL_SIZE_PARAM: &str = "pool_size";

/// Largest pool a URL may ask for.
const MAX_POOL_SIZE: usize = 1024;

/// libpq's `sslmode`, as phivault implements it (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// TLS when the server offers it; its certificate chain checked only when a root
    /// certificate is at hand (as libpq).
    Prefer,
    /// TLS always; the certificate chain checked only when a root certificate is at hand.
    Require,
    /// TLS, certificate chain checked against the root certificates.
    VerifyCa,
    /// TLS, certificate chain and host name checked: the setting for PHI.
    VerifyFull,
}

impl SslMode {
    /// The mode named as libpq names it.
    pub fn from_name(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// How connections are wrapped.
#[derive(Clone)]
pub(crate) enum Tls {
    /// Plaintext (`sslmode=disable`).
    Plain,
    /// rustls, with the configured certificate check.
    Rustls(MakeRustlsConnect),
}

/// Everything [`super::PgStore`] needs to open connections.
pub(crate) struct ConnectSpec {
    /// The client configuration, password included.
    pub config: Config,
    /// The TLS wrapper.
    pub tls: Tls,
    /// The mode asked for.
    pub mode: SslMode,
    /// `pool_size` from the URL, if any.
    pub pool_size: Option<usize>,
    /// The password, to scrub from any message that might echo it.
    secret: Option<Zeroizing<String>>,
}

impl ConnectSpec {
    /// Reads a `postgres://` URL. Errors never quote the URL.
    pub fn parse(url: &str) -> Result<ConnectSpec, StoreError> {
        let (prefix, userinfo, rest) = split_url(url)?;
        let (hostpart, query) = rest.split_once('?').unwrap_or((rest, ""));
        let base = Zeroizing::new(match userinfo {
            Some(u) => format!("{prefix}{u}@{hostpart}"),
            None => format!("{prefix}{hostpart}"),
        });
        let mut mode = None;
        let mut rootcert = None;
        let mut pool_size = None;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k)?;
            match key.as_str() {
                "sslmode" => {
                    let v = percent_decode(v)?;
                    mode = Some(SslMode::from_name(&v).ok_or_else(|| {
                        backend(if v == "allow" {
                            "sslmode=allow is not supported: use prefer, or verify-full for PHI"
                                .to_owned()
                        } else {
                            "sslmode must be disable, prefer, require, verify-ca or verify-full"
                                .to_owned()
                        })
                    })?);
                }
                "sslrootcert" => {
                    let v = percent_decode(v)?;
                    if v == "system" {
                        return Err(backend(
                            "sslrootcert=system is not supported: name a PEM file of the CA \
                             certificates",
                        ));
                    }
                    rootcert = Some(PathBuf::from(v));
                }
                POOL_SIZE_PARAM => {
                    let n = percent_decode(v)?
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                        .ok_or_else(|| {
                            backend(format!("{POOL_SIZE_PARAM} must be 1 to {MAX_POOL_SIZE}"))
                        })?;
                    pool_size = Some(n);
                }
                "sslcert"
                | "sslkey"
                | "sslpassword"
                | "sslcrl"
                | "sslcrldir"
                | "sslsni"
                | "sslcertmode"
                | "requiressl"
                | "sslcompression"
                | "ssl_min_protocol_version"
                | "ssl_max_protocol_version"
                | "gssencmode" => {
                    return Err(backend(format!(
                        "the URL parameter {key} is not supported by phivault's PostgreSQL \
                         store (client certificates and CRLs are not implemented)"
                    )));
                }
                _ => passed.push(pair),
            }
        }
        let rebuilt = if passed.is_empty() {
            base.to_string()
        } else {
            format!("{}?{}", base.as_str(), passed.join("&"))
        };
        let rebuilt = Zeroizing::new(rebuilt);
        let mut config: Config = rebuilt
            .parse()
            .map_err(|_| backend("the database URL is not valid"))?;
        let mode = mode.unwrap_or(SslMode::Prefer);
        if config.get_password().is_none()
            && let Some(pw) = password_from_file(&config)?
        {
            config.password(pw.as_bytes());
        }
        let secret = config
            .get_password()
            .filter(|p| !p.is_empty())
            .map(|p| Zeroizing::new(String::from_utf8_lossy(p).into_owned()));
        let tls = match mode {
            SslMode::Disable => {
                config.ssl_mode(PgSslMode::Disable);
                Tls::Plain
            }
            // As libpq: with a root certificate (named, or `~/.postgresql/root.crt` when it
            // exists) the chain is checked in these modes too, not the name.
            SslMode::Prefer | SslMode::Require => {
                config.ssl_mode(if mode == SslMode::Prefer {
                    PgSslMode::Prefer
                } else {
                    PgSslMode::Require
                });
                let check = match rootcert.or_else(default_root_cert) {
                    Some(path) => Check::Chain(read_roots(&path)?),
                    None => Check::None,
                };
                Tls::Rustls(MakeRustlsConnect::new(client_config(check)?))
            }
            SslMode::VerifyCa | SslMode::VerifyFull => {
                config.ssl_mode(PgSslMode::Require);
                let path = match rootcert {
                    Some(p) => p,
                    None => default_root_cert().ok_or_else(|| {
                        backend(
                            "sslmode=verify-ca and verify-full need the CA certificates: set \
                             sslrootcert=PATH (a PEM file)",
                        )
                    })?,
                };
                let roots = read_roots(&path)?;
                let check = if mode == SslMode::VerifyFull {
                    Check::ChainAndName(roots)
                } else {
                    Check::Chain(roots)
                };
                Tls::Rustls(MakeRustlsConnect::new(client_config(check)?))
            }
        };
        Ok(ConnectSpec {
            config,
            tls,
            mode,
            pool_size,
            secret,
        })
    }

    /// Opens one plain client connection with these settings (TLS as configured).
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        match &self.tls {
            Tls::Plain => self.config.connect(postgres::NoTls),
            Tls::Rustls(tls) => self.config.connect(tls.clone()),
        }
    }

    /// `message` with every occurrence of the password replaced.
    pub fn scrub(&self, message: String) -> String {
        match &self.secret {
            Some(pw) if message.contains(pw.as_str()) => message.replace(pw.as_str(), "***"),
            _ => message,
        }
    }
}

/// A plain `postgres::Client` for a vault URL, with the same TLS, password and parameter
/// handling as [`super::PgStore`]: for administration, migrations and benchmarks beside a
/// vault. Errors never hold the password.
pub fn connect_client(url: &str) -> Result<postgres::Client, StoreError> {
    let spec = ConnectSpec::parse(url)?;
    spec.connect()
        .map_err(|e| StoreError::Backend(spec.scrub(format!("postgres: {e}"))))
}

/// Whether a `postgres://` URL carries a password (in its user information or as a
/// `password` parameter): a handle that would hand the URL to other processes refuses it.
/// A URL that does not parse counts as carrying one (fail closed).
pub fn has_password(url: &str) -> bool {
    let Ok((_, userinfo, rest)) = split_url(url) else {
        return true;
    };
    if userinfo.is_some_and(|u| u.contains(':')) {
        return true;
    }
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
    query.split('&').any(|p| {
        let k = p.split_once('=').map(|(k, _)| k).unwrap_or(p);
        percent_decode(k).map(|k| k == "password").unwrap_or(true)
    })
}

/// A `postgres://` URL cut as the `postgres` crate cuts it: the scheme, the user information
/// (everything before the first `@`, if any) and the rest. A user or password holding `/`,
/// `?` or `#` unescaped is refused: the crate and a reader of the URL would disagree on
/// where it ends (a password with `?` would make its tail look like query parameters).
pub(crate) fn split_url(url: &str) -> Result<(&str, Option<&str>, &str), StoreError> {
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| url.starts_with(p))
        .ok_or_else(|| backend("the database URL must start with postgres:// or postgresql://"))?;
    let after = &url[scheme.len()..];
    match after.split_once('@') {
        Some((userinfo, rest)) => {
            if userinfo.contains(['/', '?', '#']) {
                return Err(backend(
                    "the database URL's user or password holds '/', '?', '#' or '@': \
                     percent-encode it (%2F, %3F, %23, %40)",
                ));
            }
            Ok((scheme, Some(userinfo), rest))
        }
        None => Ok((scheme, None, after)),
    }
}

fn backend(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("postgres: {msg}"))
}

/// Decodes `%XX` escapes (and `+` as itself, as libpq does).
fn percent_decode(s: &str) -> Result<String, StoreError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| backend("the database URL has a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| backend("the database URL is not valid UTF-8"))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn default_root_cert() -> Option<PathBuf> {
    home()
        .map(|h| h.join(".postgresql/root.crt"))
        .filter(|p| p.is_file())
}

/// The CA certificates of a PEM file.
fn read_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let shown = path.display();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| backend(format!("cannot read sslrootcert {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in iter {
        let cert =
            cert.map_err(|e| backend(format!("sslrootcert {shown} is not valid PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            backend(format!(
                "sslrootcert {shown} holds a certificate that cannot be a root: {e}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(backend(format!("sslrootcert {shown} holds no certificate")));
    }
    Ok(roots)
}

/// What the TLS client checks of the server's certificate.
enum Check {
    /// Nothing (libpq's `prefer` and `require`): the connection is encrypted, not
    /// authenticated.
    None,
    /// The chain up to one of the roots (`verify-ca`).
    Chain(RootCertStore),
    /// The chain and the host name (`verify-full`).
    ChainAndName(RootCertStore),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(check: Check) -> Result<ClientConfig, StoreError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| backend(format!("TLS set-up: {e}")))?;
    let webpki = |roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| backend(format!("TLS set-up: {e}")))
    };
    Ok(match check {
        Check::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        Check::Chain(roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki(roots)?)))
            .with_no_client_auth(),
        Check::ChainAndName(roots) => builder
            .with_webpki_verifier(webpki(roots)?)
            .with_no_client_auth(),
    })
}

/// `prefer`/`require` without a root: any certificate, but the handshake's signatures are
/// still checked against it (libpq's behaviour; documented as not for PHI).
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the whole WebPKI check except the host name (checked last by rustls, after
/// the chain, so a name mismatch means the chain was good).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The password for `config`'s first host, port, database and user from the password file,
/// as libpq finds it.
fn password_from_file(config: &Config) -> Result<Option<Zeroizing<String>>, StoreError> {
    let (path, explicit) = match std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(p) => (PathBuf::from(p), true),
        None => match home() {
            Some(h) => (h.join(".pgpass"), false),
            None => return Ok(None),
        },
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        Ok(_) | Err(_) if !explicit => return Ok(None),
        _ => {
            return Err(backend(format!(
                "PGPASSFILE {} is not a readable file",
                path.display()
            )));
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(backend(format!(
                "password file {} has group or world access; it must be 0600",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
        backend(format!(
            "cannot read password file {}: {}",
            path.display(),
            e.kind()
        ))
    })?);
    let Some(user) = config.get_user() else {
        return Ok(None);
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(_)) => "localhost".to_owned(),
        None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or(user);
    Ok(pgpass_lookup(&text, [&host, &port, db, user]))
}

/// The password of the first line of a `.pgpass` text matching `want` (host, port, database,
/// user), as libpq reads the file: fields separated by unescaped `:`, `\` escapes the next
/// character, a field that is exactly an unescaped `*` matches anything, the password ends at
/// the next unescaped `:` (or the line's end).
fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<Zeroizing<String>> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f.wildcard || f.text.as_str() == w);
        if matches {
            return Some(Zeroizing::new(fields[4].text.as_str().to_owned()));
        }
    }
    None
}

/// One field of a `.pgpass` line.
struct PgpassField {
    /// The field with its escapes resolved.
    text: Zeroizing<String>,
    /// The field was exactly an unescaped `*`.
    wildcard: bool,
}

/// A `.pgpass` line's fields (at most 5; anything after the password's end is ignored).
fn split_pgpass(line: &str) -> Vec<PgpassField> {
    let mut fields = Vec::with_capacity(5);
    let mut text = Zeroizing::new(String::new());
    let mut escaped_any = false;
    let mut chars = line.chars();
    loop {
        match chars.next() {
            Some('\\') => match chars.next() {
                Some(n) => {
                    text.push(n);
                    escaped_any = true;
                }
                None => text.push('\\'),
            },
            Some(':') if fields.len() < 4 => {
                let wildcard = !escaped_any && text.as_str() == "*";
                fields.push(PgpassField {
                    text: std::mem::take(&mut text),
                    wildcard,
                });
                escaped_any = false;
            }
            // The line's end, or the unescaped ':' that ends the password.
            Some(':') | None => {
                let wildcard = !escaped_any && text.as_str() == "*";
                fields.push(PgpassField {
                    text: std::mem::take(&mut text),
                    wildcard,
                });
                break;
            }
            Some(c) => text.push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_as_libpq() {
        let text = "# comment\n\
                    db.example:5432:other:alice:nope\n\
                    db.example:*:clinic:alice:pa\\:ss\\\\w:rd\n\
                    \\*:*:*:*:escaped-star-is-literal\n\
                    *:*:*:*:fallback\n";
        let got = |w| pgpass_lookup(text, w).map(|p| p.as_str().to_owned());
        // The password ends at the next unescaped ':' (libpq).
        assert_eq!(
            got(["db.example", "5432", "clinic", "alice"]).as_deref(),
            Some("pa:ss\\w")
        );
        assert_eq!(
            got(["*", "1", "d", "u"]).as_deref(),
            Some("escaped-star-is-literal")
        );
        assert_eq!(
            pgpass_lookup("h:1:d:u:ends-in\\", ["h", "1", "d", "u"])
                .map(|p| p.as_str().to_owned())
                .as_deref(),
            Some("ends-in\\")
        );
        assert_eq!(
            got(["db.example", "5432", "other", "alice"]).as_deref(),
            Some("nope")
        );
        assert_eq!(got(["h", "1", "d", "u"]).as_deref(), Some("fallback"));
        assert_eq!(pgpass_lookup("h:1:d:u\n", ["h", "1", "d", "u"]), None);
    }

    #[test]
    fn modes_and_parameters() {
        let spec = ConnectSpec::parse(
            "postgres://u:pw@localhost:5/db?sslmode=disable&pool_size=3&application_name=x",
        )
        .expect("parse");
        assert_eq!(spec.mode, SslMode::Disable);
        assert_eq!(spec.pool_size, Some(3));
        assert_eq!(spec.config.get_application_name(), Some("x"));
        assert_eq!(
            ConnectSpec::parse("postgres://u@h/db")
                .expect("default")
                .mode,
            SslMode::Prefer
        );
        for bad in [
            "postgres://u:hunter22@h/db?sslmode=allow",
            "postgres://u:hunter22@h/db?sslmode=bogus",
            "postgres://u:hunter22@h/db?sslcert=/c.pem",
            "postgres://u:hunter22@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "postgres://u:hunter22@h/db?sslrootcert=system",
            "postgres://u:hunter22@h/db?pool_size=0",
            "postgres://u:hunter22@h/db?pool_size=%zz",
            "postgres://u:hunter22@h/db?sslmode=%+1",
            // Reserved characters unescaped in the password: refused, never a silent
            // downgrade of the sslmode that follows.
            "postgres://u:hunter22?x@h/db?sslmode=require",
            "postgres://u:hunter22/x@h/db",
            "host=h user=u password=hunter22 sslmode=require",
            "postgres://u:hunter22@h/db?nonsense=1",
        ] {
            let e = ConnectSpec::parse(bad).err().expect(bad).to_string();
            assert!(!e.contains("hunter22"), "{e}");
        }
    }

    proptest::proptest! {
        /// Any URL tail (the `pg_url` fuzz target's property, on stable): no panic, and no
        /// error that quotes the password.
        #[test]
        fn any_url_parses_or_fails_without_the_password(
            rest in "[a-z0-9:/?&=%._+,@\\-]{0,80}",
        ) {
            let url = format!("postgres://user:Canary-pw-7@{rest}");
            if let Err(e) = ConnectSpec::parse(&url) {
                let shown = format!("{e} {e:?}");
                proptest::prop_assert!(!shown.contains("Canary-pw-7"));
            }
        }
    }

    #[test]
    fn the_password_is_scrubbed() {
        let spec = ConnectSpec::parse("postgres://u:s3cret@h/db?sslmode=disable").expect("parse");
        assert_eq!(spec.scrub("x s3cret y".into()), "x *** y");
        assert_eq!(spec.scrub("nothing".into()), "nothing");
    }
}
