//! TLS client settings for an upstream, built once at start-up.
//!
//! Server certificates are verified against the system CA bundle (or `SSL_CERT_FILE`), plus the
//! origin's `ca_file`. `insecure_ssl` skips certificate verification (handshake signatures are
//! still checked) and is announced loudly at start-up by the configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::sys::file::read_bounded;

/// The most a CA file (`ca_file`, `SSL_CERT_FILE`, a system bundle) may hold. Distribution
/// bundles are a few hundred KiB; the bound keeps a path to `/dev/zero` or a huge file from
/// exhausting memory at start-up.
pub const CA_FILE_LIMIT: u64 = 16 << 20;

/// Where Linux distributions keep their CA bundle, most common first.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

#[derive(Debug)]
pub enum TlsError {
    NoSystemBundle,
    Read(PathBuf, String),
    NoCertificates(PathBuf),
    Setup(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoSystemBundle => write!(
                f,
                "no CA bundle found (looked at {}); install ca-certificates or set SSL_CERT_FILE",
                SYSTEM_BUNDLES.join(", ")
            ),
            TlsError::Read(path, e) => write!(
                f,
                "cannot read CA certificates from {}: {e}",
                path.display()
            ),
            TlsError::NoCertificates(path) => {
                write!(f, "{} holds no usable PEM certificate", path.display())
            }
            TlsError::Setup(e) => write!(f, "TLS set-up failed: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Where trust comes from for one upstream.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// `SSL_CERT_FILE`, replacing the system bundle when set.
    pub cert_file: Option<PathBuf>,
    /// The origin's `ca_file`, trusted in addition.
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
}

pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let config = if trust.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(trust)?)
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn roots(trust: &Trust) -> Result<RootCertStore, TlsError> {
    let bundle = match &trust.cert_file {
        Some(path) => path.clone(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or(TlsError::NoSystemBundle)?,
    };
    let mut store = RootCertStore::empty();
    add_pem_file(&mut store, &bundle)?;
    if let Some(extra) = &trust.ca_file {
        add_pem_file(&mut store, extra)?;
    }
    Ok(store)
}

fn add_pem_file(store: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    let pem = read_bounded(path, CA_FILE_LIMIT)
        .map_err(|e| TlsError::Read(path.to_path_buf(), e.to_string()))?;
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate =
            certificate.map_err(|e| TlsError::Read(path.to_path_buf(), e.to_string()))?;
        // A bundle may hold the odd certificate webpki cannot parse; skip it, keep the rest.
        if store.add(certificate).is_ok() {
            added += 1;
        }
    }
    if added == 0 {
        return Err(TlsError::NoCertificates(path.to_path_buf()));
    }
    Ok(())
}

/// `insecure_ssl`: any certificate is accepted, but the handshake is still verified to be
/// signed by the certificate presented.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
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
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certs_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs")
    }

    #[test]
    fn a_ca_file_is_trusted() {
        let trust = Trust {
            cert_file: Some(certs_dir().join("ca.pem")),
            ca_file: None,
            insecure: false,
        };
        assert_eq!(roots(&trust).unwrap().len(), 1);
    }

    #[test]
    fn a_file_without_certificates_is_an_error() {
        let trust = Trust {
            cert_file: Some(certs_dir().join("README.md")),
            ca_file: None,
            insecure: false,
        };
        assert!(matches!(roots(&trust), Err(TlsError::NoCertificates(_))));
        let missing = Trust {
            cert_file: Some(certs_dir().join("nope.pem")),
            ca_file: None,
            insecure: false,
        };
        let message = roots(&missing).unwrap_err().to_string();
        assert!(
            message.starts_with("cannot read CA certificates from"),
            "{message}"
        );
    }

    #[test]
    fn endless_or_huge_ca_files_are_refused_not_read_whole() {
        for (cert_file, ca_file) in [
            (Some(PathBuf::from("/dev/zero")), None),
            (
                Some(certs_dir().join("ca.pem")),
                Some(PathBuf::from("/dev/zero")),
            ),
        ] {
            let trust = Trust {
                cert_file,
                ca_file,
                insecure: false,
            };
            let message = roots(&trust).unwrap_err().to_string();
            assert_eq!(
                message,
                format!(
                    "cannot read CA certificates from /dev/zero: it is larger than {CA_FILE_LIMIT} bytes, \
                     the most this file may hold"
                )
            );
        }
    }

    #[test]
    fn insecure_configs_build_without_a_bundle() {
        let trust = Trust {
            cert_file: Some(PathBuf::from("/nonexistent")),
            ca_file: None,
            insecure: true,
        };
        assert!(client_config(&trust).is_ok());
    }
}
