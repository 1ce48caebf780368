"""Alerting end to end against real receivers on loopback: an aiosmtpd SMTP server and an HTTP
server started here. Incidents, metrics and templates are written with pyarrow to the schema in
docs/datasets.md; `loglens alert run --now` evaluates them at a fixed instant, so no test depends
on the wall clock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alert_helpers import (
    T0,
    HttpServer,
    Script,
    SmtpServer,
    free_port,
    incident,
    iso,
    make_private_ca,
    read_history,
    write_incidents,
    write_metrics,
    write_templates,
)
from conftest import loglens_bin

NOW = iso(T0 + timedelta(minutes=5))  # incidents from T0 to T0+3m are firing (resolve_after 5m)
LATER = iso(T0 + timedelta(hours=1))  # ... and resolved here


def alert(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [loglens_bin(), "alert", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"loglens alert {args} exited {result.returncode}: {result.stderr}{result.stdout}"
        )
    return result


def config(tmp: Path, receivers: str, rules: str, extra: str = "") -> Path:
    text = f"""
[process]
data_dir = "data"

[alerting]
resolve_after = "5m"
backoff_base = "50ms"
backoff_max = "200ms"
{extra}
{receivers}
{rules}
"""
    path = tmp / "loglens.toml"
    path.write_text(text)
    return path


def webhook(url: str, kind: str = "webhook", name: str = "hook", extra: str = "") -> str:
    return f"""
[[receiver]]
name = "{name}"
kind = "{kind}"
url = "{url}"
{extra}
"""


RULE = """
[[rule]]
name = "api-errors"
match = ["severity=~warning|critical"]
receivers = ["{receivers}"]
group_by = ["service"]
group_wait = "30s"
"""


def rule(receivers: str = "hook", extra: str = "") -> str:
    return RULE.format(receivers=receivers) + extra


def outbox(data: Path) -> list[dict]:
    return [
        json.loads(p.read_text())
        for p in sorted((data / "alerts" / "outbox").glob("*.json"))
        if p.name not in ("state.json", "silences.json")
    ]


def test_email_is_delivered_with_auth_to_every_recipient(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1), incident(2, start_min=1)])
    with SmtpServer() as smtp:
        receivers = f"""
[[receiver]]
name = "oncall"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
tls = "none"
username = "alerts"
password_env = "LOGLENS_TEST_SMTP_PASSWORD"
from = "loglens <loglens@example.com>"
to = ["sre@example.com", "dev@example.com"]
"""
        cfg = config(tmp_path, receivers, rule("oncall"))
        env = {"LOGLENS_TEST_SMTP_PASSWORD": smtp.password}
        result = alert("run", "--config", str(cfg), "--now", NOW, env=env)
        assert len(smtp.messages) == 1, result.stdout
        got = smtp.messages[0]
    assert got["auth"] == "alerts"
    assert sorted(got["rcpt_tos"]) == ["dev@example.com", "sre@example.com"]
    assert got["mail_from"] == "loglens@example.com"
    msg = got["message"]
    assert msg["Subject"].startswith(
        "[FIRING] api-errors service=api: 2 alerts: critical error_rate"
    )
    assert msg["To"] == "sre@example.com, dev@example.com"
    key = outbox(data)[0]["notification"]["key"]
    assert msg["Message-ID"] == f"<{key}.oncall@loglens>"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for text in (plain, html):
        assert "inc00001" in text and "inc00002" in text
        assert "service=api" in text
        assert "upstream payments-1 timed out after 3000 ms" in text
        assert "0.31" in text and "0.02" in text
    assert "template: upstream <*> timed out after <*> ms" in plain
    assert "upstream &lt;*&gt; timed out" in html
    # The secret is never printed nor stored.
    stored = "".join(p.read_text() for p in (data / "alerts").rglob("*.json"))
    assert smtp.password not in result.stdout + result.stderr + stored
    history = read_history(data)
    assert [(h["receiver_kind"], h["result"], h["attempts"]) for h in history] == [
        ("email", "delivered", 1)
    ]
    assert history[0]["incident_ids"] == ["inc00001", "inc00002"]


def test_missing_smtp_password_env_fails_naming_the_variable(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    receivers = """
[[receiver]]
name = "oncall"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = 9
tls = "none"
username = "alerts"
password_env = "LOGLENS_TEST_UNSET_VAR"
from = "loglens@example.com"
to = ["sre@example.com"]
max_attempts = 1
"""
    cfg = config(tmp_path, receivers, rule("oncall"))
    os.environ.pop("LOGLENS_TEST_UNSET_VAR", None)
    result = alert("run", "--config", str(cfg), "--now", NOW, check=False)
    assert result.returncode == 1
    assert "environment variable LOGLENS_TEST_UNSET_VAR is not set" in result.stdout


def test_webhook_json_headers_and_history(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1), incident(2, service="db", severity="warning")])
    with HttpServer() as http:
        extra = 'headers = { "X-Team" = "sre" }\n'
        extra += 'headers_env = { "Authorization" = "LOGLENS_TEST_TOKEN" }'
        cfg = config(tmp_path, webhook(http.url, extra=extra), rule())
        alert(
            "run", "--config", str(cfg), "--now", NOW, env={"LOGLENS_TEST_TOKEN": "Bearer tok-123"}
        )
        requests = sorted(http.requests, key=lambda r: r["json"]["group_key"])
    assert len(requests) == 2
    api, db = requests[0], requests[1]
    assert api["headers"]["x-team"] == "sre"
    assert api["headers"]["authorization"] == "Bearer tok-123"
    assert api["headers"]["content-type"] == "application/json"
    body = api["json"]
    assert api["headers"]["idempotency-key"] == body["idempotency_key"]
    assert body["rule"] == "api-errors"
    assert body["status"] == "firing"
    assert body["receiver"] == "hook"
    assert body["group_key"] == "service=api"
    assert body["group_labels"] == {"service": "api"}
    (a,) = body["alerts"]
    assert a["id"] == "inc00001"
    assert a["series"] == "service=api"
    assert a["metric"] == "error_rate"
    assert a["observed"] == 0.31 and a["expected"] == 0.02
    assert a["severity"] == "critical"
    assert a["labels"]["detector"] == "robust_zscore"
    assert a["start"] == "2026-11-20T12:00:00Z" and a["end"] == "2026-11-20T12:03:00Z"
    assert a["examples"] == ["upstream payments-1 timed out after 3000 ms"]
    assert db["json"]["alerts"][0]["severity"] == "warning"
    history = read_history(data)
    assert sorted((h["group_key"], h["result"]) for h in history) == [
        ("service=api", "delivered"),
        ("service=db", "delivered"),
    ]
    assert "tok-123" not in json.dumps(outbox(data))


def test_slack_and_alertmanager_payloads(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer() as http:
        receivers = webhook(http.url + "/slack", "slack", "chat") + webhook(
            http.url + "/am", "alertmanager", "am"
        )
        alert("run", "--config", str(config(tmp_path, receivers, rule('chat", "am'))), "--now", NOW)
        by_path = {r["path"]: r["json"] for r in http.requests}
    slack = by_path["/hook/slack"]
    assert slack["text"].startswith("[FIRING] api-errors service=api: 1 alert")
    assert slack["blocks"][0]["type"] == "header"
    assert "upstream payments-1 timed out" in slack["blocks"][1]["text"]["text"]
    am = by_path["/hook/am"]
    assert am["version"] == "4"
    assert am["status"] == "firing"
    assert am["receiver"] == "am"
    assert am["groupLabels"] == {"service": "api"}
    assert am["commonLabels"]["service"] == "api"
    (a,) = am["alerts"]
    assert a["labels"]["alertname"] == "api-errors"
    assert a["labels"]["severity"] == "critical"
    assert a["startsAt"] == "2026-11-20T12:00:00Z"
    assert a["fingerprint"] == "inc00001"
    assert a["annotations"]["observed"] == "0.31"
    assert am["commonLabels"]["alertname"] == "api-errors"
    assert am["commonAnnotations"]["expected"] == "0.02"
    assert am["groupKey"] == '{}/{alertname="api-errors"}:{service="api"}'


def test_resolved_email_threads_under_its_firing(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with SmtpServer() as smtp:
        receivers = f"""
[[receiver]]
name = "oncall"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
tls = "none"
from = "loglens@example.com"
to = ["sre@example.com"]
"""
        cfg = config(tmp_path, receivers, rule("oncall"), 'external_url = "http://dash:8501"')
        alert("run", "--config", str(cfg), "--now", NOW)
        alert("run", "--config", str(cfg), "--now", LATER)
        firing, resolved = (m["message"] for m in smtp.messages)
    assert resolved["Subject"].startswith("[RESOLVED]")
    assert resolved["In-Reply-To"] == firing["Message-ID"]
    assert resolved["References"] == firing["Message-ID"]
    assert firing["In-Reply-To"] is None
    plain = firing.get_body(("plain",)).get_content()
    assert "dashboard: http://dash:8501" in plain
    assert "loglens templates --new-since 2026-11-20T12:00:00Z" in plain


def test_firing_once_then_resolved_once(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer() as http:
        cfg = config(tmp_path, webhook(http.url), rule())
        alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(seconds=10)))
        assert http.requests == [], "group wait (30s) not over"
        alert("run", "--config", str(cfg), "--now", NOW)
        alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(minutes=6)))
        alert("run", "--config", str(cfg), "--now", LATER)
        alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(hours=2)))
        states = [r["json"]["status"] for r in http.requests]
    assert states == ["firing", "resolved"]


def test_receiver_down_then_up_is_delivered_once_after_retries(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer(Script(fail=2)) as http:
        alert("run", "--config", str(config(tmp_path, webhook(http.url), rule())), "--now", NOW)
        answered = [r for r in http.requests if r["answered"]]
        keys = http.keys()
    assert len(keys) == 3 and len(set(keys)) == 1, "same key on every attempt"
    assert len(answered) == 1
    history = read_history(data)
    assert [(h["result"], h["attempts"]) for h in history] == [
        ("retrying", 1),
        ("retrying", 2),
        ("delivered", 3),
    ]
    assert "HTTP 503" in history[0]["error"]


def test_receiver_down_for_a_run_is_delivered_by_a_later_run(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1), incident(2, service="db")])
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    cfg = config(tmp_path, webhook(url, extra="max_attempts = 2"), rule())
    result = alert("run", "--config", str(cfg), "--now", NOW, check=False)
    assert result.returncode == 1
    assert "1 left for a later run, 1 waiting for their retry time" in result.stdout
    assert sorted((e["status"], e["attempts"]) for e in outbox(data)) == [
        ("pending", 0),
        ("pending", 2),
    ], "once the receiver gave up, its other entry waits for a later run"
    assert [h["result"] for h in read_history(data)] == ["retrying", "retrying"]
    with HttpServer(port=port) as http:
        alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(minutes=6)))
        alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(minutes=7)))
        alert("run", "--config", str(cfg), "--now", LATER)
        sent = sorted((r["json"]["group_key"], r["json"]["status"]) for r in http.requests)
        keys = http.keys()
    assert sent == [
        ("service=api", "firing"),
        ("service=api", "resolved"),
        ("service=db", "firing"),
        ("service=db", "resolved"),
    ], "no firing lost, none sent twice"
    firing = [e for e in outbox(data) if e["notification"]["state"] == "firing"]
    assert sorted(e["attempts"] for e in firing) == [1, 3]
    assert {e["notification"]["key"] for e in firing} <= set(keys)
    pruned = alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(days=8)))
    assert "4 old outbox entries pruned" in pruned.stdout
    assert outbox(data) == []


def test_permanent_error_is_not_retried(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer(Script(fail=10, status=404)) as http:
        cfg = config(tmp_path, webhook(http.url), rule())
        result = alert("run", "--config", str(cfg), "--now", NOW, check=False)
        alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(minutes=6)), check=False)
        requests = len(http.requests)
    assert result.returncode == 1
    assert requests == 1, "a 404 is not retried, in this run or the next"
    assert [e["status"] for e in outbox(data)] == ["failed"]
    assert [h["result"] for h in read_history(data)] == ["failed"]
    assert "HTTP 404" in read_history(data)[0]["error"]


def test_undelivered_notification_expires_after_give_up_after(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1, minutes=600)])
    url = f"http://127.0.0.1:{free_port()}/hook"
    cfg = config(tmp_path, webhook(url, extra="max_attempts = 1"), rule(), 'give_up_after = "1h"')
    alert("run", "--config", str(cfg), "--now", NOW, check=False)
    result = alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(hours=2)), check=False)
    assert result.returncode == 1
    assert "warning: gave up on firing [FIRING] api-errors" in result.stderr
    assert "1 expired" in result.stdout
    assert [e["status"] for e in outbox(data)] == ["expired"]
    assert [h["result"] for h in read_history(data)] == ["retrying", "expired"]


def test_slow_receiver_times_out_then_retry_delivers(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer(Script(slow=1, slow_secs=5)) as http:
        cfg = config(tmp_path, webhook(http.url, extra='timeout = "1s"'), rule())
        alert("run", "--config", str(cfg), "--now", NOW)
        keys = http.keys()
    assert len(keys) == 2 and len(set(keys)) == 1
    history = read_history(data)
    assert [(h["result"], h["attempts"]) for h in history] == [("retrying", 1), ("delivered", 2)]
    assert "timeout" in history[0]["error"].lower() or "timed out" in history[0]["error"].lower()


def test_receivers_are_served_concurrently(tmp_path):
    """Two receivers whose first request hangs until released: delivered one after the other,
    the second would never be reached while the first hangs; served concurrently, both are."""
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    scripts = [Script(stall=True), Script(stall=True)]
    with HttpServer(scripts[0]) as first, HttpServer(scripts[1]) as second:
        hooks = [
            webhook(server.url, name=name, extra='timeout = "60s"')
            for server, name in ((first, "first"), (second, "second"))
        ]
        cfg = config(tmp_path, "".join(hooks), rule('first", "second'))
        args = [loglens_bin(), "alert", "run", "--config", str(cfg), "--now", NOW]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            reached = [s.arrived.wait(30) for s in scripts]
            assert reached == [True, True], "one receiver waited for the other's stalled request"
            assert proc.poll() is None, "the run ended while both requests were still held"
        finally:
            for s in scripts:
                s.release.set()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    delivered = [h["receiver"] for h in read_history(data) if h["result"] == "delivered"]
    assert sorted(delivered) == ["first", "second"], "each receiver delivered once"


def test_killed_mid_delivery_resumes_exactly_once_by_key(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    script = Script(stall=True)
    with HttpServer(script) as http:
        cfg = config(tmp_path, webhook(http.url, extra='timeout = "60s"'), rule())
        args = [loglens_bin(), "alert", "run", "--config", str(cfg), "--now", NOW]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert script.arrived.wait(30), "the notification never reached the receiver"
            entry = outbox(data)[0]
            assert (entry["status"], entry["attempts"]) == ("sending", 1)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        script.release.set()
        alert("run", "--config", str(cfg), "--now", NOW)
        alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(minutes=6)))
        keys = http.keys()
        answered = [r for r in http.requests if r["answered"]]
    assert len(set(keys)) == 1, "one notification, retried under one idempotency key"
    assert len(keys) == 2
    assert answered, "delivered after the restart"
    assert [(e["status"], e["attempts"]) for e in outbox(data)] == [("delivered", 2)]
    assert [h["result"] for h in read_history(data)] == ["delivered"]


def test_storm_of_1000_incidents_is_a_handful_of_notifications(tmp_path):
    data = tmp_path / "data"
    services = ["api", "db", "web", "auth"]
    rows = [incident(n, service=services[n % 4], start_min=n % 3) for n in range(1000)]
    write_incidents(data, rows)
    with HttpServer() as http:
        started = time.monotonic()
        alert("run", "--config", str(config(tmp_path, webhook(http.url), rule())), "--now", NOW)
        elapsed = time.monotonic() - started
        bodies = [r["json"] for r in http.requests]
    assert sorted(b["group_key"] for b in bodies) == [f"service={s}" for s in sorted(services)]
    assert sum(len(b["alerts"]) for b in bodies) == 1000
    print(f"1000 incidents -> {len(bodies)} notifications in {elapsed:.2f}s")


def test_storm_beyond_max_per_run_is_folded_into_one_summary(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(n, service=f"svc{n:02d}") for n in range(30)])
    with HttpServer() as http:
        hook = webhook(http.url, extra="max_per_run = 10")
        result = alert("run", "--config", str(config(tmp_path, hook, rule())), "--now", NOW)
        bodies = [r["json"] for r in http.requests]
    assert len(bodies) == 10, "9 notifications and one summary, not 30"
    (summary,) = [b for b in bodies if b["rule"] == "storm"]
    assert summary["subject"].startswith("[FIRING] storm: 21 more notifications")
    assert sum(len(b["alerts"]) for b in bodies) == 30, "every alert is in some notification"
    assert result.stdout.count("folded into a storm summary") == 21
    results = [h["result"] for h in read_history(data)]
    assert (results.count("summarized"), results.count("delivered")) == (21, 10)


def test_dry_run_prints_and_sends_nothing(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer() as http:
        cfg = config(tmp_path, webhook(http.url), rule())
        result = alert("run", "--config", str(cfg), "--now", NOW, "--dry-run")
        assert http.requests == []
        assert "would send firing api-errors[service=api]" in result.stdout
        assert outbox(data) == []
        alert("run", "--config", str(cfg), "--now", NOW)
        assert len(http.requests) == 1, "dry run changed no state"
    assert [h["result"] for h in read_history(data)] == ["delivered"], "dry run wrote no history"


def test_silence_cli_holds_matching_alerts_until_expired(tmp_path):
    # CLI silences start at the wall clock, so this test's incidents are placed around it.
    data = tmp_path / "data"
    recent = datetime.now(UTC) - timedelta(minutes=2)
    write_incidents(data, [incident(1, at=recent), incident(2, service="db", at=recent)])
    with HttpServer() as http:
        cfg = config(tmp_path, webhook(http.url), rule())
        args = ["--config", str(cfg), "--match", "service=api", "--id", "maint"]
        added = alert("silence", "add", *args, "--comment", "deploy")
        assert added.stdout.startswith("silence maint until ")
        listed = alert("silence", "list", "--config", str(cfg)).stdout
        assert listed.startswith("maint\tactive\t") and "service=api\tdeploy" in listed
        alert("run", "--config", str(cfg))
        silenced = [r["json"]["group_key"] for r in http.requests]
        alert("silence", "expire", "--config", str(cfg), "maint")
        assert alert("silence", "list", "--config", str(cfg)).stdout.startswith("maint\texpired")
        alert("run", "--config", str(cfg))
        after = [r["json"]["group_key"] for r in http.requests]
    assert silenced == ["service=db"]
    assert after == ["service=db", "service=api"]


def test_config_silence_with_expiry(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1), incident(2, service="db")])
    silence = f"""
[[silence]]
id = "api-maint"
match = ["service=api"]
starts = "{iso(T0)}"
ends = "{iso(T0 + timedelta(minutes=30))}"
comment = "deploy"
"""
    with HttpServer() as http:
        cfg = config(tmp_path, webhook(http.url), rule(), extra=silence)
        alert("run", "--config", str(cfg), "--now", NOW)
        groups = [r["json"]["group_key"] for r in http.requests]
    assert groups == ["service=db"]
    results = sorted((h["group_key"], h["result"]) for h in read_history(data))
    assert results == [("service=api", "silenced"), ("service=db", "delivered")]


def test_threshold_and_new_template_rules(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [])
    points = [
        {
            "ts": T0 + timedelta(minutes=m),
            "bucket_secs": 60,
            "metric": "error_rate",
            "series": "service=api",
            "service": "api",
            "host": None,
            "level": None,
            "template_id": None,
            "value": v,
        }
        for m, v in enumerate([0.01, 0.06, 0.08, 0.09, 0.01])
    ]
    write_metrics(data, points)
    write_templates(
        data,
        [
            {
                "template_id": 42,
                "template": "disk <*> full",
                "count": 7,
                "first_seen": T0,
                "last_seen": T0 + timedelta(minutes=2),
                "level": "error",
                "service": "db",
                "example": "disk /var full",
            },
            {
                "template_id": 43,
                "template": "user <*> logged in",
                "count": 9,
                "first_seen": T0,
                "last_seen": T0,
                "level": "info",
                "service": "web",
                "example": "user bob logged in",
            },
        ],
    )
    rules = """
[[rule]]
name = "error-rate"
kind = "threshold"
metric = "error_rate"
op = ">"
value = 0.05
for = "3m"
severity = "critical"
receivers = ["hook"]
group_wait = "0s"

[[rule]]
name = "new-errors"
kind = "new_template"
min_level = "error"
receivers = ["hook"]
group_wait = "0s"
"""
    with HttpServer() as http:
        alert("run", "--config", str(config(tmp_path, webhook(http.url), rules)), "--now", NOW)
        by_rule = {r["json"]["rule"]: r["json"] for r in http.requests}
    assert set(by_rule) == {"error-rate", "new-errors"}
    (t,) = by_rule["error-rate"]["alerts"]
    assert (t["series"], t["observed"], t["expected"]) == ("service=api", 0.09, 0.05)
    assert t["start"] == "2026-11-20T12:01:00Z" and t["end"] == "2026-11-20T12:04:00Z"
    (n,) = by_rule["new-errors"]["alerts"]
    assert n["template"] == "disk <*> full" and n["labels"]["service"] == "db"


def test_alert_test_sends_to_the_named_receiver(tmp_path):
    with HttpServer() as http:
        cfg = config(tmp_path, webhook(http.url), rule())
        result = alert("test", "--config", str(cfg), "--receiver", "hook")
        (req,) = http.requests
    assert result.stdout.startswith("test notification to hook: delivered after 1 attempt(s)")
    assert req["json"]["status"] == "test"
    unknown = alert("test", "--config", str(cfg), "--receiver", "nope", check=False)
    assert unknown.returncode == 1 and 'no [[receiver]] named "nope"' in unknown.stderr


def validate(cfg: Path) -> subprocess.CompletedProcess:
    args = [loglens_bin(), "config", "validate", "--config", str(cfg)]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def test_config_validate_names_the_bad_field(tmp_path):
    cfg = config(tmp_path, webhook("http://127.0.0.1:1/x"), rule())
    ok = validate(cfg)
    assert ok.returncode == 0, ok.stderr
    assert "1 rules, 1 receivers" in ok.stdout
    bad = cfg.read_text().replace('receivers = ["hook"]', 'receivers = ["hok"]')
    cfg.write_text(bad)
    res = validate(cfg)
    assert res.returncode == 2
    assert 'rule[0].receivers: no [[receiver]] named "hok"' in res.stderr
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "hok" in t)
    assert f"loglens.toml:{line}:" in res.stderr
    cfg.write_text(bad.replace("group_wait", "group_wiat"))
    res = validate(cfg)
    assert res.returncode == 2 and "group_wiat" in res.stderr


def test_silence_holds_a_firing_group_without_resolving_and_its_end_refires(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1, minutes=120)])
    silence = f"""
[[silence]]
id = "deploy"
match = ["service=api"]
starts = "{iso(T0 + timedelta(minutes=10))}"
ends = "{iso(T0 + timedelta(minutes=30))}"
"""
    with HttpServer() as http:
        cfg = config(tmp_path, webhook(http.url), rule(), extra=silence)
        for minutes in (5, 15, 25, 35, 40, 180):
            alert("run", "--config", str(cfg), "--now", iso(T0 + timedelta(minutes=minutes)))
        states = [r["json"]["status"] for r in http.requests]
        keys = http.keys()
    assert states == ["firing", "firing", "resolved"], "no false resolved; re-fired once after"
    assert len(set(keys)) == 3, "the re-fire has its own key"


def test_incident_missed_by_every_run_is_notified_late(tmp_path):
    data = tmp_path / "data"
    old = incident(2, service="db", at=T0 - timedelta(days=3))
    write_incidents(data, [incident(1), old])
    with HttpServer() as http:
        cfg = config(tmp_path, webhook(http.url), rule())
        two_hours = T0 + timedelta(hours=2)
        result = alert("run", "--config", str(cfg), "--now", iso(two_hours))
        alert("run", "--config", str(cfg), "--now", iso(two_hours + timedelta(minutes=1)))
        bodies = [r["json"] for r in http.requests]
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert "(1 late)" in bodies[0]["subject"]
    assert bodies[0]["alerts"][0]["late"] is True
    assert "1 late" in result.stdout
    assert "1 incidents ended before the late lookback" in result.stdout


def test_two_concurrent_runs_deliver_once(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    script = Script(stall=True)
    with HttpServer(script) as http:
        cfg = config(tmp_path, webhook(http.url, extra='timeout = "60s"'), rule())
        impatient = tmp_path / "impatient.toml"
        impatient.write_text(cfg.read_text().replace("[alerting]", '[alerting]\nlock_wait = "0s"'))
        args = [loglens_bin(), "alert", "run", "--now", NOW, "--config"]
        first = subprocess.Popen([*args, str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        second = None
        try:
            assert script.arrived.wait(30), "the first run never reached the receiver"
            busy = alert("run", "--config", str(impatient), "--now", NOW, check=False)
            assert busy.returncode == 3, busy.stderr
            assert "holds" in busy.stderr and ".lock" in busy.stderr
            second = subprocess.Popen(
                [*args, str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            script.release.set()
            assert first.wait(60) == 0
            assert second.wait(60) == 0, second.stderr.read() if second.stderr else ""
        finally:
            for proc in (first, second):
                if proc is not None:
                    proc.kill()
                    proc.wait(10)
        keys = http.keys()
    assert len(keys) == 1, "the waiting run found the notification delivered"
    assert [e["status"] for e in outbox(data)] == ["delivered"]


def test_secrets_in_urls_and_config_are_never_printed_or_stored(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer(Script(fail=10)) as http:
        url = http.url.replace("http://", "http://bob:pw-SECRET1@") + "?token=tok-SECRET2"
        email = """
[[receiver]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = 9
tls = "none"
username = "alerts"
password = "pw-SECRET3"
from = "loglens@example.com"
to = ["sre@example.com"]
max_attempts = 1
"""
        cfg = config(tmp_path, webhook(url, extra="max_attempts = 2") + email, rule('hook", "mail'))
        result = alert("run", "--config", str(cfg), "--now", NOW, check=False)
        checked = validate(cfg)
        cfg.write_text(cfg.read_text().replace("password = ", "pasword = "))
        typo = validate(cfg)
        assert len(http.requests) == 2
    assert result.returncode == 1
    assert "receiver[1].password: a literal password" in result.stderr
    assert "http://***@127.0.0.1" in result.stdout and "token=***" in result.stdout
    stored = "".join(p.read_text() for p in (data / "alerts").rglob("*.json"))
    stored += json.dumps(read_history(data), default=str)
    printed = result.stdout + result.stderr + checked.stdout + checked.stderr
    printed += typo.stdout + typo.stderr
    for secret in ("pw-SECRET1", "tok-SECRET2", "pw-SECRET3"):
        assert secret not in printed + stored, secret
    assert checked.returncode == 0 and "warning" in checked.stderr
    assert typo.returncode == 2 and "pasword" in typo.stderr


def test_config_validate_checks_urls_variables_and_labels(tmp_path):
    cases = [
        (webhook("http://"), rule(), "receiver[0].url"),
        (webhook("http://127.0.0.1:99999/x"), rule(), "port"),
        (
            webhook("http://127.0.0.1:1/x", extra='headers_env = { "X-Key" = "LOGLENS_NOT_SET" }'),
            rule(),
            "environment variable LOGLENS_NOT_SET is not set",
        ),
        (webhook("http://127.0.0.1:1/x"), rule().replace("severity=~", "sevrity=~"), "sevrity"),
    ]
    os.environ.pop("LOGLENS_NOT_SET", None)
    for receivers, rules, expected in cases:
        res = validate(config(tmp_path, receivers, rules))
        assert res.returncode == 2 and expected in res.stderr, (expected, res.stderr)


def test_private_ca_for_https_and_smtp_starttls(tmp_path):
    ca = make_private_ca(tmp_path)
    if ca is None:
        pytest.skip("needs the openssl command to make a CA")
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    with HttpServer(tls=ca.server_context()) as https, SmtpServer(tls=ca.server_context()) as smtp:
        email = f"""
[[receiver]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
tls = "starttls"
username = "alerts"
password_env = "LOGLENS_TEST_SMTP_PASSWORD"
from = "loglens@example.com"
to = ["sre@example.com"]
max_attempts = 1
{{ca}}
"""
        hook = webhook(https.url, extra="max_attempts = 1\n{ca}")
        both = rule('hook", "mail')
        env = {"LOGLENS_TEST_SMTP_PASSWORD": smtp.password}
        untrusted = config(tmp_path, (hook + email).format(ca=""), both)
        refused = alert("run", "--config", str(untrusted), "--now", NOW, env=env, check=False)
        assert refused.returncode == 1
        assert refused.stdout.count("not trusted") == 2 and "set ca_file" in refused.stdout
        assert https.requests == [] and smtp.messages == []
        trusted = config(tmp_path, (hook + email).format(ca=f'ca_file = "{ca.ca_pem}"'), both)
        alert("run", "--config", str(trusted), "--now", iso(T0 + timedelta(minutes=6)), env=env)
        assert len(https.requests) == 1 and len(smtp.messages) == 1
        assert smtp.messages[0]["auth"] == "alerts"
        # SSL_CERT_FILE is honoured when ca_file is not set.
        env["SSL_CERT_FILE"] = str(ca.ca_pem)
        alert("test", "--config", str(untrusted), "--receiver", "hook", env=env)
        assert len(https.requests) == 2


RATE_RULE = """
[[rule]]
name = "api-errors"
match = ["severity=~warning|critical"]
receivers = ["hook"]
group_by = ["service"]
group_wait = "0s"
"""


def test_rate_limit_holds_notifications_across_runs_until_the_window_has_room(tmp_path):
    # rate_limit = 3/1h: runs 5, 15 and 25 minutes in decide 2, 3 and 2 new groups.
    data = tmp_path / "data"
    starts = [0, 0, 10, 10, 10, 20, 20]
    write_incidents(
        data,
        [incident(n, service=f"svc{n}", start_min=s, minutes=120) for n, s in enumerate(starts)],
    )
    with HttpServer() as http:
        hook = webhook(http.url, extra='rate_limit = "3/1h"')
        cfg = str(config(tmp_path, hook, RATE_RULE))

        def run(minutes: int) -> subprocess.CompletedProcess:
            return alert("run", "--config", cfg, "--now", iso(T0 + timedelta(minutes=minutes)))

        run(5)
        assert len(http.requests) == 2, "two groups, within the limit"
        second = run(15)
        assert len(http.requests) == 3, "one left in the window: the three groups as one summary"
        assert http.requests[2]["json"]["rule"] == "storm"
        assert second.stdout.count("folded into a storm summary") == 3
        third = run(25)
        assert len(http.requests) == 3, "the window is full: nothing goes"
        assert "held by the receiver's rate_limit until 2026-11-20T13:05:00Z" in third.stdout
        assert "1 waiting for their retry time or rate limit" in third.stdout
        run(64)
        assert len(http.requests) == 3, "the first notifications are still in the window"
        run(65)
        assert len(http.requests) == 4, "held back, not lost"
        last = http.requests[3]["json"]
    assert last["rule"] == "storm"
    assert sorted(a["labels"]["service"] for a in last["alerts"]) == ["svc5", "svc6"]
    results = [h["result"] for h in read_history(data)]
    assert (results.count("delivered"), results.count("summarized")) == (4, 5)


def test_webhook_url_from_the_environment(tmp_path):
    data = tmp_path / "data"
    write_incidents(data, [incident(1)])
    receivers = """
[[receiver]]
name = "hook"
kind = "webhook"
url_env = "LOGLENS_TEST_HOOK_URL"
"""
    cfg = config(tmp_path, receivers, rule())
    os.environ.pop("LOGLENS_TEST_HOOK_URL", None)
    unset = validate(cfg)
    assert unset.returncode == 2
    assert "receiver[0].url_env: environment variable LOGLENS_TEST_HOOK_URL is not set" in (
        unset.stderr
    )
    with HttpServer() as http:
        url = f"{http.url}?token=s3cret-hook-token"
        env = {"LOGLENS_TEST_HOOK_URL": url}
        result = alert("run", "--config", str(cfg), "--now", NOW, env=env)
        assert len(http.requests) == 1, result.stdout
        assert http.requests[0]["json"]["group_key"] == "service=api"
    stored = "".join(p.read_text() for p in (data / "alerts").rglob("*.json"))
    assert "s3cret-hook-token" not in result.stdout + result.stderr + stored
    env = {"LOGLENS_TEST_HOOK_URL": "http://"}
    bad = alert("run", "--config", str(cfg), "--now", LATER, env=env, check=False)
    assert bad.returncode == 1, "not delivered: kept for a later run"
    assert 'environment variable LOGLENS_TEST_HOOK_URL: "http://" is not a usable URL' in bad.stdout


def test_concurrent_silence_commands_lose_no_change(tmp_path):
    cfg = config(tmp_path, webhook("http://127.0.0.1:1/x"), rule())
    add = [loglens_bin(), "alert", "silence", "add", "--config", str(cfg), "--duration", "1h"]
    procs = [
        subprocess.Popen(
            [*add, "--match", f"service=s{i}", "--id", f"s{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * 8
    listed = alert("silence", "list", "--config", str(cfg)).stdout
    ids = sorted(line.split("\t")[0] for line in listed.splitlines())
    assert ids == [f"s{i}" for i in range(8)], "every concurrent add is kept"
