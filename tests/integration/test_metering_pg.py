"""Usage exported to PostgreSQL (issue 24 item 5; docs/metering.md,
"Exporting to PostgreSQL"): a gateway metering to SQLite with
`metering.sink: postgres://...` against a real PostgreSQL server started by
the test (pgserver.py).

- the totals in PostgreSQL (sum of quantity and events per subject and
  event type, and per route and status class) equal the traffic sent,
  written here, and the SQLite `usage` totals;
- PostgreSQL stopped mid-run, traffic served meanwhile, PostgreSQL started
  again: nothing lost, nothing counted twice, the outage and the recovery
  logged, the password never;
- PostgreSQL not there when the gateway starts: the gateway starts and
  serves, and the sink catches up once the server is up;
- subjects with backslashes, COPY's NULL and end-of-data markers (JWT
  subjects) arrive as they were (COPY's text escaping; tabs, newlines and
  bytes that are not UTF-8, which no served request's subject can hold,
  are tests/unit/test_pg_copy.c's);
- the metering API's accepted events (M2's /v1/meter) arrive one row each
  with their id, a duplicate never;
- the gateway stopped while PostgreSQL is down: one last try, then what
  could not be sent is counted (pg_sink_lost), freed, and still in SQLite;
- a COMMIT whose answer never came (a proxy cuts the connection right
  after it) is looked up by its batch id, not copied twice;
- a full queue (metering.sink_queue) drops what does not fit, counted in a
  log line and /ready, and keeps what fits;
- a reload that brings meter: (the usage store opened then) feeds the
  sink that runs since the start;
- a bad sink URL is refused at load with file:line:column, without its
  password."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading

import pytest

import pgserver
from conftest import BIN, Gateway, free_port, request, wait_for

pytestmark = pytest.mark.skipif(pgserver.missing() is not None, reason=pgserver.missing() or "")

ADMIN_TOKEN = "admin-token-for-the-metering-pg-tests-01"
JWT_SECRET = "jwt-hs256-secret-for-the-sink-tests-0123456789"


@pytest.fixture
def pg():
    p = pgserver.Postgres(free_port())
    yield p
    p.close()


def config(tmp, port, admin, upstream, sink, more=""):
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: problem, negotiate: false }}
log: {{ access: "off" }}
store: {{ backend: sqlite, path: {tmp}/usage.db }}
auth:
  admin_token_file: {tmp}/admin.token
  jwt: {{ secret_env: EG_TEST_JWT_SECRET }}
metering:
  commit_interval: 20ms
  path: /v1/meter
  sink: "{sink}"{more}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"] }}
routes:
  - {{ path: /v1/meter, upstream: demo, auth: api_key }}
  - {{ path: /v1/, upstream: demo, auth: api_key, meter: true }}
  - {{ path: /search/, upstream: demo, auth: api_key, meter: {{ event_type: custom.search, cost: 2.5 }} }}
  - {{ path: /user/, upstream: demo, auth: jwt, meter: true }}
  - {{ path: /open/, upstream: demo, meter: true }}
"""


def start(tmp, upstream, pg_port, sink=None, more=""):
    """A gateway whose sink's password comes from the environment (${VAR}),
    as a secret should."""
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    sink = sink or (f"postgres://{pgserver.Postgres.USER}:${{EG_TEST_PG_PASSWORD}}@127.0.0.1:{pg_port}/"
                    f"{pgserver.Postgres.DB}")
    env = dict(os.environ, EG_TEST_PG_PASSWORD=pgserver.Postgres.PASSWORD, EG_TEST_JWT_SECRET=JWT_SECRET)
    port, admin = free_port(), free_port()
    return Gateway(tmp, config(tmp, port, admin, upstream, sink, more), port, admin, env=env)


def new_key(gw, scopes=()):
    body = json.dumps({"name": "billing", "scopes": list(scopes)}).encode()
    r = request(gw.admin_port, "POST", "/keys", body=body,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    assert r.status == 201, r.body
    return r.json()["key"]["id"], r.json()["secret"]


def send(gw, path, n, key=None, jwt=None, status=200):
    h = {"X-API-Key": key} if key else {"Authorization": f"Bearer {jwt}"} if jwt else {}
    for _ in range(n):
        r = request(gw.port, "GET", path, headers=h)
        assert r.status == status, (path, r.status, r.body)


def pg_totals(pg, by="subject, event_type"):
    """{(key columns...): (quantity, events)} from usage_events, read as
    JSON so that any byte of a subject comes back as it is; {} while the
    sink has not created the table yet."""
    try:
        rows = pg.psql(f"SELECT coalesce(jsonb_agg(t), '[]') FROM (SELECT {by}, sum(quantity) AS q, "
                       f"sum(events) AS n FROM usage_events GROUP BY {by}) t")
    except RuntimeError as e:
        if "does not exist" in str(e):
            return {}
        raise
    keys = [k.strip() for k in by.split(",")]
    return {tuple(r[k] for k in keys): (r["q"], r["n"]) for r in json.loads(rows[0][0])}


def sqlite_totals(tmp, by="subject, event_type"):
    with sqlite3.connect(f"{tmp}/usage.db") as db:
        rows = db.execute(f"SELECT {by}, sum(quantity), sum(events) FROM usage GROUP BY {by}").fetchall()
    return {tuple(r[:-2]): (r[-2], r[-1]) for r in rows}


def wait_totals(pg, want, by="subject, event_type", timeout=60):
    """Waits until PostgreSQL holds exactly `want` (more would be a failure
    as well: a row copied twice never goes away)."""
    got = {}

    def same():
        nonlocal got
        got = pg_totals(pg, by)
        return got == want

    try:
        wait_for(same, timeout=timeout, what="PostgreSQL's totals")
    except AssertionError:
        raise AssertionError(f"PostgreSQL has {got}, expected {want}")


def test_totals_equal_traffic_and_sqlite(tmp_path, upstream_port, pg):
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port)
    try:
        k1, s1 = new_key(gw)
        k2, s2 = new_key(gw)
        send(gw, "/v1/hello", 7, key=s1)
        send(gw, "/v1/errors/problem/not_found", 2, key=s1, status=404)  # served: usage, class 4
        send(gw, "/search/q", 4, key=s2)
        send(gw, "/v1/errors/problem/internal", 1, key=s2, status=500)
        send(gw, "/open/x", 3)
        send(gw, "/v1/hello", 2, status=401)  # refused: not usage
        want = {(f"k:{k1}", "api.request"): (9, 9), (f"k:{k2}", "custom.search"): (10, 4),
                (f"k:{k2}", "api.request"): (1, 1), ("ip:127.0.0.1", "api.request"): (3, 3)}
        wait_totals(pg, want)
        by = "subject, event_type, route, status_class"
        want_routes = {(f"k:{k1}", "api.request", "/v1/", 2): (7, 7), (f"k:{k1}", "api.request", "/v1/", 4): (2, 2),
                       (f"k:{k2}", "custom.search", "/search/", 2): (10, 4),
                       (f"k:{k2}", "api.request", "/v1/", 5): (1, 1),
                       ("ip:127.0.0.1", "api.request", "/open/", 2): (3, 3)}
        assert pg_totals(pg, by) == want_routes
        assert sqlite_totals(tmp, by) == want_routes
        assert sqlite_totals(tmp) == pg_totals(pg)
        # served requests are hourly sums: ts is an hour's start, event_id NULL
        assert pg.psql("SELECT count(*) FROM usage_events WHERE extract(epoch FROM ts)::bigint % 3600 <> 0 "
                       "OR event_id IS NOT NULL") == [["0"]]
        # every batch is recorded, with the rows it carried
        assert pg.psql("SELECT sum(events) = (SELECT count(*) FROM usage_events) FROM usage_export_batches") \
            == [["t"]]
        assert gw.events("pg_sink_connected"), gw.log_text()[-2000:]
        assert not gw.events("pg_sink_failed") and not gw.events("pg_sink_dropped")
        # a reload does not move the sink: it says so, and the running one stays
        gw.rewrite(config(tmp, gw.port, gw.admin_port, upstream_port,
                          f"postgres://other@127.0.0.1:{pg.port}/elsewhere"))
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        assert [l for l in gw.events("reload_warning") if "metering.sink" in l.get("detail", "")], \
            gw.events("reload_warning")
        send(gw, "/open/x", 1)
        want[("ip:127.0.0.1", "api.request")] = (4, 4)
        wait_totals(pg, want)
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    assert pgserver.Postgres.PASSWORD not in gw.log_text()


def unmetered(text):
    """The configuration without meter: on any route and without the
    metering API: nothing opens the usage store at start."""
    out = text.replace(", meter: true", "").replace(", meter: { event_type: custom.search, cost: 2.5 }", "")
    out = out.replace("  path: /v1/meter\n", "")
    assert "meter:" not in out and "path: /v1/meter\n" not in out
    return out


def test_a_reload_that_brings_meter_feeds_the_running_sink(tmp_path, upstream_port, pg):
    """Started with metering.sink and no metered route (no usage store), a
    reload that adds meter: opens the usage store (server.c usage_apply):
    its commits reach the sink that was running since the start."""
    tmp = str(tmp_path)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    sink = (f"postgres://{pgserver.Postgres.USER}:${{EG_TEST_PG_PASSWORD}}@127.0.0.1:{pg.port}/"
            f"{pgserver.Postgres.DB}")
    env = dict(os.environ, EG_TEST_PG_PASSWORD=pgserver.Postgres.PASSWORD, EG_TEST_JWT_SECRET=JWT_SECRET)
    port, admin = free_port(), free_port()
    metered = config(tmp, port, admin, upstream_port, sink).replace("  path: /v1/meter\n", "")
    gw = Gateway(tmp, unmetered(metered), port, admin, env=env)
    try:
        kid, secret = new_key(gw)
        send(gw, "/v1/hello", 2, key=secret)  # not metered: no usage store yet
        gw.wait_log(lambda l: l.get("event") == "pg_sink_connected", "the sink connected")
        gw.rewrite(metered)
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        assert gw.events("reload_failed") == [], gw.log_text()[-2000:]
        send(gw, "/v1/hello", 3, key=secret)
        send(gw, "/search/q", 2, key=secret)
        send(gw, "/open/x", 1)
        want = {(f"k:{kid}", "api.request"): (3, 3), (f"k:{kid}", "custom.search"): (5, 2),
                ("ip:127.0.0.1", "api.request"): (1, 1)}
        wait_totals(pg, want)
        assert sqlite_totals(tmp) == want
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    assert pgserver.Postgres.PASSWORD not in gw.log_text()


def test_postgres_stopped_mid_run_loses_nothing(tmp_path, upstream_port, pg):
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port)
    try:
        kid, secret = new_key(gw)
        subject = f"k:{kid}"
        send(gw, "/v1/hello", 10, key=secret)
        wait_totals(pg, {(subject, "api.request"): (10, 10)})
        pg.stop()
        # served while PostgreSQL is down: the gateway does not wait for it
        send(gw, "/v1/hello", 15, key=secret)
        send(gw, "/search/q", 2, key=secret)
        failed = gw.wait_log(lambda l: l.get("event") == "pg_sink_failed", "the sink's failure logged")
        assert "reason" in failed[0] and failed[0]["sink"] == f"errgate@127.0.0.1:{pg.port}/metering", failed[0]
        send(gw, "/v1/hello", 5, key=secret)
        # /ready reports the sink, and stays ready: the rows wait in the queue
        r = request(gw.admin_port, "GET", "/ready")
        assert r.status == 200, r.body
        sink = r.json()["metering_sink"]
        assert sink["state"] == "failing" and sink["queued"] >= 1 and sink["dropped"] == 0, sink
        pg.start()
        wait_totals(pg, {(subject, "api.request"): (30, 30), (subject, "custom.search"): (5, 2)})
        gw.wait_log(lambda l: l.get("event") == "pg_sink_recovered", "the sink's recovery logged")
        sink = request(gw.admin_port, "GET", "/ready").json()["metering_sink"]
        assert sink["state"] == "up" and sink["queued"] == 0 and sink["dropped"] == 0, sink
        assert sqlite_totals(tmp) == pg_totals(pg)
        assert not gw.events("pg_sink_dropped")
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    assert not gw.events("pg_sink_lost")
    assert pgserver.Postgres.PASSWORD not in gw.log_text()


def test_postgres_not_there_at_start(tmp_path, upstream_port):
    """Like an upstream that is down: the gateway starts, serves, logs why
    the sink cannot connect, and catches up when the server comes."""
    tmp = str(tmp_path)
    port = free_port()
    gw = start(tmp, upstream_port, port)
    pg = None
    try:
        kid, secret = new_key(gw)
        send(gw, "/v1/hello", 6, key=secret)
        failed = gw.wait_log(lambda l: l.get("event") == "pg_sink_failed", "the sink's failure logged")
        assert failed[0]["reason"].startswith("connect: "), failed[0]
        pg = pgserver.Postgres(port)
        wait_totals(pg, {(f"k:{kid}", "api.request"): (6, 6)})
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
        if pg:
            pg.close()
    assert pgserver.Postgres.PASSWORD not in gw.log_text()


def make_jwt(sub):
    import base64
    import hashlib
    import hmac
    import time
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    signing = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}." \
              f"{b64(json.dumps({'sub': sub, 'exp': now + 600, 'iat': now}).encode())}"
    sig = hmac.new(JWT_SECRET.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"


def test_subjects_with_backslashes_and_copy_markers(tmp_path, upstream_port, pg):
    """A JWT subject is printable ASCII without spaces (lib/jwt.c): the
    characters of that set that mean something to COPY's text format."""
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port)
    subs = {"back\\slash\\N": 3, "\\N": 1, "\\.": 2, "a\\tb\\nc": 1, "q'uote\"s|pipe;semi": 2}
    try:
        for sub, n in subs.items():
            send(gw, "/user/x", n, jwt=make_jwt(sub))
        want = {(f"u:{sub}", "api.request"): (n, n) for sub, n in subs.items()}
        wait_totals(pg, want)
        assert sqlite_totals(tmp) == want
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]


def meter_event(eid, user, event_type, quantity):
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    return {"id": eid, "type": "usage_events",
            "attributes": {"user_id": user, "event_type": event_type, "quantity": quantity,
                           "timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def test_metering_api_events_one_row_each_duplicates_never(tmp_path, upstream_port, pg):
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port)
    try:
        kid, secret = new_key(gw, scopes=["meter:write"])

        def post(events):
            return request(gw.port, "POST", "/v1/meter", body=json.dumps({"data": events}).encode(),
                           headers={"X-API-Key": secret, "Content-Type": "application/vnd.api+json"})

        r = post([meter_event("ev-1", kid, "compute.minutes", 2.5), meter_event("ev-2", kid, "api.request", 1),
                  meter_event("ev-3", kid, "custom.gpu_hours", 4)])
        assert r.status == 201, r.body
        r = post([meter_event("ev-1", kid, "compute.minutes", 2.5), meter_event("ev-4", kid, "compute.minutes", 1)])
        assert r.status == 202, r.body  # ev-1 again: a duplicate, not recorded
        r = post([meter_event("ev-2", kid, "api.request", 1)])
        assert r.status == 409, r.body
        subject = f"k:{kid}"
        wait_totals(pg, {(subject, "compute.minutes"): (3.5, 2), (subject, "api.request"): (1, 1),
                         (subject, "custom.gpu_hours"): (4, 1)})
        assert pg.psql("SELECT event_id, route, status_class, events FROM usage_events ORDER BY event_id") == \
            [["ev-1", "", "0", "1"], ["ev-2", "", "0", "1"], ["ev-3", "", "0", "1"], ["ev-4", "", "0", "1"]]
        assert sqlite_totals(tmp) == pg_totals(pg)
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]


def test_stopped_while_postgres_is_down_says_what_it_lost(tmp_path, upstream_port, pg):
    """The sink's bound at shutdown: one last try, then the count of what
    it could not send (the SQLite totals still have it), and no leak.
    Metering-API events: one row each, queued before the 201."""
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port)
    try:
        kid, secret = new_key(gw, scopes=["meter:write"])
        gw.wait_log(lambda l: l.get("event") == "pg_sink_connected", "the sink connected")
        pg.stop()
        evs = [meter_event(f"l-{i}", kid, "storage.gb", 0.5) for i in range(3)]
        r = request(gw.port, "POST", "/v1/meter", body=json.dumps({"data": evs}).encode(),
                    headers={"X-API-Key": secret, "Content-Type": "application/vnd.api+json"})
        assert r.status == 201, r.body
        assert request(gw.admin_port, "GET", "/ready").json()["metering_sink"]["queued"] == 3
    finally:
        code = gw.stop()
    assert code == 0, gw.log_text()[-3000:]
    lost = gw.events("pg_sink_lost")
    assert len(lost) == 1 and lost[0]["events"] == 3, lost
    assert lost[0]["reason"].startswith("connect: "), lost[0]
    assert sqlite_totals(tmp) == {(f"k:{kid}", "storage.gb"): (1.5, 3)}


class CommitCutter:
    """A TCP proxy to PostgreSQL that, once, forwards a COMMIT and then cuts
    the connection before its answer: the one step whose outcome the sink
    cannot know. The server has the COMMIT in its socket (a FIN after the
    data, not a reset), so it commits."""

    def __init__(self, pg_port):
        self.pg_port, self.cut = pg_port, 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.pg_port))
            muted = threading.Event()  # set once the COMMIT to cut is on its way
            threading.Thread(target=self._pump, args=(c, u, True, muted), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False, muted), daemon=True).start()

    def _pump(self, src, dst, to_server, muted):
        try:
            while True:
                data = src.recv(65536)
                if not data or (not to_server and muted.is_set()):
                    break  # the server's answer to the cut COMMIT is never forwarded
                cut = to_server and not self.cut and b"Q\x00\x00\x00\x0bCOMMIT\x00" in data
                if cut:
                    # muted before the COMMIT leaves: its answer can only come after
                    self.cut += 1
                    muted.set()
                dst.sendall(data)
                if cut:
                    break  # the answer never comes back
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.close()
            except OSError:
                pass

    def close(self):
        self.lsock.close()


def test_commit_without_answer_is_not_copied_twice(tmp_path, upstream_port, pg):
    cutter = CommitCutter(pg.port)
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port,
               sink=f"postgres://{pg.USER}:{pg.PASSWORD}@127.0.0.1:{cutter.port}/{pg.DB}?sslmode=disable")
    try:
        kid, secret = new_key(gw)
        send(gw, "/v1/hello", 5, key=secret)
        gw.wait_log(lambda l: l.get("event") == "pg_sink_recovered", "the sink's recovery after the cut")
        assert cutter.cut == 1
        failed = gw.events("pg_sink_failed")
        assert failed and failed[0]["reason"].startswith("commit: "), failed
        send(gw, "/v1/hello", 2, key=secret)
        wait_totals(pg, {(f"k:{kid}", "api.request"): (7, 7)})
        # the batch cut at COMMIT was committed, found by its id, not sent again
        assert pg.psql("SELECT sum(events) = (SELECT count(*) FROM usage_events) FROM usage_export_batches") \
            == [["t"]]
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
        cutter.close()
    assert pgserver.Postgres.PASSWORD not in gw.log_text()


def test_full_queue_drops_and_counts(tmp_path, upstream_port, pg):
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port, more="\n  sink_queue: 1000")
    try:
        kid, secret = new_key(gw, scopes=["meter:write"])
        gw.wait_log(lambda l: l.get("event") == "pg_sink_connected", "the sink connected")
        pg.stop()
        for b in range(3):  # 3000 rows (one an API event) for a queue of 1000
            evs = [meter_event(f"q{b}-{i}", kid, "compute.minutes", 1) for i in range(1000)]
            r = request(gw.port, "POST", "/v1/meter", body=json.dumps({"data": evs}).encode(),
                        headers={"X-API-Key": secret, "Content-Type": "application/vnd.api+json"}, timeout=60)
            assert r.status == 201, r.body[:300]  # the gateway's record has every one
        dropped = gw.wait_log(lambda l: l.get("event") == "pg_sink_dropped", "the drops logged")
        assert dropped[0]["max_queued"] == 1000, dropped[0]
        sink = request(gw.admin_port, "GET", "/ready").json()["metering_sink"]
        assert sink["queued"] == 1000 and sink["dropped"] == 2000, sink
        pg.start()
        wait_totals(pg, {(f"k:{kid}", "compute.minutes"): (1000, 1000)})
        # the first thousand, in order: what fitted
        assert pg.psql("SELECT min(event_id), max(event_id) FROM usage_events") == [["q0-0", "q0-999"]]
        assert sqlite_totals(tmp) == {(f"k:{kid}", "compute.minutes"): (3000, 3000)}
        gw.wait_log(lambda l: l.get("event") == "pg_sink_dropped" and l.get("dropped_total") == 2000,
                    "every drop logged")
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]


def test_a_role_with_insert_only(tmp_path, upstream_port, pg):
    """Tables made beforehand (the schema in docs/metering.md): the sink's
    role needs no CREATE, only INSERT (and SELECT on the batches)."""
    pg.psql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    pg.psql(pgserver_schema())
    pg.psql("CREATE ROLE sink LOGIN PASSWORD 'sink-pw-0123'; "
            "GRANT INSERT ON usage_events TO sink; GRANT SELECT, INSERT ON usage_export_batches TO sink")
    tmp = str(tmp_path)
    gw = start(tmp, upstream_port, pg.port, sink=f"postgres://sink:sink-pw-0123@127.0.0.1:{pg.port}/metering")
    try:
        kid, secret = new_key(gw)
        send(gw, "/v1/hello", 4, key=secret)
        wait_totals(pg, {(f"k:{kid}", "api.request"): (4, 4)})
        assert not gw.events("pg_sink_failed"), gw.events("pg_sink_failed")
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]


def pgserver_schema():
    """The tables as docs/metering.md shows them (read from the page, so
    the page stays right)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "../../docs/metering.md")) as f:
        doc = f.read()
    start = doc.index("```sql\nCREATE TABLE IF NOT EXISTS usage_events")
    return doc[start + len("```sql\n"):doc.index("```", start + 6)]


def test_bad_sink_url_refused_at_load(tmp_path, upstream_port):
    tmp = str(tmp_path)
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    cases = {
        "postgres://errgate:hunter2-secret@127.0.0.1:99999/metering": "metering.sink's port must be a number 1..65535",
        "mysql://errgate:hunter2-secret@127.0.0.1/metering": "metering.sink must be a postgres:// URL",
        "postgres://errgate:hunter2-secret@[::1/metering": "metering.sink is not a valid URL",
        "postgres://errgate:hunter2-secret@127.0.0.1/metering?nosuch=1":
            "metering.sink is not a valid URL: invalid URI query parameter",
    }
    for url, msg in cases.items():
        text = config(tmp, free_port(), free_port(), upstream_port, url)
        path = f"{tmp}/bad.yaml"
        with open(path, "w") as f:
            f.write(text)
        line = next(i for i, l in enumerate(text.split("\n"), 1) if l.startswith("  sink: "))
        want = f"{path}:{line}:9: {msg}"
        env = dict(os.environ, EG_TEST_JWT_SECRET=JWT_SECRET)
        for cmd in (["check-config", path], ["serve", "--config", path]):
            out = subprocess.run([BIN, *cmd], capture_output=True, text=True, timeout=60, env=env)
            assert out.returncode != 0, (cmd, url, out.stderr)
            assert want in out.stderr, (cmd, url, out.stderr)
            assert "hunter2" not in out.stderr + out.stdout, (cmd, url, out.stderr)
