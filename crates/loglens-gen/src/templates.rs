//! The message templates of the non-HTTP services (gateway, payments, checkout, worker,
//! postgres, and the per-host system syslog), with weights, levels and attributes, plus the
//! "novel" error templates that only incidents emit. Also renders a chosen template.
//!
//! Templates are data: `{name}` placeholders are [`Var`]s; an attribute value written `{name}`
//! shares its drawn value with the message, any other attribute value is literal.

use super::rng::{cumulative, Rng};
use super::text::LineBuf;
use super::vocab::{compile, Seg, Var, VarCtx};
use loglens_core::format::Format;
use loglens_core::record::Level;
use loglens_core::time::Timestamp;

/// A template as written in the tables.
#[derive(Debug, Clone, Copy)]
pub struct TplDef {
    /// Relative frequency among the service's normal templates.
    pub weight: f64,
    /// Severity.
    pub level: Level,
    /// The program (syslog tag) that logs it; empty for the stream's service.
    pub tag: &'static str,
    /// Message with `{var}` placeholders.
    pub text: &'static str,
    /// Attributes: key and `{var}` or a literal value.
    pub attrs: &'static [(&'static str, &'static str)],
}

const fn t(
    weight: f64,
    level: Level,
    text: &'static str,
    attrs: &'static [(&'static str, &'static str)],
) -> TplDef {
    TplDef {
        weight,
        level,
        tag: "",
        text,
        attrs,
    }
}

const fn s(
    weight: f64,
    level: Level,
    tag: &'static str,
    text: &'static str,
    attrs: &'static [(&'static str, &'static str)],
) -> TplDef {
    TplDef {
        weight,
        level,
        tag,
        text,
        attrs,
    }
}

use Level::{Critical, Debug, Error, Info, Notice, Warn};

/// The API gateway (logfmt).
pub const GATEWAY: &[TplDef] = &[
    t(
        80.0,
        Info,
        "request completed",
        &[
            ("request_id", "{hex16}"),
            ("method", "{method}"),
            ("path", "{route}"),
            ("status", "{status_ok}"),
            ("duration_ms", "{ms}"),
            ("upstream", "{upstream}"),
            ("bytes", "{bytes}"),
            ("client", "{client}"),
        ],
    ),
    t(6.0, Debug, "cache hit for {route}", &[("key", "{hex8}")]),
    t(3.0, Debug, "cache miss for {route}", &[("key", "{hex8}")]),
    t(
        3.0,
        Info,
        "health check passed for upstream {upstream}",
        &[("upstream", "{upstream}"), ("duration_ms", "{ms_fast}")],
    ),
    t(
        1.5,
        Warn,
        "rate limit exceeded for client {client} on {route}",
        &[("client", "{client}"), ("limit", "100")],
    ),
    t(
        0.8,
        Warn,
        "upstream {upstream} slow: {ms_slow}ms exceeds 500ms threshold",
        &[("upstream", "{upstream}")],
    ),
    t(
        0.8,
        Warn,
        "retrying request to {upstream} (attempt {n}/3)",
        &[("upstream", "{upstream}")],
    ),
    t(
        0.5,
        Warn,
        "client {ip} disconnected before response was sent",
        &[("client_ip", "{ip}")],
    ),
    t(
        0.05,
        Info,
        "TLS certificate for {domain} expires in {days} days",
        &[],
    ),
    t(0.02, Info, "config reloaded: {routes} routes, 6 upstreams", &[]),
    t(
        0.02,
        Info,
        "circuit breaker for {upstream} closed",
        &[("upstream", "{upstream}")],
    ),
    t(
        0.02,
        Warn,
        "circuit breaker for {upstream} opened after {n} consecutive failures",
        &[("upstream", "{upstream}")],
    ),
    t(
        0.3,
        Error,
        "request failed",
        &[
            ("request_id", "{hex16}"),
            ("method", "{method}"),
            ("path", "{route}"),
            ("status", "{status_5xx}"),
            ("duration_ms", "{ms}"),
            ("upstream", "{upstream}"),
            ("error", "{neterr}"),
        ],
    ),
    t(
        0.1,
        Error,
        "upstream {upstream} connection refused",
        &[("upstream", "{upstream}")],
    ),
    t(
        0.05,
        Error,
        "request to {upstream} timed out after 30000ms",
        &[("upstream", "{upstream}")],
    ),
];

/// Gateway errors only incidents emit.
pub const GATEWAY_NEW: &[TplDef] = &[
    t(
        1.0,
        Error,
        "upstream {upstream} returned malformed HTTP response: unexpected EOF in chunked body",
        &[("upstream", "{upstream}")],
    ),
    t(
        1.0,
        Error,
        "TLS handshake with upstream {upstream} failed: x509: certificate has expired or is not yet valid",
        &[],
    ),
    t(
        1.0,
        Error,
        "no healthy upstream for route {route}: all 2 endpoints ejected",
        &[("path", "{route}")],
    ),
    t(
        1.0,
        Critical,
        "worker pool exhausted: {count} requests queued, shedding load",
        &[],
    ),
];

/// The payments service (JSON).
pub const PAYMENTS: &[TplDef] = &[
    t(
        12.0,
        Info,
        "Payment intent created for order {order}",
        &[
            ("order_id", "{order}"),
            ("user_id", "{user}"),
            ("amount", "{amount}"),
            ("currency", "{currency}"),
        ],
    ),
    t(
        10.0,
        Info,
        "Payment authorized for order {order} via {provider} in {ms_ext}ms",
        &[
            ("order_id", "{order}"),
            ("provider", "{provider}"),
            ("duration_ms", "{ms_ext}"),
        ],
    ),
    t(
        9.0,
        Info,
        "Payment captured for order {order}: {amount} {currency}",
        &[
            ("order_id", "{order}"),
            ("amount", "{amount}"),
            ("currency", "{currency}"),
        ],
    ),
    t(
        2.0,
        Info,
        "Refund issued for order {order}: {amount} {currency}",
        &[("order_id", "{order}"), ("amount", "{amount}")],
    ),
    t(
        6.0,
        Info,
        "Webhook {event} received from {provider} ({evt})",
        &[("event_id", "{evt}"), ("provider", "{provider}")],
    ),
    t(
        6.0,
        Debug,
        "Fraud check passed for user {user} (score {score})",
        &[("user_id", "{user}"), ("score", "{score}")],
    ),
    t(
        3.0,
        Debug,
        "Loaded {items} saved payment methods for user {user}",
        &[("user_id", "{user}"), ("duration_ms", "{ms_fast}")],
    ),
    t(
        1.0,
        Info,
        "Idempotency key {hex16} replayed; returning cached response",
        &[],
    ),
    t(1.0, Info, "Exchange rate {currency}/USD refreshed: {rate}", &[]),
    t(
        0.8,
        Warn,
        "Fraud check flagged user {user} (score {score_high}); manual review queued",
        &[("user_id", "{user}")],
    ),
    t(
        0.8,
        Warn,
        "Provider {provider} responded slowly: {ms_slow}ms for order {order}",
        &[("order_id", "{order}"), ("duration_ms", "{ms_slow}")],
    ),
    t(
        0.6,
        Warn,
        "Retrying capture for order {order} (attempt {n}/3)",
        &[("order_id", "{order}")],
    ),
    t(
        1.2,
        Error,
        "Payment declined for order {order}: {reason}",
        &[
            ("order_id", "{order}"),
            ("decline_code", "{reason}"),
            ("provider", "{provider}"),
        ],
    ),
    t(
        0.2,
        Error,
        "Provider {provider} request failed: {neterr}",
        &[("provider", "{provider}"), ("duration_ms", "{ms_ext}")],
    ),
    t(
        0.1,
        Error,
        "Transaction rolled back for order {order}: {dberr}",
        &[("order_id", "{order}")],
    ),
];

/// Payments errors only incidents emit.
pub const PAYMENTS_NEW: &[TplDef] = &[
    t(
        1.0,
        Error,
        "Ledger write failed for order {order}: unique constraint violation on ledger_entries_pkey",
        &[("order_id", "{order}")],
    ),
    t(
        1.0,
        Error,
        "Provider {provider} rejected API key: authentication_error",
        &[("provider", "{provider}")],
    ),
    t(
        1.0,
        Error,
        "Settlement account acct_{hex8} does not support currency {currency}",
        &[],
    ),
    t(
        1.0,
        Critical,
        "Payment reconciliation aborted: {count} unmatched transactions",
        &[],
    ),
];

/// The checkout service (JSON).
pub const CHECKOUT: &[TplDef] = &[
    t(
        10.0,
        Info,
        "Cart {cart} loaded with {items} items for user {user}",
        &[
            ("cart_id", "{cart}"),
            ("user_id", "{user}"),
            ("duration_ms", "{ms_fast}"),
        ],
    ),
    t(
        8.0,
        Info,
        "Checkout started for cart {cart}",
        &[("cart_id", "{cart}"), ("user_id", "{user}")],
    ),
    t(
        6.0,
        Info,
        "Shipping quote {amount} USD for zip {zip} via {carrier}",
        &[("carrier", "{carrier}"), ("duration_ms", "{ms}")],
    ),
    t(
        6.0,
        Info,
        "Inventory reserved for order {order}: {items} items",
        &[("order_id", "{order}"), ("duration_ms", "{ms}")],
    ),
    t(
        7.0,
        Info,
        "Order {order} placed: total {amount} {currency}",
        &[
            ("order_id", "{order}"),
            ("user_id", "{user}"),
            ("amount", "{amount}"),
        ],
    ),
    t(
        2.0,
        Info,
        "Coupon {coupon} applied to cart {cart}: -{pct}%",
        &[("cart_id", "{cart}")],
    ),
    t(
        5.0,
        Debug,
        "Tax computed for order {order}: {tax} USD in {region}",
        &[("order_id", "{order}")],
    ),
    t(
        2.0,
        Info,
        "Session {hex16} expired for user {user}",
        &[("user_id", "{user}")],
    ),
    t(
        0.8,
        Warn,
        "Low inventory for {sku}: {n} left",
        &[("sku", "{sku}")],
    ),
    t(
        0.8,
        Warn,
        "Coupon {coupon} rejected for cart {cart}: expired",
        &[("cart_id", "{cart}")],
    ),
    t(
        0.6,
        Warn,
        "Pricing service responded in {ms_slow}ms",
        &[("duration_ms", "{ms_slow}")],
    ),
    t(
        1.0,
        Error,
        "Order {order} failed: payment declined ({reason})",
        &[("order_id", "{order}"), ("user_id", "{user}")],
    ),
    t(
        0.3,
        Error,
        "Inventory reservation failed for {sku}: out of stock",
        &[("sku", "{sku}")],
    ),
    t(
        0.2,
        Error,
        "Call to payments failed: HTTP 503 after {ms_ext}ms",
        &[("duration_ms", "{ms_ext}")],
    ),
];

/// Checkout errors only incidents emit.
pub const CHECKOUT_NEW: &[TplDef] = &[
    t(
        1.0,
        Error,
        "Address validation failed for order {order}: upstream returned HTTP 422",
        &[("order_id", "{order}")],
    ),
    t(
        1.0,
        Error,
        "Deadlock while reserving inventory for order {order} ({sku})",
        &[("order_id", "{order}")],
    ),
    t(
        1.0,
        Error,
        "Cart {cart} could not be deserialized: unknown field giftWrap",
        &[("cart_id", "{cart}")],
    ),
    t(
        1.0,
        Error,
        "Tax service timed out after {ms_slow}ms for region {region}",
        &[],
    ),
];

/// The background worker (Python logging).
pub const WORKER: &[TplDef] = &[
    t(10.0, Info, "Task {task}[{uuid}] received", &[]),
    t(10.0, Info, "Task {task}[{uuid}] succeeded in {secs}s: None", &[]),
    t(3.0, Info, "Sent {email} email to user {user}", &[]),
    t(
        2.0,
        Info,
        "Generated invoice PDF for order {order} ({kb} KB)",
        &[],
    ),
    t(
        1.0,
        Info,
        "Synced {count} products from supplier feed {feed}",
        &[],
    ),
    t(2.0, Debug, "Queue {queue} depth {count}", &[]),
    t(1.0, Info, "Scheduler: Sending due task {beat} ({task})", &[]),
    t(0.5, Debug, "Prefetch count for queue {queue} set to {n}", &[]),
    t(1.0, Warn, "Task {task}[{uuid}] retry: Retry in {n}s: {exc}", &[]),
    t(
        0.3,
        Warn,
        "Connection to broker lost. Trying to re-establish the connection...",
        &[],
    ),
    t(
        0.3,
        Warn,
        "Task {task}[{uuid}] soft time limit (120s) exceeded",
        &[],
    ),
    t(0.5, Error, "Task {task}[{uuid}] raised unexpected: {exc}", &[]),
    t(
        0.2,
        Error,
        "Task {task}[{uuid}] failed after 3 retries: {exc}",
        &[],
    ),
    t(
        0.02,
        Critical,
        "Worker process {pid} exited prematurely: signal 9 (SIGKILL)",
        &[],
    ),
];

/// Worker errors only incidents emit.
pub const WORKER_NEW: &[TplDef] = &[
    t(
        1.0,
        Error,
        "Task {task}[{uuid}] raised unexpected: KeyError('shipping_address')",
        &[],
    ),
    t(
        1.0,
        Error,
        "Result backend unreachable: redis://cache-01:6379/1 timed out after 5.0s",
        &[],
    ),
    t(
        1.0,
        Critical,
        "Task {task}[{uuid}] exceeded hard time limit (300s), killing worker {pid}",
        &[],
    ),
    t(
        1.0,
        Error,
        "Failed to decode message body from queue {queue}: invalid JSON",
        &[],
    ),
];

/// PostgreSQL over RFC 5424 syslog: SQLSTATE as MSGID, session data as structured data.
pub const POSTGRES: &[TplDef] = &[
    t(6.0, Info, "connection received: host={int_ip} port={port}", &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0")]),
    t(
        6.0,
        Info,
        "connection authorized: user={dbuser} database={db} application_name={app}",
        &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0"), ("pg@32473.user", "{dbuser}"), ("pg@32473.db", "{db}")],
    ),
    t(
        6.0,
        Info,
        "disconnection: session time: {pgsession} user={dbuser} database={db} host={int_ip} port={port}",
        &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0"), ("pg@32473.user", "{dbuser}"), ("pg@32473.db", "{db}")],
    ),
    t(
        4.0,
        Info,
        "duration: {ms_query} ms  statement: {query}",
        &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0"), ("pg@32473.user", "{dbuser}"), ("pg@32473.db", "{db}")],
    ),
    t(1.0, Info, "duration: {ms_query} ms  execute <unnamed>: {query}", &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0")]),
    t(0.4, Info, "checkpoint starting: time", &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0")]),
    t(
        0.4,
        Info,
        "checkpoint complete: wrote {count} buffers ({pct1}%); 0 WAL file(s) added, 0 removed, {n} recycled; write={secs} s, sync=0.{ms3} s, total={secs} s",
        &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0")],
    ),
    t(1.0, Info, "automatic vacuum of table \"shop.public.{table}\": index scans: {n0}", &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0")]),
    t(1.0, Info, "automatic analyze of table \"shop.public.{table}\"", &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0")]),
    t(
        0.5,
        Info,
        "temporary file: path \"base/pgsql_tmp/pgsql_tmp{pid}.{n0}\", size {kb_vm}",
        &[("pid", "{pid}"), ("msgid", "00000"), ("facility", "local0")],
    ),
    t(0.2, Warn, "there is already a transaction in progress", &[("pid", "{pid}"), ("msgid", "25001"), ("facility", "local0")]),
    t(0.1, Warn, "could not receive data from client: Connection reset by peer", &[("pid", "{pid}"), ("msgid", "08006"), ("facility", "local0")]),
    t(
        0.15,
        Error,
        "duplicate key value violates unique constraint \"{table}_pkey\"",
        &[("pid", "{pid}"), ("msgid", "23505"), ("facility", "local0"), ("pg@32473.user", "{dbuser}"), ("pg@32473.db", "{db}")],
    ),
    t(0.05, Error, "deadlock detected", &[("pid", "{pid}"), ("msgid", "40P01"), ("facility", "local0")]),
    t(0.1, Error, "canceling statement due to statement timeout", &[("pid", "{pid}"), ("msgid", "57014"), ("facility", "local0")]),
    t(0.05, Error, "could not serialize access due to concurrent update", &[("pid", "{pid}"), ("msgid", "40001"), ("facility", "local0")]),
    t(0.05, Critical, "password authentication failed for user \"{dbuser}\"", &[("pid", "{pid}"), ("msgid", "28P01"), ("facility", "local0")]),
    t(0.03, Error, "relation \"{table}_archive\" does not exist", &[("pid", "{pid}"), ("msgid", "42P01"), ("facility", "local0")]),
    t(
        0.02,
        Critical,
        "remaining connection slots are reserved for non-replication superuser connections",
        &[("pid", "{pid}"), ("msgid", "53300"), ("facility", "local0")],
    ),
];

/// PostgreSQL errors only incidents emit.
pub const POSTGRES_NEW: &[TplDef] = &[
    t(
        1.0,
        Critical,
        "could not extend file \"base/16384/{count}\": No space left on device",
        &[("pid", "{pid}"), ("msgid", "53100"), ("facility", "local0")],
    ),
    t(
        1.0,
        Critical,
        "terminating connection due to administrator command",
        &[("pid", "{pid}"), ("msgid", "57P01"), ("facility", "local0")],
    ),
    t(
        1.0,
        Error,
        "invalid page in block {count} of relation base/16384/{kb}",
        &[("pid", "{pid}"), ("msgid", "XX001"), ("facility", "local0")],
    ),
    t(
        1.0,
        Error,
        "out of shared memory",
        &[("pid", "{pid}"), ("msgid", "53200"), ("facility", "local0")],
    ),
];

/// The system syslog (RFC 3164) every host writes: sshd, cron, systemd, kernel, sudo.
pub const SYSTEM: &[TplDef] = &[
    s(3.0, Info, "sshd", "Failed password for invalid user {baduser} from {attacker} port {port} ssh2", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(2.0, Info, "sshd", "Invalid user {baduser} from {attacker} port {port}", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(1.5, Info, "sshd", "Failed password for root from {attacker} port {port} ssh2", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(2.0, Info, "sshd", "Connection closed by invalid user {baduser} {attacker} port {port} [preauth]", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(1.0, Info, "sshd", "Received disconnect from {attacker} port {port}:11: Bye Bye [preauth]", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(0.6, Info, "sshd", "Accepted publickey for {sshuser} from {admin_ip} port {port} ssh2: ED25519 SHA256:{fp}", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(0.1, Info, "sshd", "Accepted password for {sshuser} from {admin_ip} port {port} ssh2", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(0.6, Info, "sshd", "pam_unix(sshd:session): session opened for user {sshuser}(uid={uid}) by (uid=0)", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(0.6, Info, "sshd", "pam_unix(sshd:session): session closed for user {sshuser}", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(0.5, Info, "sshd", "Disconnected from user {sshuser} {admin_ip} port {port}", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(0.3, Error, "sshd", "error: kex_exchange_identification: Connection closed by remote host", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(0.05, Error, "sshd", "error: maximum authentication attempts exceeded for root from {attacker} port {port} ssh2 [preauth]", &[("pid", "{pid}"), ("facility", "authpriv")]),
    s(3.0, Info, "CRON", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)", &[("pid", "{pid}"), ("facility", "cron")]),
    s(1.0, Info, "CRON", "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)", &[("pid", "{pid}"), ("facility", "cron")]),
    s(0.3, Info, "CRON", "(root) CMD (/usr/local/bin/backup.sh --incremental)", &[("pid", "{pid}"), ("facility", "cron")]),
    s(3.0, Info, "CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", &[("pid", "{pid}"), ("facility", "cron")]),
    s(3.0, Info, "CRON", "pam_unix(cron:session): session closed for user root", &[("pid", "{pid}"), ("facility", "cron")]),
    s(0.6, Info, "systemd", "Started Session {session} of User {sshuser}.", &[("pid", "1"), ("facility", "daemon")]),
    s(0.5, Info, "systemd", "Starting {unit_desc}...", &[("pid", "1"), ("facility", "daemon")]),
    s(0.5, Info, "systemd", "Finished {unit_desc}.", &[("pid", "1"), ("facility", "daemon")]),
    s(0.5, Info, "systemd", "{unit}: Deactivated successfully.", &[("pid", "1"), ("facility", "daemon")]),
    s(0.3, Info, "systemd", "{unit}: Consumed {cpu}s CPU time.", &[("pid", "1"), ("facility", "daemon")]),
    s(0.1, Info, "systemd", "Reloading.", &[("pid", "1"), ("facility", "daemon")]),
    s(0.04, Warn, "systemd", "{unit}: Scheduled restart job, restart counter is at {n}.", &[("pid", "1"), ("facility", "daemon")]),
    s(0.04, Error, "systemd", "{unit}: Main process exited, code=exited, status=1/FAILURE", &[("pid", "1"), ("facility", "daemon")]),
    s(0.04, Error, "systemd", "{unit}: Failed with result 'exit-code'.", &[("pid", "1"), ("facility", "daemon")]),
    s(0.6, Info, "systemd-logind", "New session {session} of user {sshuser}.", &[("pid", "{pid}"), ("facility", "auth")]),
    s(0.6, Info, "systemd-logind", "Removed session {session}.", &[("pid", "{pid}"), ("facility", "auth")]),
    s(
        2.0,
        Warn,
        "kernel",
        "[{uptime}] [UFW BLOCK] IN=eth0 OUT= MAC={mac} SRC={attacker} DST={host_ip} LEN={len} TOS=0x00 PREC=0x00 TTL={ttl} ID={ipid} PROTO=TCP SPT={port} DPT={dport} WINDOW={win} RES=0x00 SYN URGP=0",
        &[("facility", "kern")],
    ),
    s(0.05, Warn, "kernel", "[{uptime}] TCP: request_sock_TCP: Possible SYN flooding on port {dport}. Sending cookies.", &[("facility", "kern")]),
    s(
        0.01,
        Error,
        "kernel",
        "[{uptime}] Out of memory: Killed process {pid} ({proc}) total-vm:{kb_vm}kB, anon-rss:{kb_vm}kB, file-rss:0kB, shmem-rss:0kB, UID:{uid} pgtables:{kb}kB oom_score_adj:0",
        &[("facility", "kern")],
    ),
    s(0.03, Warn, "kernel", "[{uptime}] nvme nvme0: I/O {count} QID {n} timeout, completion polled", &[("facility", "kern")]),
    s(
        0.2,
        Notice,
        "sudo",
        "{sshuser} : TTY=pts/{n0} ; PWD=/home/{sshuser} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx",
        &[("facility", "authpriv")],
    ),
    s(0.2, Info, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by {sshuser}(uid={uid})", &[("facility", "authpriv")]),
    s(0.2, Info, "sudo", "pam_unix(sudo:session): session closed for user root", &[("facility", "authpriv")]),
];

/// The ground-truth label of a template text: its FNV-1a hash, cut to 32 bits (the truth files
/// write one label per line, so it is kept short; a collision among the few hundred texts would
/// show in `truth/templates.tsv`, which lists every label once).
pub fn truth_label(text: &str) -> u32 {
    loglens_core::template::TemplateId::of(text).0 as u32
}

/// A compiled attribute value.
#[derive(Debug, Clone, Copy)]
enum AttrVal {
    Lit(&'static str),
    Var(Var),
}

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Tpl {
    /// Severity.
    pub level: Level,
    /// The template's ground-truth label ([`truth_label`] of its text).
    pub truth: u32,
    text: &'static str,
    tag: &'static str,
    msg: Vec<Seg>,
    attrs: Vec<(&'static str, AttrVal)>,
}

impl Tpl {
    fn compile(def: &TplDef) -> Tpl {
        let attrs = def
            .attrs
            .iter()
            .map(|&(key, value)| {
                let var = value
                    .strip_prefix('{')
                    .and_then(|v| v.strip_suffix('}'))
                    .and_then(Var::from_name);
                (key, var.map_or(AttrVal::Lit(value), AttrVal::Var))
            })
            .collect();
        Tpl {
            level: def.level,
            truth: truth_label(def.text),
            text: def.text,
            tag: def.tag,
            msg: compile(def.text),
            attrs,
        }
    }
}

/// A service's compiled templates with their sampling tables.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    normal: Vec<Tpl>,
    cum: Vec<f64>,
    errors: Vec<usize>,
    error_cum: Vec<f64>,
    novel: Vec<Tpl>,
}

impl TemplateSet {
    /// Compiles a table of normal templates and one of incident-only templates.
    pub fn new(normal: &[TplDef], novel: &[TplDef]) -> TemplateSet {
        let errors: Vec<usize> = normal
            .iter()
            .enumerate()
            .filter(|(_, d)| d.level.is_error())
            .map(|(i, _)| i)
            .collect();
        TemplateSet {
            normal: normal.iter().map(Tpl::compile).collect(),
            cum: cumulative(normal.iter().map(|d| d.weight)),
            error_cum: cumulative(errors.iter().map(|&i| normal[i].weight)),
            errors,
            novel: novel.iter().map(Tpl::compile).collect(),
        }
    }

    /// How many incident-only templates there are.
    pub fn novel_len(&self) -> usize {
        self.novel.len()
    }

    /// Every template's ground-truth label and text, normal and incident-only.
    pub fn truth(&self) -> Vec<(u32, String)> {
        let all = self.normal.iter().chain(&self.novel);
        all.map(|t| (t.truth, t.text.to_owned())).collect()
    }

    /// Draws a normal template; with probability `error_share` an error-level one.
    pub fn pick(&self, rng: &mut Rng, error_share: f64) -> &Tpl {
        if error_share > 0.0 && !self.errors.is_empty() && rng.chance(error_share) {
            return &self.normal[self.errors[rng.weighted(&self.error_cum)]];
        }
        &self.normal[rng.weighted(&self.cum)]
    }

    /// The incident-only template `i` (wrapping).
    pub fn novel(&self, i: usize) -> &Tpl {
        &self.novel[i % self.novel.len().max(1)]
    }
}

/// Values drawn so far for this line, so a var used twice (message and attribute) agrees.
struct Drawn {
    vars: [(Option<Var>, usize, usize); 12],
    len: usize,
}

impl Drawn {
    fn get_or_draw(
        &mut self,
        var: Var,
        rng: &mut Rng,
        ctx: &VarCtx<'_>,
        buf: &mut LineBuf,
    ) -> (usize, usize) {
        if let Some(&(_, s, e)) = self.vars[..self.len].iter().find(|(v, _, _)| *v == Some(var)) {
            return (s, e);
        }
        let start = buf.vals_len();
        var.write(rng, ctx, buf.vals());
        let end = buf.vals_len();
        if self.len < self.vars.len() {
            self.vars[self.len] = (Some(var), start, end);
            self.len += 1;
        }
        (start, end)
    }
}

/// Renders one line of `tpl` into `out`.
#[allow(clippy::too_many_arguments)]
pub fn render(
    tpl: &Tpl,
    rng: &mut Rng,
    ctx: &VarCtx<'_>,
    buf: &mut LineBuf,
    format: Format,
    ts: Timestamp,
    host: &str,
    service: &str,
    out: &mut String,
) {
    buf.clear();
    let mut drawn = Drawn {
        vars: [(None, 0, 0); 12],
        len: 0,
    };
    for &(key, value) in &tpl.attrs {
        match value {
            AttrVal::Lit(text) => buf.attr_str(key, text),
            AttrVal::Var(var) => {
                let (s, e) = drawn.get_or_draw(var, rng, ctx, buf);
                buf.mark(key, s, e);
            }
        }
    }
    for seg in &tpl.msg {
        match *seg {
            Seg::Lit(text) => buf.msg.push_str(text),
            Seg::Var(var) => {
                let (s, e) = drawn.get_or_draw(var, rng, ctx, buf);
                buf.copy_to_msg(s, e);
            }
        }
    }
    let service = if tpl.tag.is_empty() { service } else { tpl.tag };
    buf.render(format, ts, host, service, tpl.level, out);
}

#[cfg(test)]
mod tests {
    use super::super::vocab::{unknown_names, Pools};
    use super::*;

    const ALL: [(&str, &[TplDef]); 11] = [
        ("gateway", GATEWAY),
        ("gateway new", GATEWAY_NEW),
        ("payments", PAYMENTS),
        ("payments new", PAYMENTS_NEW),
        ("checkout", CHECKOUT),
        ("checkout new", CHECKOUT_NEW),
        ("worker", WORKER),
        ("worker new", WORKER_NEW),
        ("postgres", POSTGRES),
        ("postgres new", POSTGRES_NEW),
        ("system", SYSTEM),
    ];

    #[test]
    fn every_placeholder_is_a_known_var_and_counts_are_sane() {
        for (name, table) in ALL {
            for def in table {
                assert!(
                    unknown_names(def.text).is_empty(),
                    "{name}: {:?} in {:?}",
                    unknown_names(def.text),
                    def.text
                );
                for (key, value) in def.attrs {
                    assert!(unknown_names(value).is_empty(), "{name}: attr {key} = {value}");
                }
                assert!(def.weight > 0.0);
            }
            if !name.ends_with("new") {
                assert!(
                    (10..=40).contains(&table.len()),
                    "{name} has {} templates",
                    table.len()
                );
                assert!(
                    table.iter().any(|d| d.level.is_error()),
                    "{name} has error templates"
                );
            }
        }
    }

    #[test]
    fn novel_templates_differ_from_normal_ones() {
        for (normal, novel) in [
            (GATEWAY, GATEWAY_NEW),
            (PAYMENTS, PAYMENTS_NEW),
            (CHECKOUT, CHECKOUT_NEW),
            (WORKER, WORKER_NEW),
            (POSTGRES, POSTGRES_NEW),
        ] {
            for n in novel {
                assert!(n.level.is_error());
                assert!(normal.iter().all(|d| d.text != n.text));
            }
        }
    }

    #[test]
    fn error_share_selects_error_templates() {
        let set = TemplateSet::new(PAYMENTS, PAYMENTS_NEW);
        let mut rng = Rng::new(5);
        let errors = (0..10_000)
            .filter(|_| set.pick(&mut rng, 0.0).level.is_error())
            .count();
        assert!(errors < 600, "baseline error share {errors}/10000");
        let errors = (0..10_000)
            .filter(|_| set.pick(&mut rng, 0.5).level.is_error())
            .count();
        assert!(errors > 4500, "burst error share {errors}/10000");
    }

    #[test]
    fn shared_vars_agree_between_message_and_attrs() {
        let set = TemplateSet::new(PAYMENTS, &[]);
        let pools = Pools::new(1);
        let ctx = VarCtx {
            pools: &pools,
            host_ip: "10.0.3.11",
            boot_secs: 0,
            ts: Timestamp::from_secs(0),
            latency: 1.0,
        };
        let mut rng = Rng::new(1);
        let mut buf = LineBuf::default();
        let mut out = String::new();
        render(
            &set.normal[0],
            &mut rng,
            &ctx,
            &mut buf,
            Format::Combined,
            ctx.ts,
            "pay-01",
            "payments",
            &mut out,
        );
        let order = buf.msg.rsplit(' ').next().expect("order id").to_owned();
        assert!(order.starts_with("ORD-"), "{}", buf.msg);
    }
}
