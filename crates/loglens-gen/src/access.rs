//! Web access logs (nginx combined) of the storefront (`web`) and the JSON API (`api`):
//! endpoints with weights, per-endpoint log-normal latencies and sizes, a realistic status
//! mix, recurring clients with their user agents, referers, load-balancer health checks and
//! vulnerability scanners.

use std::borrow::Cow;

use super::rng::{cumulative, Rng};
use super::templates::truth_label;
use super::text::LineBuf;
use super::vocab::{compile, Seg, VarCtx, API_AGENTS, BROWSER_AGENTS, SCANNER_AGENTS};
use loglens_core::format::Format;
use loglens_core::record::{Access, Level, Record};
use loglens_core::time::Timestamp;

/// How an endpoint answers: decides its status mix and body sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An HTML page.
    Page,
    /// A static asset (often 304).
    Static,
    /// A form post answering 200.
    Form,
    /// An analytics beacon answering 204.
    Beacon,
    /// The login form post (302 on success).
    Login,
    /// A redirecting endpoint (302/303).
    Redirect,
    /// A load balancer or kubelet health check.
    Health,
    /// A scanner probing for vulnerable software (404).
    Probe,
    /// A JSON read.
    Api,
    /// A JSON create (201).
    Create,
    /// A payment (201, some 402).
    Payment,
    /// An event intake (202).
    Accepted,
    /// A delete (204).
    NoContent,
    /// A token grant (some 401).
    Token,
    /// The Prometheus scrape.
    Metrics,
}

/// One endpoint as written in the tables.
#[derive(Debug, Clone, Copy)]
pub struct EndpointDef {
    /// HTTP method.
    pub method: &'static str,
    /// Path template with `{var}` placeholders.
    pub path: &'static str,
    /// Relative frequency.
    pub weight: f64,
    /// Median latency in ms.
    pub median_ms: f64,
    /// Log-normal shape of the latency.
    pub sigma: f64,
    /// Body size range of a successful response.
    pub bytes: (u64, u64),
    /// Status and size behaviour.
    pub class: Class,
}

const fn e(
    method: &'static str,
    path: &'static str,
    weight: f64,
    median_ms: f64,
    sigma: f64,
    bytes: (u64, u64),
    class: Class,
) -> EndpointDef {
    EndpointDef {
        method,
        path,
        weight,
        median_ms,
        sigma,
        bytes,
        class,
    }
}

use Class::*;

/// The storefront.
pub const WEB: &[EndpointDef] = &[
    e("GET", "/", 7.0, 35.0, 0.5, (28_000, 34_000), Page),
    e(
        "GET",
        "/products/{product}",
        16.0,
        55.0,
        0.6,
        (22_000, 48_000),
        Page,
    ),
    e(
        "GET",
        "/category/{category}?page={page}",
        7.0,
        80.0,
        0.6,
        (30_000, 60_000),
        Page,
    ),
    e(
        "GET",
        "/search?q={search}",
        4.0,
        140.0,
        0.7,
        (18_000, 52_000),
        Page,
    ),
    e("GET", "/cart", 3.0, 45.0, 0.5, (9_000, 16_000), Page),
    e("GET", "/checkout", 1.5, 90.0, 0.5, (14_000, 20_000), Page),
    e("GET", "/orders/{order}", 0.8, 60.0, 0.5, (12_000, 18_000), Page),
    e("GET", "/account", 1.0, 50.0, 0.5, (10_000, 14_000), Page),
    e("GET", "/login", 1.2, 20.0, 0.4, (6_500, 7_200), Page),
    e("GET", "/sitemap.xml", 0.2, 30.0, 0.4, (180_000, 190_000), Page),
    e("GET", "/robots.txt", 0.3, 1.0, 0.5, (118, 118), Static),
    e("GET", "/static/{asset}", 22.0, 2.0, 0.8, (8_000, 450_000), Static),
    e("GET", "/images/{img}", 20.0, 3.0, 0.9, (12_000, 180_000), Static),
    e("GET", "/favicon.ico", 2.0, 1.0, 0.5, (4_286, 4_286), Static),
    e("POST", "/cart/items", 2.5, 70.0, 0.5, (600, 1_200), Form),
    e(
        "POST",
        "/collect?v=2&tid=G-7XK2M9QZ4P&en=page_view",
        4.0,
        3.0,
        0.5,
        (0, 0),
        Beacon,
    ),
    e("POST", "/login", 0.8, 160.0, 0.4, (0, 0), Login),
    e("GET", "/logout", 0.3, 10.0, 0.4, (0, 0), Redirect),
    e("POST", "/checkout/submit", 0.6, 420.0, 0.5, (0, 0), Redirect),
    e("GET", "/healthz", 5.0, 1.0, 0.3, (2, 2), Health),
    e("GET", "/wp-login.php", 0.25, 1.0, 0.4, (153, 153), Probe),
    e("GET", "/.env", 0.2, 1.0, 0.4, (153, 153), Probe),
    e("GET", "/.git/config", 0.1, 1.0, 0.4, (153, 153), Probe),
    e("GET", "/phpmyadmin/index.php", 0.1, 1.0, 0.4, (153, 153), Probe),
    e(
        "POST",
        "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
        0.05,
        1.0,
        0.4,
        (153, 153),
        Probe,
    ),
];

/// Storefront endpoints only incidents call (they fail with 500).
pub const WEB_NEW: &[EndpointDef] = &[
    e(
        "GET",
        "/api/v2/cart/merge?session={hex16}",
        1.0,
        180.0,
        0.5,
        (2_500, 3_500),
        Page,
    ),
    e("POST", "/checkout/express", 1.0, 250.0, 0.5, (2_500, 3_500), Page),
    e(
        "GET",
        "/products/{product}/quickview",
        1.0,
        90.0,
        0.5,
        (2_500, 3_500),
        Page,
    ),
    e(
        "GET",
        "/account/wishlist/share/{hex16}",
        1.0,
        120.0,
        0.5,
        (2_500, 3_500),
        Page,
    ),
];

/// The JSON API.
pub const API: &[EndpointDef] = &[
    e(
        "GET",
        "/api/v1/products?category={category}&limit={limit}&offset={offset}",
        10.0,
        30.0,
        0.6,
        (4_000, 28_000),
        Api,
    ),
    e(
        "GET",
        "/api/v1/products/{product}",
        18.0,
        9.0,
        0.5,
        (1_200, 3_800),
        Api,
    ),
    e(
        "GET",
        "/api/v1/products/{product}/reviews?page={page}",
        4.0,
        35.0,
        0.6,
        (800, 9_000),
        Api,
    ),
    e("GET", "/api/v1/users/{user}", 6.0, 12.0, 0.5, (600, 1_400), Api),
    e("PATCH", "/api/v1/users/{user}", 0.8, 40.0, 0.5, (600, 1_400), Api),
    e(
        "GET",
        "/api/v1/users/{user}/orders?limit={limit}",
        3.0,
        45.0,
        0.6,
        (300, 12_000),
        Api,
    ),
    e("GET", "/api/v1/orders/{order}", 4.0, 18.0, 0.5, (900, 4_000), Api),
    e("POST", "/api/v1/orders", 2.0, 160.0, 0.5, (700, 2_500), Create),
    e("POST", "/api/v1/payments", 1.5, 380.0, 0.45, (400, 900), Payment),
    e("GET", "/api/v1/inventory/{sku}", 7.0, 6.0, 0.5, (90, 160), Api),
    e(
        "POST",
        "/api/v1/cart/{cart}/items",
        4.0,
        25.0,
        0.5,
        (500, 3_000),
        Create,
    ),
    e(
        "DELETE",
        "/api/v1/cart/{cart}/items/{sku}",
        1.0,
        20.0,
        0.5,
        (0, 0),
        NoContent,
    ),
    e("POST", "/api/v1/auth/token", 3.0, 85.0, 0.4, (700, 900), Token),
    e("POST", "/api/v1/auth/refresh", 2.0, 15.0, 0.4, (700, 900), Api),
    e(
        "GET",
        "/api/v1/recommendations?user_id={user}&limit=12",
        5.0,
        120.0,
        0.6,
        (2_000, 9_000),
        Api,
    ),
    e("POST", "/api/v1/events", 8.0, 4.0, 0.5, (2, 2), Accepted),
    e("GET", "/health", 5.0, 1.0, 0.3, (15, 15), Health),
    e("GET", "/metrics", 1.0, 9.0, 0.4, (18_000, 24_000), Metrics),
];

/// API endpoints only incidents call (they fail with 500).
pub const API_NEW: &[EndpointDef] = &[
    e(
        "POST",
        "/api/v1/orders/{order}/split",
        1.0,
        120.0,
        0.5,
        (60, 120),
        Api,
    ),
    e(
        "GET",
        "/api/v2/inventory/bulk?skus={sku},{sku}",
        1.0,
        60.0,
        0.5,
        (60, 120),
        Api,
    ),
    e(
        "PUT",
        "/api/v1/users/{user}/preferences",
        1.0,
        40.0,
        0.5,
        (60, 120),
        Api,
    ),
    e(
        "POST",
        "/api/v1/payments/{order}/capture",
        1.0,
        300.0,
        0.5,
        (60, 120),
        Api,
    ),
];

const INTERNAL_REFERERS: [&str; 6] = [
    "/",
    "/category/{category}",
    "/products/{product}",
    "/search?q={search}",
    "/cart",
    "/products/{product}?ref=recs",
];
const SEARCH_REFERERS: [&str; 3] = [
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
];
const SOCIAL_REFERERS: [&str; 4] = [
    "https://t.co/",
    "https://www.facebook.com/",
    "https://www.instagram.com/",
    "https://www.pinterest.com/",
];
const SITE: &str = "https://shop.example.com";

#[derive(Debug, Clone)]
struct Endpoint {
    def: EndpointDef,
    path: Vec<Seg>,
    /// Ground-truth label of its request line ([`request_template`]).
    truth: u32,
}

/// The template of a request line, the message an access record is mined from: the method is
/// constant (it says what the request does), the path and the protocol are its values.
fn request_template(method: &str) -> String {
    format!("{method} {{path}} {{protocol}}")
}

/// A service's compiled endpoints.
#[derive(Debug, Clone)]
pub struct AccessSet {
    web: bool,
    endpoints: Vec<Endpoint>,
    cum: Vec<f64>,
    novel: Vec<Endpoint>,
    referers: Vec<Vec<Seg>>,
}

fn compile_all(defs: &[EndpointDef]) -> Vec<Endpoint> {
    defs.iter()
        .map(|d| Endpoint {
            def: *d,
            path: compile(d.path),
            truth: truth_label(&request_template(d.method)),
        })
        .collect()
}

/// Incident effects an access line is drawn under.
#[derive(Debug, Clone, Copy)]
pub struct AccessFx {
    /// Probability that a request fails with a 5xx (0 = the baseline).
    pub error_share: f64,
    /// Latency multiplier.
    pub latency: f64,
    /// The incident-only endpoint to call instead of a normal one.
    pub novel: Option<usize>,
}

impl AccessSet {
    /// The storefront (`web = true`) or the API.
    pub fn new(web: bool) -> AccessSet {
        let (normal, novel) = if web { (WEB, WEB_NEW) } else { (API, API_NEW) };
        AccessSet {
            web,
            endpoints: compile_all(normal),
            cum: cumulative(normal.iter().map(|d| d.weight)),
            novel: compile_all(novel),
            referers: INTERNAL_REFERERS.iter().map(|r| compile(r)).collect(),
        }
    }

    /// How many incident-only endpoints there are.
    pub fn novel_len(&self) -> usize {
        self.novel.len()
    }

    /// Every endpoint's ground-truth label and request-line template, normal and incident-only.
    pub fn truth(&self) -> Vec<(u32, String)> {
        let all = self.endpoints.iter().chain(&self.novel);
        all.map(|e| (e.truth, request_template(e.def.method))).collect()
    }

    /// Renders one access line into `out`; returns its ground-truth label.
    pub fn render(
        &self,
        rng: &mut Rng,
        ctx: &VarCtx<'_>,
        fx: AccessFx,
        buf: &mut LineBuf,
        ts: Timestamp,
        out: &mut String,
    ) -> u32 {
        let ep = match fx.novel {
            Some(i) => &self.novel[i % self.novel.len()],
            None => &self.endpoints[rng.weighted(&self.cum)],
        };
        let class = ep.def.class;
        let pools = ctx.pools;
        let (client_ip, agent, proto): (&str, &str, &str) = match class {
            Health if self.web => (
                *rng.pick(&["10.0.0.5", "10.0.0.6"]),
                "ELB-HealthChecker/2.0",
                "HTTP/1.1",
            ),
            Health => ("10.0.0.7", "kube-probe/1.31", "HTTP/1.1"),
            Metrics => ("10.0.9.5", "Prometheus/2.53.1", "HTTP/1.1"),
            Probe => (
                &pools.attackers[rng.popular(pools.attackers.len())],
                SCANNER_AGENTS[rng.index(SCANNER_AGENTS.len())],
                "HTTP/1.1",
            ),
            _ if self.web => {
                let i = rng.popular(pools.web_clients.len());
                let proto = if i % 5 < 3 { "HTTP/2.0" } else { "HTTP/1.1" };
                (
                    &pools.web_clients[i],
                    BROWSER_AGENTS[usize::from(pools.web_agents[i])],
                    proto,
                )
            }
            _ => {
                let i = rng.popular(pools.api_clients.len());
                (
                    &pools.api_clients[i],
                    API_AGENTS[usize::from(pools.api_agents[i])],
                    "HTTP/1.1",
                )
            }
        };

        buf.clear();
        buf.msg.push_str(ep.def.method);
        buf.msg.push(' ');
        let path_start = buf.msg.len();
        for seg in &ep.path {
            match *seg {
                Seg::Lit(text) => buf.msg.push_str(text),
                Seg::Var(var) => var.write(rng, ctx, &mut buf.msg),
            }
        }
        let path_end = buf.msg.len();
        buf.msg.push(' ');
        buf.msg.push_str(proto);

        let status = if fx.novel.is_some() {
            500
        } else {
            status(class, rng, fx.error_share)
        };
        let base = rng.lognormal(ep.def.median_ms, ep.def.sigma);
        let latency_ms = match status {
            504 => 60_000.0 + rng.uniform(0.0, 5.0),
            502 => rng.lognormal(3.0, 0.8),
            503 => rng.lognormal(1.0, 0.5),
            499 => base * 8.0,
            _ => base,
        } * if class == Probe { 1.0 } else { fx.latency };
        let bytes = body_bytes(ep.def.bytes, status, self.web, rng);

        let referer = if !self.web {
            None
        } else {
            match class {
                Health | Probe | Metrics => None,
                Page => match rng.below(100) {
                    0..=34 => None,
                    35..=69 => Some(self.internal_referer(rng, ctx, buf)),
                    70..=87 => Some((0, 0, rng.index(SEARCH_REFERERS.len()) + 1)),
                    _ => Some((0, 0, SEARCH_REFERERS.len() + 1 + rng.index(SOCIAL_REFERERS.len()))),
                },
                _ => Some(self.internal_referer(rng, ctx, buf)),
            }
        };
        let msg: &str = &buf.msg;
        let referer: Option<&str> = referer.map(|(s, e, fixed)| match fixed {
            0 => buf.val(s, e),
            i if i <= SEARCH_REFERERS.len() => SEARCH_REFERERS[i - 1],
            i => SOCIAL_REFERERS[i - 1 - SEARCH_REFERERS.len()],
        });
        let record = Record {
            ts,
            host: None,
            service: None,
            level: Some(Level::from_http_status(status)),
            message: Cow::Borrowed(msg),
            access: Some(Access {
                client_ip,
                user: None,
                method: Some(ep.def.method),
                path: Some(&msg[path_start..path_end]),
                protocol: Some(proto),
                status,
                bytes: Some(bytes),
                latency_ms: Some(latency_ms),
                referer,
                user_agent: Some(agent),
            }),
            attrs: Vec::new(),
        };
        Format::Combined.render(&record, out);
        ep.truth
    }

    /// Writes an internal page URL into the value buffer; returns its range (and 0: "not a
    /// fixed referer").
    fn internal_referer(&self, rng: &mut Rng, ctx: &VarCtx<'_>, buf: &mut LineBuf) -> (usize, usize, usize) {
        let start = buf.vals_len();
        let vals = buf.vals();
        vals.push_str(SITE);
        for seg in &self.referers[rng.skewed(self.referers.len())] {
            match *seg {
                Seg::Lit(text) => vals.push_str(text),
                Seg::Var(var) => var.write(rng, ctx, vals),
            }
        }
        (start, buf.vals_len(), 0)
    }
}

/// A status for `class`: a 5xx with probability `error_share` (a baseline 0.2 % without an
/// incident), otherwise the class's usual mix.
fn status(class: Class, rng: &mut Rng, error_share: f64) -> u16 {
    let p5 = match class {
        Probe => 0.0,
        Static | Health | Metrics if error_share == 0.0 => 0.0,
        _ if error_share == 0.0 => 0.002,
        _ => error_share,
    };
    if p5 > 0.0 && rng.chance(p5) {
        return match rng.below(100) {
            0..=14 => 500,
            15..=64 => 502,
            65..=94 => 503,
            _ => 504,
        };
    }
    let r = rng.below(10_000);
    match class {
        Page => match r {
            0..=79 => 404,
            80..=109 => 301,
            110..=129 => 499,
            _ => 200,
        },
        Static => match r {
            0..=599 => 304,
            600..=639 => 404,
            _ => 200,
        },
        Form => match r {
            0..=199 => 422,
            200..=249 => 403,
            _ => 200,
        },
        Beacon | NoContent if r < 150 => 404,
        Beacon | NoContent => 204,
        Login => match r {
            0..=999 => 200,
            1000..=1049 => 429,
            _ => 302,
        },
        Redirect if r < 30 => 499,
        Redirect => 302,
        Health | Metrics => 200,
        Probe => match r {
            0..=499 => 403,
            _ => 404,
        },
        Api => match r {
            0..=149 => 404,
            150..=249 => 401,
            250..=299 => 400,
            300..=329 => 429,
            _ => 200,
        },
        Create => match r {
            0..=199 => 422,
            200..=299 => 409,
            300..=399 => 400,
            400..=449 => 401,
            _ => 201,
        },
        Payment => match r {
            0..=399 => 402,
            400..=499 => 400,
            _ => 201,
        },
        Accepted if r < 50 => 400,
        Accepted => 202,
        Token => match r {
            0..=599 => 401,
            600..=649 => 429,
            _ => 200,
        },
    }
}

fn body_bytes((lo, hi): (u64, u64), status: u16, web: bool, rng: &mut Rng) -> u64 {
    match status {
        200..=203 => rng.range(lo, hi),
        204 | 302 | 303 | 304 | 499 => 0,
        301 => 162,
        404 if web => 153,
        403 if web => 146,
        500 if web => rng.range(2_500, 3_500),
        502 => 157,
        503 => 197,
        504 => 167,
        _ => rng.range(40, 140),
    }
}

#[cfg(test)]
mod tests {
    use super::super::vocab::{unknown_names, Pools};
    use super::*;
    use loglens_core::format::ParseContext;

    #[test]
    fn tables_are_well_formed() {
        for table in [WEB, WEB_NEW, API, API_NEW] {
            for d in table {
                assert!(unknown_names(d.path).is_empty(), "{}", d.path);
                assert!(!d.path.contains(' '));
                assert!(d.bytes.0 <= d.bytes.1);
            }
        }
        for (normal, novel) in [(WEB, WEB_NEW), (API, API_NEW)] {
            assert!((10..=40).contains(&normal.len()));
            for n in novel {
                assert!(normal.iter().all(|d| (d.method, d.path) != (n.method, n.path)));
            }
        }
    }

    fn lines(web: bool, fx: AccessFx, n: usize) -> Vec<String> {
        let set = AccessSet::new(web);
        let pools = Pools::new(9);
        let ctx = VarCtx {
            pools: &pools,
            host_ip: "10.0.1.11",
            boot_secs: 0,
            ts: Timestamp::from_secs(1_800_000_000),
            latency: 1.0,
        };
        let mut rng = Rng::new(4);
        let mut buf = LineBuf::default();
        (0..n)
            .map(|_| {
                let mut out = String::new();
                set.render(&mut rng, &ctx, fx, &mut buf, ctx.ts, &mut out);
                out
            })
            .collect()
    }

    #[test]
    fn status_mix_is_realistic_and_lines_parse() {
        let parser = Format::Combined.parser();
        for web in [true, false] {
            let normal = AccessFx {
                error_share: 0.0,
                latency: 1.0,
                novel: None,
            };
            let all = lines(web, normal, 20_000);
            let mut by_class = [0usize; 6];
            for line in &all {
                let r = parser
                    .parse(line, &ParseContext::default())
                    .unwrap_or_else(|e| panic!("{e}: {line}"));
                let a = r.access.expect("access");
                by_class[usize::from(a.status / 100)] += 1;
                assert!(a.latency_ms.is_some() && a.user_agent.is_some());
            }
            let share = |c: usize| by_class[c] as f64 / all.len() as f64;
            assert!(share(2) > 0.9 && share(2) < 0.99, "web={web} 2xx {}", share(2));
            assert!(share(4) > 0.005 && share(4) < 0.05, "web={web} 4xx {}", share(4));
            assert!(share(5) < 0.005, "web={web} 5xx {}", share(5));
            let burst = lines(
                web,
                AccessFx {
                    error_share: 0.2,
                    latency: 1.0,
                    novel: None,
                },
                5_000,
            );
            let errors = burst.iter().filter(|l| l.contains("\" 50")).count();
            assert!(errors > 800, "web={web}: {errors} 5xx of 5000 in a burst");
        }
        let novel = lines(
            true,
            AccessFx {
                error_share: 0.0,
                latency: 1.0,
                novel: Some(1),
            },
            10,
        );
        assert!(
            novel.iter().all(|l| l.contains("\"POST /checkout/express HTTP/")),
            "{novel:?}"
        );
        assert!(novel.iter().all(|l| l.contains("\" 500 ")), "{novel:?}");
    }
}
