//! The variable parts of generated messages: each [`Var`] names one kind of value (an order
//! id, a client address, a latency) and knows how to draw it; templates refer to them as
//! `{name}`. Client, attacker and operator addresses come from per-seed [`Pools`] so the same
//! clients recur with realistic popularity.

use super::rng::Rng;
use super::text::{
    push_base36, push_base62, push_fixed, push_hex, push_ipv4, push_padded, push_u64, push_uuid,
};
use loglens_core::time::Timestamp;

/// Shared, immutable value pools drawn once per seed.
#[derive(Debug, Clone)]
pub struct Pools {
    /// Browser clients of the web frontends, most popular first.
    pub web_clients: Vec<String>,
    /// The user agent of each web client (index into [`BROWSER_AGENTS`]).
    pub web_agents: Vec<u8>,
    /// API clients (mobile apps, partners), most popular first.
    pub api_clients: Vec<String>,
    /// The user agent of each API client (index into [`API_AGENTS`]).
    pub api_agents: Vec<u8>,
    /// Internet scanners that probe ssh and firewalls.
    pub attackers: Vec<String>,
    /// Operator addresses (office, VPN) that log in over ssh.
    pub admins: Vec<String>,
    /// API keys of gateway clients.
    pub api_keys: Vec<String>,
    /// SSH key fingerprints of the operators.
    pub fingerprints: Vec<String>,
}

/// First octets common in residential and mobile ranges.
const CLIENT_NETS: [u8; 40] = [
    23, 24, 31, 37, 45, 46, 50, 62, 66, 68, 71, 73, 76, 77, 78, 81, 82, 84, 86, 88, 91, 92, 93, 98, 99, 104,
    107, 109, 136, 142, 151, 174, 176, 178, 188, 193, 195, 212, 213, 217,
];
/// First octets common among internet scanners.
const SCANNER_NETS: [u8; 24] = [
    45, 61, 92, 103, 112, 116, 118, 121, 141, 159, 161, 167, 170, 175, 179, 180, 183, 185, 193, 194, 198,
    202, 218, 222,
];

fn public_ip(rng: &mut Rng, nets: &[u8]) -> String {
    let mut s = String::with_capacity(15);
    push_ipv4(
        &mut s,
        [
            *rng.pick(nets),
            rng.below(256) as u8,
            rng.below(256) as u8,
            1 + rng.below(254) as u8,
        ],
    );
    s
}

fn ipv6(rng: &mut Rng) -> String {
    let mut s = String::from("2a02:");
    push_hex(&mut s, 0xc00 + rng.below(0x300), 3);
    for _ in 0..3 {
        s.push(':');
        push_hex(&mut s, 0x1000 + rng.below(0xF000), 4);
    }
    s.push_str("::");
    push_hex(&mut s, 1 + rng.below(0xFFF), 3);
    s
}

impl Pools {
    /// The pools of `seed`.
    pub fn new(seed: u64) -> Pools {
        let mut rng = Rng::derive(seed, "pools");
        let web_clients: Vec<String> = (0..4000)
            .map(|_| {
                if rng.chance(0.06) {
                    ipv6(&mut rng)
                } else {
                    public_ip(&mut rng, &CLIENT_NETS)
                }
            })
            .collect();
        let web_agents = web_clients
            .iter()
            .map(|_| rng.skewed(BROWSER_AGENTS.len()) as u8)
            .collect();
        let api_clients: Vec<String> = (0..1500).map(|_| public_ip(&mut rng, &CLIENT_NETS)).collect();
        let api_agents = api_clients
            .iter()
            .map(|_| rng.skewed(API_AGENTS.len()) as u8)
            .collect();
        let attackers = (0..400).map(|_| public_ip(&mut rng, &SCANNER_NETS)).collect();
        let admins = (0..4).map(|_| public_ip(&mut rng, &CLIENT_NETS)).collect();
        let api_keys = (0..150)
            .map(|_| {
                let mut s = String::from("key_");
                push_base36(&mut s, rng.next_u64(), 8);
                s.make_ascii_lowercase();
                s
            })
            .collect();
        let fingerprints = (0..6)
            .map(|_| {
                let mut s = String::new();
                for _ in 0..4 {
                    push_base62(&mut s, rng.next_u64(), 11);
                }
                s.truncate(43);
                s
            })
            .collect();
        Pools {
            web_clients,
            web_agents,
            api_clients,
            api_agents,
            attackers,
            admins,
            api_keys,
            fingerprints,
        }
    }
}

/// Browser user agents, most common first.
pub const BROWSER_AGENTS: [&str; 16] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Mobile Safari/537.36",
];

/// API client user agents, most common first.
pub const API_AGENTS: [&str; 9] = [
    "ShopApp/4.12.0 (iPhone; iOS 18.1; Scale/3.00)",
    "ShopApp/4.12.0 (Android 14; Pixel 8)",
    "okhttp/4.12.0",
    "ShopApp/4.11.2 (iPhone; iOS 17.6; Scale/3.00)",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "axios/1.7.7",
    "ShopApp/4.10.0 (Android 13; SM-A536B)",
    "PostmanRuntime/7.42.0",
];

/// User agents of vulnerability scanners.
pub const SCANNER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 zgrab/0.x",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.169 Safari/537.36",
    "curl/7.88.1",
];

/// What a variable part of a template draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// Order id `ORD-7K2M9QXA`.
    Order,
    /// User id `u184223`.
    User,
    /// Money amount `42.99`.
    Amount,
    /// Tax amount.
    Tax,
    /// ISO currency.
    Currency,
    /// Payment provider.
    Provider,
    /// Fast internal call, ms.
    MsFast,
    /// Typical request, ms.
    Ms,
    /// External provider call, ms.
    MsExt,
    /// A call over the 500 ms slowness threshold, ms.
    MsSlow,
    /// A slow SQL statement, ms with three decimals.
    MsQuery,
    /// Task run time in seconds.
    Secs,
    /// Celery task name.
    Task,
    /// UUID v4.
    Uuid,
    /// Attempt number 1–3.
    N,
    /// Small count 0–2.
    N0,
    /// Items in a cart 1–8.
    Items,
    /// Count 1–500.
    Count,
    /// Card decline code.
    Reason,
    /// A gateway client address.
    Ip,
    /// An internal address 10.0.x.y.
    IntIp,
    /// An operator's address.
    AdminIp,
    /// A scanner's address.
    Attacker,
    /// Ephemeral port.
    Port,
    /// Operator login name.
    SshUser,
    /// Login name a scanner guesses.
    BadUser,
    /// Operator uid.
    Uid,
    /// SSH key fingerprint.
    Fp,
    /// Process id.
    Pid,
    /// Login session number.
    Session,
    /// systemd unit.
    Unit,
    /// systemd unit description.
    UnitDesc,
    /// CPU seconds.
    Cpu,
    /// Cart id.
    Cart,
    /// Stock keeping unit.
    Sku,
    /// Postal code.
    Zip,
    /// Shipping carrier.
    Carrier,
    /// Coupon code.
    Coupon,
    /// Discount percent.
    Pct,
    /// Tax region.
    Region,
    /// Database table.
    Table,
    /// Database role.
    DbUser,
    /// Database name.
    Db,
    /// Database client application name.
    App,
    /// Database session length `0:00:12.345`.
    PgSession,
    /// SQL statement.
    Query,
    /// Upstream `host:port` behind the gateway.
    Upstream,
    /// API route prefix.
    Route,
    /// API key.
    Client,
    /// HTTP method.
    Method,
    /// Non-5xx HTTP status.
    StatusOk,
    /// 5xx HTTP status.
    Status5xx,
    /// Response size.
    Bytes,
    /// 8 hex digits.
    Hex8,
    /// 16 hex digits.
    Hex16,
    /// Email template.
    Email,
    /// Kilobytes 20–400.
    Kb,
    /// Supplier feed.
    Feed,
    /// Queue name.
    Queue,
    /// Periodic task entry.
    Beat,
    /// Python exception.
    Exc,
    /// Fraud score 0.01–0.60.
    Score,
    /// Fraud score 0.75–0.99.
    ScoreHigh,
    /// Payment provider event type.
    Event,
    /// Payment provider event id.
    Evt,
    /// Exchange rate.
    Rate,
    /// Network error text.
    NetErr,
    /// Database error text.
    DbErr,
    /// Domain served.
    Domain,
    /// Days 3–89.
    Days,
    /// Route count.
    Routes,
    /// Firewall MAC field.
    Mac,
    /// The emitting host's own address.
    HostIp,
    /// Packet length.
    Len,
    /// Packet TTL.
    Ttl,
    /// IP id.
    IpId,
    /// Destination port a scanner probes.
    DPort,
    /// TCP window.
    Win,
    /// Kernel uptime stamp `  1234.567890`.
    Uptime,
    /// Process name.
    Proc,
    /// Virtual memory in kB.
    KbVm,
    /// Percentage with one decimal.
    Pct1,
    /// Three digits.
    Ms3,
    /// Product id.
    Pid2,
    /// Catalogue category slug.
    Category,
    /// Page number.
    Page,
    /// URL-encoded search terms.
    Search,
    /// Hashed static asset name.
    Asset,
    /// Product image name.
    Img,
    /// Page size.
    Limit,
    /// Page offset.
    Offset,
}

impl Var {
    /// The variable a `{name}` placeholder refers to.
    pub fn from_name(name: &str) -> Option<Var> {
        use Var::*;
        Some(match name {
            "order" => Order,
            "user" => User,
            "amount" => Amount,
            "tax" => Tax,
            "currency" => Currency,
            "provider" => Provider,
            "ms_fast" => MsFast,
            "ms" => Ms,
            "ms_ext" => MsExt,
            "ms_slow" => MsSlow,
            "ms_query" => MsQuery,
            "secs" => Secs,
            "task" => Task,
            "uuid" => Uuid,
            "n" => N,
            "n0" => N0,
            "items" => Items,
            "count" => Count,
            "reason" => Reason,
            "ip" => Ip,
            "int_ip" => IntIp,
            "admin_ip" => AdminIp,
            "attacker" => Attacker,
            "port" => Port,
            "sshuser" => SshUser,
            "baduser" => BadUser,
            "uid" => Uid,
            "fp" => Fp,
            "pid" => Pid,
            "session" => Session,
            "unit" => Unit,
            "unit_desc" => UnitDesc,
            "cpu" => Cpu,
            "cart" => Cart,
            "sku" => Sku,
            "zip" => Zip,
            "carrier" => Carrier,
            "coupon" => Coupon,
            "pct" => Pct,
            "region" => Region,
            "table" => Table,
            "dbuser" => DbUser,
            "db" => Db,
            "app" => App,
            "pgsession" => PgSession,
            "query" => Query,
            "upstream" => Upstream,
            "route" => Route,
            "client" => Client,
            "method" => Method,
            "status_ok" => StatusOk,
            "status_5xx" => Status5xx,
            "bytes" => Bytes,
            "hex8" => Hex8,
            "hex16" => Hex16,
            "email" => Email,
            "kb" => Kb,
            "feed" => Feed,
            "queue" => Queue,
            "beat" => Beat,
            "exc" => Exc,
            "score" => Score,
            "score_high" => ScoreHigh,
            "event" => Event,
            "evt" => Evt,
            "rate" => Rate,
            "neterr" => NetErr,
            "dberr" => DbErr,
            "domain" => Domain,
            "days" => Days,
            "routes" => Routes,
            "mac" => Mac,
            "host_ip" => HostIp,
            "len" => Len,
            "ttl" => Ttl,
            "ipid" => IpId,
            "dport" => DPort,
            "win" => Win,
            "uptime" => Uptime,
            "proc" => Proc,
            "kb_vm" => KbVm,
            "pct1" => Pct1,
            "ms3" => Ms3,
            "product" => Pid2,
            "category" => Category,
            "page" => Page,
            "search" => Search,
            "asset" => Asset,
            "img" => Img,
            "limit" => Limit,
            "offset" => Offset,
            _ => return None,
        })
    }
}

/// What drawing a value needs besides the random generator.
#[derive(Debug, Clone, Copy)]
pub struct VarCtx<'a> {
    /// The shared pools.
    pub pools: &'a Pools,
    /// The emitting host's address.
    pub host_ip: &'a str,
    /// When the emitting host booted, seconds since the epoch.
    pub boot_secs: i64,
    /// The line's time.
    pub ts: Timestamp,
    /// Latency multiplier of an active latency incident (1 otherwise).
    pub latency: f64,
}

const TASKS: [&str; 9] = [
    "shop.tasks.send_order_confirmation",
    "shop.tasks.generate_invoice_pdf",
    "shop.tasks.sync_inventory",
    "shop.tasks.recalculate_recommendations",
    "shop.tasks.cleanup_expired_carts",
    "shop.tasks.export_sales_report",
    "shop.tasks.process_refund",
    "shop.tasks.resize_product_images",
    "shop.tasks.send_abandoned_cart_reminder",
];
const DECLINES: [&str; 7] = [
    "insufficient_funds",
    "card_declined",
    "expired_card",
    "incorrect_cvc",
    "do_not_honor",
    "processing_error",
    "lost_card",
];
const SSH_USERS: [&str; 6] = ["deploy", "ansible", "ubuntu", "ops-maria", "ops-kenji", "backup"];
const BAD_USERS: [&str; 20] = [
    "admin",
    "test",
    "oracle",
    "postgres",
    "user",
    "guest",
    "pi",
    "ftpuser",
    "support",
    "ubnt",
    "git",
    "hadoop",
    "mysql",
    "test1",
    "administrator",
    "dev",
    "jenkins",
    "minecraft",
    "steam",
    "www",
];
const UNITS: [&str; 8] = [
    "logrotate.service",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "systemd-tmpfiles-clean.service",
    "man-db.service",
    "motd-news.service",
    "certbot.service",
    "fstrim.service",
];
const UNIT_DESCS: [&str; 8] = [
    "Rotate log files",
    "Daily apt download activities",
    "Daily apt upgrade and clean activities",
    "Cleanup of Temporary Directories",
    "Daily man-db regeneration",
    "Message of the Day",
    "Certbot",
    "Discard unused blocks on filesystems from /etc/fstab",
];
const CARRIERS: [&str; 4] = ["UPS", "FedEx", "USPS", "DHL"];
const COUPONS: [&str; 6] = [
    "WELCOME10",
    "FALL25",
    "FREESHIP",
    "VIP15",
    "BLACKFRIDAY",
    "SAVE20",
];
const REGIONS: [&str; 8] = ["US-CA", "US-NY", "US-TX", "US-WA", "DE", "GB", "FR", "CA-ON"];
const TABLES: [&str; 9] = [
    "orders",
    "order_items",
    "payments",
    "users",
    "products",
    "inventory",
    "sessions",
    "carts",
    "refunds",
];
const DB_USERS: [&str; 5] = ["app", "app", "app_ro", "analytics", "replicator"];
const APPS: [&str; 6] = ["checkout-svc", "payments-svc", "api", "worker", "psql", "pg_dump"];
const QUERIES: [&str; 10] = [
    "SELECT o.id, o.total, o.status FROM orders o WHERE o.user_id = $1 ORDER BY o.created_at DESC LIMIT 20",
    "SELECT p.* FROM products p JOIN inventory i ON i.sku = p.sku WHERE p.category_id = $1 AND i.qty > 0",
    "UPDATE inventory SET qty = qty - $1 WHERE sku = $2 AND qty >= $1",
    "INSERT INTO order_items (order_id, sku, qty, price) VALUES ($1, $2, $3, $4)",
    "SELECT count(*) FROM sessions WHERE expires_at < now()",
    "DELETE FROM carts WHERE updated_at < now() - interval '30 days'",
    "SELECT u.id, u.email FROM users u WHERE lower(u.email) = lower($1)",
    "SELECT date_trunc('hour', created_at) AS h, sum(total) FROM orders WHERE created_at > $1 GROUP BY 1",
    "UPDATE payments SET status = $1, updated_at = now() WHERE id = $2",
    "SELECT * FROM refunds WHERE order_id = ANY($1)",
];
const UPSTREAMS: [&str; 6] = [
    "api-01:8080",
    "api-02:8080",
    "pay-01:9000",
    "pay-02:9000",
    "shop-01:8000",
    "shop-02:8000",
];
const ROUTES: [&str; 8] = [
    "/api/v1/products",
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/cart",
    "/api/v1/auth/token",
    "/api/v1/users",
    "/api/v1/inventory",
    "/api/v1/recommendations",
];
const EMAILS: [&str; 5] = [
    "order_confirmation",
    "shipping_update",
    "password_reset",
    "abandoned_cart",
    "review_request",
];
const FEEDS: [&str; 3] = ["acme-supplies", "globex-wholesale", "initech-parts"];
const QUEUES: [&str; 4] = ["celery", "emails", "reports", "images"];
const BEATS: [&str; 4] = [
    "cleanup-expired-carts",
    "sync-inventory-every-15m",
    "nightly-sales-report",
    "refresh-recommendations",
];
const EXCS: [&str; 6] = [
    "ConnectionError('Connection reset by peer')",
    "TimeoutError('timed out')",
    "HTTPError('503 Server Error: Service Unavailable')",
    "OperationalError('server closed the connection unexpectedly')",
    "SMTPServerDisconnected('Connection unexpectedly closed')",
    "ReadTimeout('HTTPSConnectionPool(host=api.supplier.example, port=443): Read timed out.')",
];
const EVENTS: [&str; 5] = [
    "charge.succeeded",
    "payment_intent.succeeded",
    "charge.refunded",
    "charge.dispute.created",
    "payout.paid",
];
const NET_ERRS: [&str; 5] = [
    "connection reset by peer",
    "context deadline exceeded",
    "dial tcp 10.0.4.21:443: i/o timeout",
    "unexpected EOF",
    "net/http: TLS handshake timeout",
];
const DB_ERRS: [&str; 3] = [
    "could not serialize access due to concurrent update",
    "canceling statement due to statement timeout",
    "deadlock detected",
];
const DOMAINS: [&str; 3] = ["shop.example.com", "api.shop.example.com", "pay.shop.example.com"];
const TTLS: [u64; 10] = [46, 47, 49, 50, 52, 54, 110, 113, 114, 241];
const DPORTS: [u64; 14] = [
    23, 445, 1433, 2375, 3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200, 11211, 27017,
];
const WINDOWS: [u64; 5] = [1024, 14600, 29200, 64240, 65535];
const PROCS: [&str; 5] = ["java", "python3", "node", "gunicorn", "ruby"];
const CATEGORIES: [&str; 12] = [
    "womens-shoes",
    "mens-jackets",
    "kitchen",
    "outdoor-gear",
    "electronics",
    "home-office",
    "toys",
    "beauty",
    "garden",
    "sports",
    "books",
    "sale",
];
const SEARCHES: [&str; 14] = [
    "running+shoes",
    "rain+jacket",
    "coffee+grinder",
    "usb-c+cable",
    "standing+desk",
    "yoga+mat",
    "gift+card",
    "wireless+earbuds",
    "cast+iron+pan",
    "kids+backpack",
    "led+desk+lamp",
    "water+bottle",
    "wool+socks",
    "phone+case",
];
const ASSETS: [&str; 8] = [
    "js/app.3f9a1c2e.js",
    "js/vendor.81bd0f47.js",
    "js/runtime.0c5e2a91.js",
    "js/checkout.b27e44d0.js",
    "css/main.9d41e3aa.css",
    "css/product.52ac7f1b.css",
    "fonts/inter-var.4b1e2c3d.woff2",
    "js/analytics.e4f08a13.js",
];

fn pick<'t, S: AsRef<str>>(rng: &mut Rng, items: &'t [S]) -> &'t str {
    rng.pick(items).as_ref()
}

fn ms(out: &mut String, v: f64) {
    push_u64(out, v.max(1.0) as u64);
}

impl Var {
    /// Draws a value and appends it.
    pub fn write(self, rng: &mut Rng, ctx: &VarCtx<'_>, out: &mut String) {
        use Var::*;
        let lat = ctx.latency;
        match self {
            Order => {
                out.push_str("ORD-");
                push_base36(out, rng.next_u64(), 8);
            }
            User => {
                out.push('u');
                push_u64(out, 100_000 + rng.popular(90_000) as u64);
            }
            Amount => push_fixed(out, rng.lognormal(45.0, 0.8).clamp(0.5, 4999.0), 2),
            Tax => push_fixed(out, rng.lognormal(3.5, 0.7).clamp(0.01, 400.0), 2),
            Currency => out.push_str(pick(
                rng,
                &[
                    "USD", "USD", "USD", "USD", "USD", "USD", "EUR", "EUR", "GBP", "CAD",
                ],
            )),
            Provider => out.push_str(pick(
                rng,
                &[
                    "stripe",
                    "stripe",
                    "stripe",
                    "adyen",
                    "adyen",
                    "paypal",
                    "braintree",
                ],
            )),
            MsFast => ms(out, rng.lognormal(4.0, 0.6) * lat),
            Ms => ms(out, rng.lognormal(35.0, 0.7) * lat),
            MsExt => ms(out, rng.lognormal(240.0, 0.5) * lat),
            MsSlow => ms(out, 500.0 + rng.lognormal(300.0, 0.8) * lat),
            MsQuery => push_fixed(out, 250.0 + rng.lognormal(400.0, 0.9) * lat, 3),
            Secs => push_fixed(out, rng.lognormal(0.6, 1.0) * lat, 3),
            Task => out.push_str(TASKS[rng.skewed(TASKS.len())]),
            Uuid => {
                let (a, b) = (rng.next_u64(), rng.next_u64());
                push_uuid(out, a, b);
            }
            N => push_u64(out, rng.range(1, 3)),
            N0 => push_u64(out, rng.range(0, 2)),
            Items => push_u64(out, rng.range(1, 8)),
            Count => push_u64(out, rng.range(1, 500)),
            Reason => out.push_str(DECLINES[rng.skewed(DECLINES.len())]),
            Ip => out.push_str(&ctx.pools.api_clients[rng.popular(ctx.pools.api_clients.len())]),
            IntIp => push_ipv4(out, [10, 0, rng.range(1, 6) as u8, rng.range(10, 60) as u8]),
            AdminIp => out.push_str(pick(rng, &ctx.pools.admins)),
            Attacker => out.push_str(&ctx.pools.attackers[rng.popular(ctx.pools.attackers.len())]),
            Port => push_u64(out, rng.range(1024, 65535)),
            SshUser => out.push_str(SSH_USERS[rng.skewed(SSH_USERS.len())]),
            BadUser => out.push_str(pick(rng, &BAD_USERS)),
            Uid => push_u64(out, rng.range(1000, 1005)),
            Fp => out.push_str(pick(rng, &ctx.pools.fingerprints)),
            Pid => push_u64(out, rng.range(1200, 64000)),
            Session => push_u64(out, rng.range(1, 9999)),
            Unit => out.push_str(pick(rng, &UNITS)),
            UnitDesc => out.push_str(pick(rng, &UNIT_DESCS)),
            Cpu => push_fixed(out, rng.lognormal(0.2, 1.0), 3),
            Cart => {
                out.push_str("cart_");
                push_base62(out, rng.next_u64(), 10);
            }
            Sku => {
                out.push_str("SKU-");
                push_u64(out, 10_000 + rng.popular(80_000) as u64);
            }
            Zip => push_padded(out, rng.range(1001, 99950), 5),
            Carrier => out.push_str(pick(rng, &CARRIERS)),
            Coupon => out.push_str(pick(rng, &COUPONS)),
            Pct => push_u64(out, 5 * rng.range(1, 5)),
            Region => out.push_str(pick(rng, &REGIONS)),
            Table => out.push_str(pick(rng, &TABLES)),
            DbUser => out.push_str(pick(rng, &DB_USERS)),
            Db => out.push_str(pick(rng, &["shop", "shop", "shop", "shop_analytics"])),
            App => out.push_str(pick(rng, &APPS)),
            PgSession => {
                let secs = rng.exponential(40.0);
                let whole = secs as u64;
                push_u64(out, whole / 3600);
                out.push(':');
                push_padded(out, whole % 3600 / 60, 2);
                out.push(':');
                push_padded(out, whole % 60, 2);
                out.push('.');
                push_padded(out, ((secs - whole as f64) * 1000.0) as u64 % 1000, 3);
            }
            Query => out.push_str(QUERIES[rng.skewed(QUERIES.len())]),
            Upstream => out.push_str(pick(rng, &UPSTREAMS)),
            Route => out.push_str(ROUTES[rng.skewed(ROUTES.len())]),
            Client => out.push_str(&ctx.pools.api_keys[rng.popular(ctx.pools.api_keys.len())]),
            Method => out.push_str(pick(
                rng,
                &[
                    "GET", "GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT",
                ],
            )),
            StatusOk => {
                let r = rng.below(1000);
                let status = match r {
                    0..=919 => 200,
                    920..=949 => 201,
                    950..=964 => 204,
                    965..=974 => 304,
                    975..=981 => 400,
                    982..=987 => 401,
                    988..=995 => 404,
                    _ => 429,
                };
                push_u64(out, status);
            }
            Status5xx => push_u64(out, *rng.pick(&[500, 502, 502, 503, 503, 504])),
            Bytes => push_u64(out, rng.lognormal(2500.0, 1.2) as u64),
            Hex8 => push_hex(out, rng.next_u64(), 8),
            Hex16 => push_hex(out, rng.next_u64(), 16),
            Email => out.push_str(pick(rng, &EMAILS)),
            Kb => push_u64(out, rng.range(20, 400)),
            Feed => out.push_str(pick(rng, &FEEDS)),
            Queue => out.push_str(pick(rng, &QUEUES)),
            Beat => out.push_str(pick(rng, &BEATS)),
            Exc => out.push_str(EXCS[rng.skewed(EXCS.len())]),
            Score => push_fixed(out, rng.uniform(0.01, 0.6), 2),
            ScoreHigh => push_fixed(out, rng.uniform(0.75, 0.99), 2),
            Event => out.push_str(EVENTS[rng.skewed(EVENTS.len())]),
            Evt => {
                out.push_str("evt_");
                push_base62(out, rng.next_u64(), 10);
                push_base62(out, rng.next_u64(), 10);
            }
            Rate => push_fixed(out, rng.uniform(0.85, 0.95), 4),
            NetErr => out.push_str(pick(rng, &NET_ERRS)),
            DbErr => out.push_str(pick(rng, &DB_ERRS)),
            Domain => out.push_str(pick(rng, &DOMAINS)),
            Days => push_u64(out, rng.range(3, 89)),
            Routes => push_u64(out, rng.range(40, 60)),
            Mac => {
                for i in 0..14 {
                    if i > 0 {
                        out.push(':');
                    }
                    if i == 12 {
                        out.push_str("08:00");
                        break;
                    }
                    push_hex(out, rng.below(256), 2);
                }
            }
            HostIp => out.push_str(ctx.host_ip),
            Len => push_u64(out, rng.range(40, 60)),
            Ttl => push_u64(out, *rng.pick(&TTLS)),
            IpId => push_u64(out, rng.below(65536)),
            DPort => push_u64(out, *rng.pick(&DPORTS)),
            Win => push_u64(out, *rng.pick(&WINDOWS)),
            Uptime => {
                let up = (ctx.ts.0 - ctx.boot_secs * 1_000_000).max(0);
                let secs = (up / 1_000_000) as u64;
                let digits = if secs == 0 { 1 } else { secs.ilog10() as usize + 1 };
                for _ in digits..5 {
                    out.push(' ');
                }
                push_u64(out, secs);
                out.push('.');
                push_padded(out, (up % 1_000_000) as u64 + rng.below(1000), 6);
            }
            Proc => out.push_str(pick(rng, &PROCS)),
            KbVm => push_u64(out, rng.range(900_000, 8_000_000)),
            Pct1 => push_fixed(out, rng.uniform(0.1, 9.9), 1),
            Ms3 => push_padded(out, rng.below(1000), 3),
            Pid2 => push_u64(out, 1000 + rng.popular(60_000) as u64),
            Category => out.push_str(CATEGORIES[rng.skewed(CATEGORIES.len())]),
            Page => push_u64(out, 1 + rng.skewed(12) as u64),
            Search => out.push_str(pick(rng, &SEARCHES)),
            Asset => out.push_str(ASSETS[rng.skewed(ASSETS.len())]),
            Img => {
                out.push_str("p/");
                push_u64(out, 1000 + rng.popular(60_000) as u64);
                out.push_str(pick(rng, &["-400w.webp", "-800w.webp", "-thumb.webp"]));
            }
            Limit => push_u64(out, *rng.pick(&[10, 20, 20, 50, 100])),
            Offset => push_u64(out, 20 * rng.skewed(20) as u64),
        }
    }
}

/// One piece of a compiled template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// Literal text.
    Lit(&'static str),
    /// A drawn value.
    Var(Var),
}

/// Splits a `{name}` template into literal and variable segments; an unknown name stays
/// literal (the vocabulary tests reject templates with unknown names).
pub fn compile(text: &'static str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        match Var::from_name(&rest[open + 1..close]) {
            Some(var) => {
                if open > 0 {
                    segs.push(Seg::Lit(&rest[..open]));
                }
                segs.push(Seg::Var(var));
            }
            None => segs.push(Seg::Lit(&rest[..=close])),
        }
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        segs.push(Seg::Lit(rest));
    }
    segs
}

/// The names in `{…}` that are not variables.
pub fn unknown_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        let name = &rest[open + 1..close];
        if Var::from_name(name).is_none() {
            names.push(name.to_owned());
        }
        rest = &rest[close + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_splits_literals_and_vars() {
        let segs = compile("Order {order} placed: {amount} {currency}{nope}");
        assert_eq!(
            segs,
            vec![
                Seg::Lit("Order "),
                Seg::Var(Var::Order),
                Seg::Lit(" placed: "),
                Seg::Var(Var::Amount),
                Seg::Lit(" "),
                Seg::Var(Var::Currency),
                Seg::Lit("{nope}"),
            ]
        );
        assert_eq!(unknown_names("a {order} {nope}"), vec!["nope".to_owned()]);
    }

    #[test]
    fn values_are_single_line_and_deterministic() {
        let pools = Pools::new(3);
        let ctx = VarCtx {
            pools: &pools,
            host_ip: "10.0.1.11",
            boot_secs: 0,
            ts: Timestamp::from_secs(1234),
            latency: 1.0,
        };
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            let mut s = String::new();
            for name in [
                "order",
                "uuid",
                "pgsession",
                "uptime",
                "mac",
                "amount",
                "ms_query",
                "img",
            ] {
                let var = Var::from_name(name).expect("known");
                var.write(&mut rng, &ctx, &mut s);
                s.push('|');
            }
            s
        };
        let a = draw(1);
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
        assert!(!a.contains('\n'));
        assert!(a.contains(" 1234.000"), "{a}");
    }
}
