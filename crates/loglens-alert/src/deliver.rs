//! Receivers: the [`Notifier`] trait and its two implementations, SMTP email (lettre) and JSON over
//! HTTP (ureq) for the webhook, Slack and Alertmanager payloads. Each attempt carries the
//! notification's idempotency key (HTTP `Idempotency-Key` header; email `Message-ID`), so a receiver
//! can drop the duplicate that a crash between send and acknowledgement causes.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{HttpKind, Receiver, SmtpTls, Target};
use crate::notification::Notification;

/// Why one attempt failed (secrets already redacted from the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

/// Delivers a notification; one call is one attempt.
pub trait Notifier {
    /// Sends once; `Ok` means the receiver acknowledged it.
    fn send(&self, notification: &Notification) -> Result<(), DeliveryError>;
}

/// The notifier of a configured receiver.
pub fn notifier(receiver: &Receiver) -> Result<Box<dyn Notifier>, DeliveryError> {
    let timeout = Duration::from_millis(receiver.timeout_ms);
    match &receiver.target {
        Target::Http {
            kind,
            url,
            headers,
            headers_env,
        } => {
            let mut all = headers.clone();
            for (header, var) in headers_env {
                all.insert(header.clone(), secret(var)?);
            }
            let secrets = headers_env.keys().filter_map(|h| all.get(h).cloned()).collect();
            Ok(Box::new(HttpNotifier {
                receiver: receiver.name.clone(),
                kind: *kind,
                url: url.clone(),
                headers: all,
                secrets,
                timeout,
            }))
        }
        Target::Email { .. } => Ok(Box::new(EmailNotifier {
            receiver: receiver.clone(),
            timeout,
        })),
    }
}

/// The value of a secret's environment variable; the error names the variable, never a value.
fn secret(var: &str) -> Result<String, DeliveryError> {
    std::env::var(var).map_err(|_| DeliveryError(format!("environment variable {var} is not set")))
}

fn redact(mut text: String, secrets: &[String]) -> String {
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(s.as_str(), "***");
    }
    text
}

/// JSON over HTTP POST.
struct HttpNotifier {
    receiver: String,
    kind: HttpKind,
    url: String,
    headers: std::collections::BTreeMap<String, String>,
    secrets: Vec<String>,
    timeout: Duration,
}

impl HttpNotifier {
    fn body(&self, n: &Notification) -> serde_json::Value {
        match self.kind {
            HttpKind::Webhook => n.webhook_json(&self.receiver),
            HttpKind::Slack => n.slack_json(),
            HttpKind::Alertmanager => n.alertmanager_json(&self.receiver),
        }
    }
}

impl Notifier for HttpNotifier {
    fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build();
        let agent: ureq::Agent = config.into();
        let body = serde_json::to_vec(&self.body(n)).map_err(|e| DeliveryError(e.to_string()))?;
        let mut request = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("loglens/", env!("CARGO_PKG_VERSION")))
            .header("Idempotency-Key", &n.key);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let response = request
            .send(&body[..])
            .map_err(|e| DeliveryError(redact(e.to_string(), &self.secrets)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(DeliveryError(format!("{} answered HTTP {status}", self.url)))
        }
    }
}

/// SMTP email with a plain-text and an HTML part.
struct EmailNotifier {
    receiver: Receiver,
    timeout: Duration,
}

impl EmailNotifier {
    fn message(&self, n: &Notification, from: &str, to: &[String]) -> Result<Message, DeliveryError> {
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| DeliveryError(format!("{a:?}: {e}")))
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
        builder.multipart(body).map_err(|e| DeliveryError(e.to_string()))
    }

    fn transport(
        &self,
        host: &str,
        port: u16,
        tls: SmtpTls,
    ) -> Result<lettre::transport::smtp::SmtpTransportBuilder, DeliveryError> {
        let e = |e: lettre::transport::smtp::Error| DeliveryError(e.to_string());
        let params = || TlsParameters::new(host.to_owned()).map_err(e);
        let tls = match tls {
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::Implicit => Tls::Wrapper(params()?),
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

impl Notifier for EmailNotifier {
    fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let Target::Email {
            host,
            port,
            tls,
            username,
            password_env,
            from,
            to,
        } = &self.receiver.target
        else {
            return Err(DeliveryError("not an email receiver".into()));
        };
        let message = self.message(n, from, to)?;
        let mut builder = self.transport(host, *port, *tls)?;
        let mut secrets = Vec::new();
        if let Some(user) = username {
            let password = match password_env {
                Some(var) => secret(var)?,
                None => String::new(),
            };
            secrets.push(password.clone());
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        builder
            .build()
            .send(&message)
            .map(|_| ())
            .map_err(|e| DeliveryError(redact(e.to_string(), &secrets)))
    }
}
