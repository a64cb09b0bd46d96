//! Renders `proxy/nginx.conf.template` for one stack run.
//!
//! Rendering is a pure function of its parameters, so every header and redirect rule is unit
//! tested here and checked with the real `nginx -t` in the end-to-end suite.

pub const TEMPLATE: &str = include_str!("../../proxy/nginx.conf.template");

/// Certificate and key paths as the proxy container sees them.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct ProxyParams {
    pub fqdn: String,
    /// `host:port` of the app inside the run's network.
    pub app_upstream: String,
    /// `host:port` of Mailpit or the catcher, served under `/mailpit/`.
    pub mailpit_upstream: Option<String>,
    /// `None` is the plain-HTTP debugging mode (`--no-tls`).
    pub tls: Option<TlsFiles>,
    /// Off by default: a dev domain's subdomains are not ours to pin to HTTPS.
    pub hsts_include_subdomains: bool,
    pub access_log: String,
}

pub fn render(p: &ProxyParams) -> String {
    let (listen, default_port, redirect, tls_directives) = match &p.tls {
        Some(t) => (
            "listen 443 ssl;",
            "443",
            "    server {\n        listen 80;\n        server_name _;\n        access_log off;\n        return 301 https://$host$request_uri;\n    }\n".to_string(),
            format!(
                "        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_prefer_server_ciphers off;\n        ssl_session_cache shared:harness:1m;\n",
                t.cert, t.key
            ),
        ),
        None => ("listen 80;", "80", String::new(), String::new()),
    };
    let mut headers = String::new();
    if p.tls.is_some() {
        let sub = if p.hsts_include_subdomains {
            "; includeSubDomains"
        } else {
            ""
        };
        headers.push_str(&format!(
            "        add_header Strict-Transport-Security \"max-age=31536000{sub}\" always;\n"
        ));
    }
    headers.push_str("        add_header X-Content-Type-Options nosniff always;\n");
    headers.push_str("        add_header X-Frame-Options SAMEORIGIN always;\n");
    headers
        .push_str("        add_header Referrer-Policy strict-origin-when-cross-origin always;\n");
    let mailpit = match &p.mailpit_upstream {
        Some(up) => format!(
            "        location /mailpit/ {{\n            set $harness_mailpit http://{up};\n            proxy_pass $harness_mailpit;\n            proxy_http_version 1.1;\n            proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection $connection_upgrade;\n            proxy_set_header Host $http_host;\n            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n            proxy_set_header X-Forwarded-Proto $scheme;\n            proxy_read_timeout 1h;\n        }}\n"
        ),
        None => String::new(),
    };
    TEMPLATE
        .replace("{{LISTEN}}", listen)
        .replace("{{DEFAULT_PORT}}", default_port)
        .replace("{{REDIRECT_SERVER}}", &redirect)
        .replace("{{TLS_DIRECTIVES}}", &tls_directives)
        .replace("{{SECURITY_HEADERS}}", &headers)
        .replace("{{MAILPIT_LOCATION}}", &mailpit)
        .replace("{{FQDN}}", &p.fqdn)
        .replace("{{APP_UPSTREAM}}", &p.app_upstream)
        .replace("{{ACCESS_LOG}}", &p.access_log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ProxyParams {
        ProxyParams {
            fqdn: "app.localtest.me".into(),
            app_upstream: "app:80".into(),
            mailpit_upstream: Some("mailpit:8025".into()),
            tls: Some(TlsFiles {
                cert: "/certs/proxy.crt".into(),
                key: "/certs/proxy.key".into(),
            }),
            hsts_include_subdomains: false,
            access_log: "/var/log/harness/access.jsonl".into(),
        }
    }

    #[test]
    fn tls_mode_redirects_pins_protocols_and_sets_headers() {
        let c = render(&params());
        assert!(!c.contains("{{"), "unrendered placeholder:\n{c}");
        assert!(c.contains("listen 443 ssl;"));
        assert!(c.contains("return 301 https://$host$request_uri;"));
        assert!(c.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(c.contains("Strict-Transport-Security \"max-age=31536000\" always"));
        assert!(!c.contains("includeSubDomains"));
        for h in [
            "X-Content-Type-Options nosniff",
            "X-Frame-Options SAMEORIGIN",
            "Referrer-Policy",
        ] {
            assert!(c.contains(h), "{h}");
        }
        for h in [
            "Host $http_host",
            "X-Forwarded-For",
            "X-Forwarded-Proto $scheme",
            "X-Forwarded-Host",
            "X-Forwarded-Port $harness_forwarded_port",
        ] {
            assert!(c.contains(&format!("proxy_set_header {h}")), "{h}");
        }
        assert!(c.contains("location /mailpit/"));
        assert!(c.contains("proxy_set_header Upgrade $http_upgrade;"));
        assert!(c.contains("$request_time") && c.contains("$upstream_response_time"));
    }

    #[test]
    fn include_subdomains_only_when_asked() {
        let mut p = params();
        p.hsts_include_subdomains = true;
        assert!(render(&p).contains("max-age=31536000; includeSubDomains"));
    }

    #[test]
    fn plain_mode_has_no_tls_no_hsts_no_redirect() {
        let mut p = params();
        p.tls = None;
        p.mailpit_upstream = None;
        let c = render(&p);
        assert!(c.contains("listen 80;"));
        assert!(
            !c.contains("ssl_")
                && !c.contains("Strict-Transport-Security")
                && !c.contains("return 301")
        );
        assert!(!c.contains("/mailpit/"));
        assert!(c.contains("X-Frame-Options"));
    }
}
