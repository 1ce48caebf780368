//! Receivers: the [`Notifier`] trait and its two implementations, SMTP email (lettre) and JSON over
//! HTTP (ureq) for the webhook, Slack and Alertmanager payloads. Each attempt carries the
//! notification's idempotency key (HTTP `Idempotency-Key` header; email `Message-ID`), so a receiver
//! can drop the duplicate that a crash between send and acknowledgement causes.
//!
//! Every error says whether retrying can help ([`Failure`]), and its text has the receiver's
//! secrets (URL credentials, secret headers, the SMTP password) masked.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{Endpoint, HttpKind, Receiver, SmtpTls, Target};
use crate::notification::Notification;
use crate::redact;

/// Whether a failed attempt is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// May succeed soon (connection refused, timeout, HTTP 5xx/408/429, SMTP 4xx): retried in
    /// this run with backoff, then by later runs.
    Transient,
    /// Cannot succeed as sent (HTTP 4xx, SMTP 5xx such as failed authentication): not retried.
    Permanent,
    /// Needs a fix on this side or the receiver's (an unset variable, an untrusted certificate):
    /// not retried in this run, retried by later runs until the notification expires.
    Setup,
}

/// Why one attempt failed (secrets already redacted from the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What happened.
    pub message: String,
    /// Whether to retry.
    pub failure: Failure,
}

impl DeliveryError {
    fn new(failure: Failure, message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            message: message.into(),
            failure,
        }
    }
}

/// Delivers a notification; one call is one attempt.
pub trait Notifier {
    /// Sends once; `Ok` means the receiver acknowledged it.
    fn send(&self, notification: &Notification) -> Result<(), DeliveryError>;
}

/// The notifier of a configured receiver.
pub fn notifier(receiver: &Receiver) -> Result<Box<dyn Notifier>, DeliveryError> {
    let timeout = Duration::from_millis(receiver.timeout_ms);
    // Why trust roots only with TLS? A broken SSL_CERT_FILE must not stop a plain-HTTP or
    // loopback receiver.
    match &receiver.target {
        Target::Http {
            kind,
            url,
            headers,
            headers_env,
        } => {
            let url = endpoint_url(url)?;
            let roots = if url.starts_with("https://") {
                trusted_roots(receiver)?
            } else {
                None
            };
            let mut all = headers.clone();
            for (header, var) in headers_env {
                all.insert(header.clone(), secret(var)?);
            }
            let mut secrets: Vec<String> = all
                .iter()
                .filter(|(h, _)| headers_env.contains_key(*h) || redact::is_secret_header(h))
                .map(|(_, v)| v.clone())
                .collect();
            secrets.extend(redact::url_secrets(&url));
            Ok(Box::new(HttpNotifier {
                receiver: receiver.name.clone(),
                kind: *kind,
                url,
                headers: all,
                secrets,
                timeout,
                roots,
            }))
        }
        Target::Email { tls, .. } => {
            let roots = if *tls == SmtpTls::None {
                None
            } else {
                trusted_roots(receiver)?
            };
            Ok(Box::new(EmailNotifier {
                receiver: receiver.clone(),
                timeout,
                roots,
            }))
        }
    }
}

/// The URL an HTTP receiver posts to; one from the environment is checked as `url` is at load
/// (the message masks its secrets: such a URL is usually a credential).
fn endpoint_url(endpoint: &Endpoint) -> Result<String, DeliveryError> {
    match endpoint {
        Endpoint::Literal(url) => Ok(url.clone()),
        Endpoint::Env(var) => {
            let url = secret(var)?;
            crate::config::check_url(&url).map_err(|m| {
                DeliveryError::new(Failure::Setup, format!("environment variable {var}: {m}"))
            })?;
            Ok(url)
        }
    }
}

/// The value of a secret's environment variable; the error names the variable, never a value.
fn secret(var: &str) -> Result<String, DeliveryError> {
    std::env::var(var)
        .map_err(|_| DeliveryError::new(Failure::Setup, format!("environment variable {var} is not set")))
}

/// CA certificates (PEM) to trust instead of the built-in roots: the receiver's `ca_file`, else
/// the file `SSL_CERT_FILE` names (as OpenSSL and curl do), else none.
fn trusted_roots(receiver: &Receiver) -> Result<Option<(PathBuf, Vec<u8>)>, DeliveryError> {
    let path = receiver
        .ca_file
        .clone()
        .or_else(|| std::env::var_os("SSL_CERT_FILE").map(PathBuf::from));
    let Some(path) = path else {
        return Ok(None);
    };
    let pem = std::fs::read(&path)
        .map_err(|e| DeliveryError::new(Failure::Setup, format!("CA file {}: {e}", path.display())))?;
    Ok(Some((path, pem)))
}

/// A TLS error made actionable: rustls's variant names (`UnknownIssuer`, `CaUsedAsEndEntity`)
/// mean little to an operator.
fn tls_hint(message: &str, roots: Option<&Path>) -> Option<String> {
    let trust = match roots {
        Some(p) => format!(
            "it is not signed by a CA in {}; set ca_file to the PEM file of the CA that signed it",
            p.display()
        ),
        None => "it is not signed by a public CA; set ca_file to the PEM file of your CA".to_owned(),
    };
    let hint = if message.contains("UnknownIssuer") {
        format!("the server's certificate is not trusted: {trust}")
    } else if message.contains("CaUsedAsEndEntity") {
        "the server presents a CA certificate as its own (a self-signed certificate with CA:TRUE); \
         give it a certificate issued by a CA and set ca_file to that CA"
            .to_owned()
    } else if message.contains("NotValidForName") {
        "the server's certificate is not valid for this host name".to_owned()
    } else if message.contains("Expired") {
        "the server's certificate has expired".to_owned()
    } else if message.contains("BadSignature") || message.contains("InvalidCertificate") {
        format!("the server's certificate is invalid: {trust}")
    } else {
        return None;
    };
    Some(format!("TLS: {hint} ({message})"))
}

/// JSON over HTTP POST.
struct HttpNotifier {
    receiver: String,
    kind: HttpKind,
    url: String,
    headers: std::collections::BTreeMap<String, String>,
    secrets: Vec<String>,
    timeout: Duration,
    roots: Option<(PathBuf, Vec<u8>)>,
}

impl HttpNotifier {
    fn body(&self, n: &Notification) -> serde_json::Value {
        match self.kind {
            HttpKind::Webhook => n.webhook_json(&self.receiver),
            HttpKind::Slack => n.slack_json(),
            HttpKind::Alertmanager => n.alertmanager_json(&self.receiver),
        }
    }

    fn agent(&self) -> Result<ureq::Agent, DeliveryError> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false);
        if let Some((path, pem)) = &self.roots {
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                let message = format!("CA file {}: no PEM certificate in it", path.display());
                return Err(DeliveryError::new(Failure::Setup, message));
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
                .build();
            config = config.tls_config(tls);
        }
        Ok(config.build().into())
    }
}

/// Why are 408, 425 and 429 transient? They say "not now", unlike the rest of 4xx, which says
/// the request itself is wrong and will be refused again.
fn http_failure(status: u16) -> Failure {
    match status {
        408 | 425 | 429 => Failure::Transient,
        400..=499 => Failure::Permanent,
        500..=599 => Failure::Transient,
        _ => Failure::Permanent,
    }
}

impl Notifier for HttpNotifier {
    fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let agent = self.agent()?;
        let body = serde_json::to_vec(&self.body(n))
            .map_err(|e| DeliveryError::new(Failure::Permanent, e.to_string()))?;
        let mut request = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("loglens/", env!("CARGO_PKG_VERSION")))
            .header("Idempotency-Key", &n.key);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let shown = redact::url(&self.url);
        let response = request.send(&body[..]).map_err(|e| {
            let text = redact::scrub(&e.to_string(), &self.secrets);
            let roots = self.roots.as_ref().map(|(p, _)| p.as_path());
            match tls_hint(&text, roots) {
                Some(hint) => DeliveryError::new(Failure::Setup, format!("{shown}: {hint}")),
                None => DeliveryError::new(Failure::Transient, format!("{shown}: {text}")),
            }
        })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let message = format!("{shown} answered HTTP {status}");
            Err(DeliveryError::new(http_failure(status), message))
        }
    }
}

/// SMTP email with a plain-text and an HTML part.
struct EmailNotifier {
    receiver: Receiver,
    timeout: Duration,
    roots: Option<(PathBuf, Vec<u8>)>,
}

impl EmailNotifier {
    fn message(&self, n: &Notification, from: &str, to: &[String]) -> Result<Message, DeliveryError> {
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| DeliveryError::new(Failure::Permanent, format!("{a:?}: {e}")))
        };
        let mut builder = Message::builder()
            .from(mailbox(from)?)
            .subject(n.subject.clone())
            .message_id(Some(format!(
                "<{}.{}@loglens>",
                n.key,
                sanitize(&self.receiver.name)
            )));
        for address in to {
            builder = builder.to(mailbox(address)?);
        }
        if let Some(first) = &n.thread {
            // Why both headers? Mail clients thread on either; the id is the first firing's.
            let id = format!("<{first}.{}@loglens>", sanitize(&self.receiver.name));
            builder = builder.in_reply_to(id.clone()).references(id);
        }
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(n.text_body()),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(n.html_body()),
            );
        builder
            .multipart(body)
            .map_err(|e| DeliveryError::new(Failure::Permanent, e.to_string()))
    }

    fn tls_parameters(&self, host: &str) -> Result<TlsParameters, DeliveryError> {
        let setup = |e: lettre::transport::smtp::Error| DeliveryError::new(Failure::Setup, e.to_string());
        let mut builder = TlsParameters::builder(host.to_owned());
        if let Some((path, pem)) = &self.roots {
            let cert = Certificate::from_pem(pem).map_err(|e| {
                let message = format!("CA file {}: {e}", path.display());
                DeliveryError::new(Failure::Setup, message)
            })?;
            builder = builder
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        builder.build_rustls().map_err(setup)
    }

    fn transport(
        &self,
        host: &str,
        port: u16,
        tls: SmtpTls,
    ) -> Result<lettre::transport::smtp::SmtpTransportBuilder, DeliveryError> {
        let tls = match tls {
            SmtpTls::StartTls => Tls::Required(self.tls_parameters(host)?),
            SmtpTls::Implicit => Tls::Wrapper(self.tls_parameters(host)?),
            SmtpTls::None => Tls::None,
        };
        Ok(SmtpTransport::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(self.timeout)))
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Why is a TLS failure `Setup`? A certificate the client does not trust will not be trusted on
/// the next attempt either; it takes a change of config (or of the server's certificate).
fn smtp_failure(e: &lettre::transport::smtp::Error) -> Failure {
    if e.is_permanent() {
        Failure::Permanent
    } else if e.is_tls() {
        Failure::Setup
    } else {
        Failure::Transient
    }
}

impl Notifier for EmailNotifier {
    fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let Target::Email {
            host,
            port,
            tls,
            username,
            password_env,
            password,
            from,
            to,
        } = &self.receiver.target
        else {
            return Err(DeliveryError::new(Failure::Permanent, "not an email receiver"));
        };
        let message = self.message(n, from, to)?;
        let mut builder = self.transport(host, *port, *tls)?;
        let mut secrets = Vec::new();
        if let Some(user) = username {
            let password = match (password_env, password) {
                (Some(var), _) => secret(var)?,
                (None, Some(p)) => p.0.clone(),
                (None, None) => String::new(),
            };
            secrets.push(password.clone());
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        builder.build().send(&message).map(|_| ()).map_err(|e| {
            let text = redact::scrub(&e.to_string(), &secrets);
            let roots = self.roots.as_ref().map(|(p, _)| p.as_path());
            let message = tls_hint(&text, roots).unwrap_or(text);
            DeliveryError::new(smtp_failure(&e), format!("smtp://{host}:{port}: {message}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_now_answers_are_retried() {
        assert_eq!(http_failure(503), Failure::Transient);
        assert_eq!(http_failure(429), Failure::Transient);
        assert_eq!(http_failure(408), Failure::Transient);
        assert_eq!(http_failure(404), Failure::Permanent);
        assert_eq!(http_failure(401), Failure::Permanent);
    }

    #[test]
    fn tls_errors_say_what_to_do() {
        let hint = tls_hint("invalid peer certificate: UnknownIssuer", None).unwrap_or_default();
        assert!(hint.contains("set ca_file"), "{hint}");
        let hint = tls_hint("Other(OtherError(CaUsedAsEndEntity))", None).unwrap_or_default();
        assert!(hint.contains("CA certificate as its own"), "{hint}");
        assert_eq!(tls_hint("connection refused", None), None);
    }
}
