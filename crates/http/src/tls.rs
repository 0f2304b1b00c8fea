//! The TLS configuration of every outbound client, built once per process.
//!
//! Mozilla's root program is compiled in (`webpki-roots`) instead of read from the
//! platform: each reqwest client used to load and parse the system store on its own
//! (`/etc/ssl/certs`, ~150 certificates, twice over on Debian), which was most of a Lambda
//! function's init time, and the destinations (NOAA, cps.golf, ntfy) are public sites
//! whose chains end in that program anyway. The same roots on every platform, too.

use std::sync::{Arc, OnceLock};

/// A clone of the process-wide client configuration (cheap: the roots are shared).
pub fn client_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
                Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
                // The provider's defaults are the safe versions: this cannot fail for it.
                Err(e) => unreachable!("aws-lc-rs supports the default TLS versions: {e}"),
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_configuration_is_built_once_per_process() {
        let c = super::client_config();
        // A second call shares the first one's parts instead of building them again.
        assert!(std::sync::Arc::ptr_eq(&c.crypto_provider().clone(), super::client_config().crypto_provider()));
    }
}
