//! Certificates made at test time: a CA, a server certificate for
//! `127.0.0.1` and `localhost`, and a client certificate, all signed by the
//! CA and written as PEM files. No test depends on a certificate that can
//! expire in the repository.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};

/// The PEM files of one test PKI.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA's certificate: what clients trust, and what a server that
    /// demands client certificates checks them against.
    pub ca: PathBuf,
    /// The server's certificate (for `127.0.0.1` and `localhost`).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate (for a broker that must present one).
    pub client_cert: PathBuf,
    /// The client certificate's private key.
    pub client_key: PathBuf,
}

fn write(dir: &Path, name: String, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("the test directory is writable");
    path
}

impl Pki {
    /// Makes a new PKI in `dir`, its files named `<tag>-...`.
    ///
    /// # Panics
    /// If key generation fails or `dir` is not writable (a broken test
    /// machine).
    pub fn make(dir: &Path, tag: &str) -> Pki {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct subject names: with rcgen's one default name for all, a
        // leaf's subject equals its issuer and OpenSSL calls it self-signed.
        ca_params.distinguished_name.push(DnType::CommonName, "carbonx test CA");
        let ca = ca_params.self_signed(&ca_key).expect("a self-signed CA");
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().expect("a leaf key");
            let mut params = CertificateParams::new(names.clone()).expect("leaf parameters");
            params.distinguished_name.push(DnType::CommonName, names[0].as_str());
            let cert = params.signed_by(&key, &ca, &ca_key).expect("a leaf signed by the CA");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
        let (client_cert, client_key) = leaf(vec!["broker".into()]);
        Pki {
            ca: write(dir, format!("{tag}-ca.pem"), &ca.pem()),
            server_cert: write(dir, format!("{tag}-server.pem"), &server_cert),
            server_key: write(dir, format!("{tag}-server.key"), &server_key),
            client_cert: write(dir, format!("{tag}-client.pem"), &client_cert),
            client_key: write(dir, format!("{tag}-client.key"), &client_key),
        }
    }
}
