"""The metering API (issue 24, item 2): POST metering.path answered by the
gateway. Each metering error of the jsonapi seed on the wire with the seed's
status and code; partial acceptance (202, a pointer per rejected event); 1000
events in a batch and 1001 refused; an event id accepted exactly once across
two workers (a race of concurrent posts), across a restart (SQLite) and
across two gateways on one Redis; the totals in the store's usage table,
read with sqlite3; another dialect's field errors."""
import datetime
import json
import sqlite3
import threading
import time

import pytest

from conftest import Gateway, free_port, request, wait_for

ADMIN_TOKEN = "admin-token-for-the-meter-tests-0123"
JSONAPI = "application/vnd.api+json"


ROUTES = """
  - { path: /v1/meter, upstream: demo, auth: api_key }
  - { path: /v1/, upstream: demo }
"""


def config(tmp, port, admin, upstream, dialect="jsonapi", redis_port=None, store=None, metering="",
           routes=ROUTES):
    redis = f'redis: {{ address: "127.0.0.1:{redis_port}", timeout: 500ms }}' if redis_port else ""
    return f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
errors: {{ dialect: {dialect}, negotiate: false }}
log: {{ access: stderr }}
store: {{ backend: sqlite, path: {store or tmp + '/keys.db'} }}
auth: {{ admin_token_file: {tmp}/admin.token }}
{redis}
metering: {{ path: /v1/meter{metering} }}
upstreams:
  demo: {{ servers: ["127.0.0.1:{upstream}"], timeout: 10s }}
routes:{routes}"""


def start(tmp, upstream, **kw):
    with open(f"{tmp}/admin.token", "w") as f:
        f.write(ADMIN_TOKEN)
    port, admin = free_port(), free_port()
    gw = Gateway(tmp, config(tmp, port, admin, upstream, **kw), port, admin)
    gw.tmp = tmp
    return gw


def new_key(gw, scopes=("meter:write",), owner=None):
    spec = {"name": "m", "scopes": list(scopes)}
    if owner:
        spec["owner"] = owner
    r = request(gw.admin_port, "POST", "/keys", body=json.dumps(spec).encode(),
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    assert r.status == 201, r.body
    return r.json()["key"]["id"], r.json()["secret"]


def ts(delta=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def event(eid, user, event_type="api.request", quantity=1, timestamp=None, **more):
    attrs = {"user_id": user, "event_type": event_type, "quantity": quantity,
             "timestamp": timestamp or ts(-5)}
    attrs.update(more)
    return {"id": eid, "type": "usage_events", "attributes": attrs}


def post(gw, secret, events, raw=None, ctype=JSONAPI):
    body = raw if raw is not None else json.dumps({"data": events}).encode()
    return request(gw.port, "POST", "/v1/meter", body=body,
                   headers={"X-API-Key": secret, "Content-Type": ctype})


def usage_rows(gw, subject):
    """(event_type, quantity, events) summed over hours, read from the file."""
    db = sqlite3.connect(f"{gw.tmp}/keys.db", timeout=10)
    try:
        return {r[0]: (r[1], r[2]) for r in db.execute(
            "SELECT event_type, SUM(quantity), SUM(events) FROM usage WHERE subject = ? AND route = ''"
            " AND status_class = 0 GROUP BY event_type", (subject,))}
    finally:
        db.close()


def stored_ids(gw):
    db = sqlite3.connect(f"{gw.tmp}/keys.db", timeout=10)
    try:
        return {r[0] for r in db.execute("SELECT id FROM meter_events")}
    finally:
        db.close()


@pytest.fixture
def gw(tmp_path, upstream_port):
    g = start(str(tmp_path), upstream_port)
    yield g
    assert g.stop() == 0, g.log_text()[-3000:]


def one_error(r, status, code, pointer=None):
    """The seed's shape: status (string), code, title, source.pointer."""
    assert r.status == status, r.body
    assert r.header("Content-Type") == JSONAPI
    assert r.header("X-Error-Code") == code
    errs = r.json()["errors"]
    assert len(errs) == 1, errs
    e = errs[0]
    assert e["status"] == str(status) and e["code"] == code, e
    assert e["title"] and e["detail"], e
    if pointer is not None:
        assert e["source"]["pointer"] == pointer, e
    return e


def test_all_accepted_is_201_and_lands_in_usage(gw):
    kid, secret = new_key(gw)
    evs = [event("a1", kid, quantity=2), event("a2", kid, quantity=0.5),
           event("a3", kid, "compute.minutes", 3, metadata={"job": "x"}),
           event("a4", kid, "custom.gpu_hours", 1)]
    r = post(gw, secret, evs)
    assert r.status == 201, r.body
    assert r.header("Content-Type") == JSONAPI
    doc = r.json()
    assert doc["meta"]["accepted"] == 4 and doc["meta"]["rejected"] == 0
    assert [d["id"] for d in doc["data"]] == ["a1", "a2", "a3", "a4"]
    assert all(d["type"] == "usage_events" for d in doc["data"])
    rows = usage_rows(gw, f"k:{kid}")
    assert rows == {"api.request": (2.5, 2), "compute.minutes": (3.0, 1), "custom.gpu_hours": (1.0, 1)}
    assert stored_ids(gw) == {"a1", "a2", "a3", "a4"}


def test_seed_errors_on_the_wire(gw):
    kid, secret = new_key(gw)
    one_error(post(gw, secret, [event("e1", kid, "api.requests")]), 422, "invalid_event_type",
              "/data/0/attributes/event_type")
    one_error(post(gw, secret, [event("e2", "nobody-here")]), 422, "user_not_found",
              "/data/0/attributes/user_id")
    one_error(post(gw, secret, [event("e3", kid, quantity=0)]), 422, "invalid_quantity",
              "/data/0/attributes/quantity")
    one_error(post(gw, secret, [event("e4", kid, quantity=-2)]), 422, "invalid_quantity",
              "/data/0/attributes/quantity")
    e = one_error(post(gw, secret, [event("e5", kid, quantity="5")]), 422, "invalid_quantity",
                  "/data/0/attributes/quantity")
    assert "string" in e["detail"]  # never coerced
    one_error(post(gw, secret, [event("e6", kid, timestamp=ts(300))]), 422, "invalid_timestamp",
              "/data/0/attributes/timestamp")
    one_error(post(gw, secret, [event("e7", kid, timestamp=ts(-8 * 86400))]), 422, "invalid_timestamp",
              "/data/0/attributes/timestamp")
    assert post(gw, secret, [event("e8", kid)]).status == 201
    e = one_error(post(gw, secret, [event("e8", kid)]), 409, "duplicate_event", "/data/0/id")
    assert e["meta"]["event_id"] == "e8"
    # a key without meter:write
    _, weak = new_key(gw, scopes=("read",))
    e = one_error(post(gw, weak, [event("e9", kid)]), 403, "insufficient_scope")
    assert e["meta"]["required_permission"] == "meter:write"
    # nothing of the refused events was recorded
    assert stored_ids(gw) == {"e8"}
    assert usage_rows(gw, f"k:{kid}") == {"api.request": (1.0, 1)}


def test_partial_acceptance_202_with_pointers(gw):
    kid, secret = new_key(gw)
    evs = [event("p0", kid), event("p1", kid, quantity=0), event("p2", kid, quantity=4),
           event("p3", "ghost"), event("p4", kid, "bogus.type"), event("p0", kid)]
    r = post(gw, secret, evs)
    assert r.status == 202, r.body
    assert r.header("X-Error-Code") == "validation_error"  # the rejections' codes differ
    doc = r.json()
    assert doc["meta"]["accepted"] == 2 and doc["meta"]["rejected"] == 4
    got = [(e["status"], e["code"], e["source"]["pointer"]) for e in doc["errors"]]
    assert got == [("422", "invalid_quantity", "/data/1/attributes/quantity"),
                   ("422", "user_not_found", "/data/3/attributes/user_id"),
                   ("422", "invalid_event_type", "/data/4/attributes/event_type"),
                   ("409", "duplicate_event", "/data/5/id")]  # the same id twice in one batch
    assert "data" not in doc  # JSON:API: data and errors never together
    assert usage_rows(gw, f"k:{kid}") == {"api.request": (5.0, 2)}


def test_all_rejected_422_and_only_duplicates_409(gw):
    kid, secret = new_key(gw)
    assert post(gw, secret, [event("d1", kid), event("d2", kid)]).status == 201
    r = post(gw, secret, [event("d1", kid), event("d2", kid)])
    assert r.status == 409 and r.header("X-Error-Code") == "duplicate_event", r.body
    assert [e["source"]["pointer"] for e in r.json()["errors"]] == ["/data/0/id", "/data/1/id"]
    r = post(gw, secret, [event("d1", kid), event("d3", kid, quantity=0)])
    assert r.status == 422 and r.header("X-Error-Code") == "validation_error", r.body  # mixed codes
    assert [e["code"] for e in r.json()["errors"]] == ["duplicate_event", "invalid_quantity"]


def test_documents_refused_whole(gw):
    kid, secret = new_key(gw)
    r = post(gw, secret, None, raw=b'{"data": [}')
    assert r.status == 400 and r.header("X-Error-Code") == "invalid_json", r.body
    assert r.json()["errors"][0]["meta"]["position"] > 0
    r = post(gw, secret, None, raw=b'{"data": []}')
    assert r.status == 422 and r.json()["errors"][0]["source"]["pointer"] == "/data", r.body
    r = post(gw, secret, [event("x", kid)], ctype="text/plain")
    assert r.status == 415, r.body
    r = request(gw.port, "GET", "/v1/meter", headers={"X-API-Key": secret})
    assert r.status == 405 and r.header("Allow") == "POST", r.body
    r = post(gw, "", [event("x", kid)])
    assert r.status == 401, r.body  # the route's auth first
    assert stored_ids(gw) == set()


def test_1000_events_accepted_1001_refused(gw):
    kid, secret = new_key(gw)
    evs = [event(f"big-{i}", kid, quantity=1) for i in range(1000)]
    r = post(gw, secret, evs)
    assert r.status == 201, r.body[:500]
    assert r.json()["meta"]["accepted"] == 1000
    assert usage_rows(gw, f"k:{kid}") == {"api.request": (1000.0, 1000)}
    r = post(gw, secret, [event(f"more-{i}", kid) for i in range(1001)])
    assert r.status == 422, r.body[:500]
    e = r.json()["errors"][0]
    assert e["code"] == "validation_error" and e["source"]["pointer"] == "/data"
    assert "1001" in e["detail"]
    assert len(stored_ids(gw)) == 1000
    # 1000 rejected events: one error each
    r = post(gw, secret, [event(f"bad-{i}", kid, quantity=0) for i in range(1000)])
    assert r.status == 422 and len(r.json()["errors"]) == 1000
    assert r.json()["errors"][999]["source"]["pointer"] == "/data/999/attributes/quantity"


def race(posts):
    """Runs the posts (callables) at once; returns their statuses."""
    out = [None] * len(posts)
    barrier = threading.Barrier(len(posts))

    def run(i):
        barrier.wait()
        out[i] = posts[i]().status

    ts_ = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join()
    return out


def test_duplicate_race_across_workers_one_accepted(gw):
    kid, secret = new_key(gw)
    for round_ in range(3):
        eid = f"race-{round_}"
        statuses = race([lambda: post(gw, secret, [event(eid, kid, quantity=7)]) for _ in range(40)])
        assert sorted(statuses) == [201] + [409] * 39, statuses
    assert usage_rows(gw, f"k:{kid}") == {"api.request": (21.0, 3)}


def test_restart_keeps_dedup(tmp_path, upstream_port):
    g = start(str(tmp_path), upstream_port)
    kid, secret = new_key(g)
    assert post(g, secret, [event("keep-1", kid)]).status == 201
    g.kill()  # kill -9: the batch was committed before its 201
    g = start(str(tmp_path), upstream_port)
    try:
        r = post(g, secret, [event("keep-1", kid), event("keep-2", kid)])
        assert r.status == 202, r.body
        assert [e["code"] for e in r.json()["errors"]] == ["duplicate_event"]
        assert usage_rows(g, f"k:{kid}") == {"api.request": (2.0, 2)}
    finally:
        assert g.stop() == 0


def test_user_id_may_name_a_consumer(gw):
    _, secret = new_key(gw, owner="acme-corp")
    r = post(gw, secret, [event("c1", "acme-corp", "storage.gb", 1.5)])
    assert r.status == 201, r.body
    assert usage_rows(gw, "u:acme-corp") == {"storage.gb": (1.5, 1)}


def test_other_dialect_field_errors(tmp_path, upstream_port):
    g = start(str(tmp_path), upstream_port, dialect="flat-snake")
    try:
        kid, secret = new_key(g)
        r = post(g, secret, [event("f0", kid), event("f1", kid, quantity=0), event("f2", "ghost")])
        assert r.status == 202, r.body
        assert r.header("Content-Type").startswith("application/json")
        body = r.json()
        text = json.dumps(body)
        assert "data.1.attributes.quantity" in text and "data.2.attributes.user_id" in text, body
        assert "invalid_quantity" in text and "user_not_found" in text
        assert "errors" not in body or not isinstance(body.get("errors"), list) or \
            all("source" not in e for e in body["errors"])  # not the JSON:API shape
        r = post(g, secret, [event("f3", kid, quantity=-1)])
        assert r.status == 422 and r.header("X-Error-Code") == "invalid_quantity", r.body
        r = post(g, secret, [event("f0", kid)])
        assert r.status == 409 and r.header("X-Error-Code") == "duplicate_event", r.body
    finally:
        assert g.stop() == 0


def test_configured_event_types_and_window(tmp_path, upstream_port):
    g = start(str(tmp_path), upstream_port,
              metering=", event_types: [sms.sent, voice.*], max_age: 1h, max_future: 0s")
    try:
        kid, secret = new_key(g)
        assert post(g, secret, [event("t1", kid, "sms.sent"), event("t2", kid, "voice.minutes")]).status == 201
        one_error(post(g, secret, [event("t3", kid, "api.request")]), 422, "invalid_event_type")
        one_error(post(g, secret, [event("t4", kid, "sms.sent", timestamp=ts(-7200))]), 422, "invalid_timestamp")
        one_error(post(g, secret, [event("t5", kid, "sms.sent", timestamp=ts(30))]), 422, "invalid_timestamp")
    finally:
        assert g.stop() == 0


def test_under_a_prefix_route_only_the_path_is_answered(tmp_path, upstream_port):
    g = start(str(tmp_path), upstream_port, routes="\n  - { path: /v1/, upstream: demo, auth: api_key }\n")
    try:
        kid, secret = new_key(g)
        assert post(g, secret, [event("pr1", kid)]).status == 201
        r = request(g.port, "GET", "/v1/anything", headers={"X-API-Key": secret})
        assert r.status == 200 and b"usage_events" not in r.body, r.body  # the upstream's answer
        r = request(g.port, "POST", "/v1/meter/x", body=b"{}",
                    headers={"X-API-Key": secret, "Content-Type": "application/json"})
        assert r.header("X-Error-Code") is None or r.status < 400, r.body  # not the metering API
        assert stored_ids(g) == {"pr1"}
    finally:
        assert g.stop() == 0


# ---------------------------------------------------------------- Redis

def test_two_gateways_on_one_redis_accept_an_id_once(tmp_path, upstream_port):
    test_redis = pytest.importorskip("test_redis")
    if not test_redis.shutil.which("redis-server") and not test_redis.shutil.which("/usr/bin/redis-server"):
        pytest.skip("redis-server is not installed")
    redis = test_redis.Redis(str(tmp_path))
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    shared = f"{tmp_path}/keys.db"  # one key store, two processes
    a = start(str(a_dir), upstream_port, redis_port=redis.port, store=shared)
    b = start(str(b_dir), upstream_port, redis_port=redis.port, store=shared)
    try:
        kid, secret = new_key(a)
        t0 = ts(-5)  # one hour's hash for every event
        wait = time.time() + 10
        while post(b, secret, [event("probe", kid, timestamp=t0)]).status == 401 and time.time() < wait:
            time.sleep(0.05)  # b reads the new key on its next refresh
        for round_ in range(3):
            eid = f"node-race-{round_}"
            posts = [(lambda g=g: post(g, secret, [event(eid, kid, quantity=2, timestamp=t0)]))
                     for g in (a, b) * 20]
            statuses = race(posts)
            assert sorted(statuses) == [201] + [409] * 39, statuses
        hour = int(datetime.datetime.strptime(t0, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()) // 3600
        key = f"errgate:u:{{k:{kid}}}:{hour}"
        got = redis.command("HGETALL", key)
        fields = dict(zip(got[0::2], got[1::2]))
        # probe (1) and three ids (2 each), each once, whichever gateway took it
        assert float(fields["api.request||0"]) == 7.0 and fields["#api.request||0"] == "4", fields
        assert redis.command("EXISTS", "errgate:me:node-race-0") == 1
        assert 0 < redis.command("TTL", "errgate:me:node-race-0") <= 7 * 86400 + 180
    finally:
        assert a.stop() == 0
        assert b.stop() == 0
        redis.kill()


def test_redis_down_is_503_and_records_nothing(tmp_path, upstream_port):
    """Without Redis an id cannot be claimed: 503, whatever redis.on_failure
    says for rate limits, and nothing of the batch is counted."""
    test_redis = pytest.importorskip("test_redis")
    redis = test_redis.Redis(str(tmp_path), durable=True)  # its ids outlive the kill
    g = start(str(tmp_path), upstream_port, redis_port=redis.port)
    try:
        kid, secret = new_key(g)
        t0 = ts(-5)
        assert post(g, secret, [event("up-1", kid, timestamp=t0)]).status == 201
        redis.kill()
        r = post(g, secret, [event("down-1", kid, timestamp=t0)])
        assert r.status == 503 and r.header("X-Error-Code") == "service_unavailable", r.body
        redis.start()
        # the same id is free once Redis is back: the 503 recorded nothing
        deadline = time.time() + 15
        while True:
            r = post(g, secret, [event("down-1", kid, timestamp=t0)])
            if r.status != 503 or time.time() > deadline:
                break
            time.sleep(0.1)
        assert r.status == 201, r.body
        # each worker has its own Redis connection, back at its own pace
        deadline = time.time() + 15
        while True:
            r = post(g, secret, [event("up-1", kid, timestamp=t0)])
            if r.status != 503 or time.time() > deadline:
                break
            time.sleep(0.1)
        assert r.status == 409, r.body  # kept by Redis across its restart
    finally:
        assert g.stop() == 0
        redis.kill()


def test_idempotency_key_replays_the_first_answer(tmp_path, upstream_port):
    """On a route with idempotency:, a retried call with the same
    Idempotency-Key gets the first call's 201 again (not 409s for its own
    events); the stage runs after idempotency, which stores its answer."""
    g = start(str(tmp_path), upstream_port, routes="""
  - { path: /v1/meter, upstream: demo, auth: api_key, idempotency: { methods: [POST] } }
""")
    try:
        kid, secret = new_key(g)
        body = json.dumps({"data": [event("idem-1", kid), event("idem-2", kid)]}).encode()
        h = {"X-API-Key": secret, "Content-Type": JSONAPI, "Idempotency-Key": "batch-0001"}
        first = request(g.port, "POST", "/v1/meter", body=body, headers=h)
        assert first.status == 201, first.body
        # SQLite writes the record just after the answer (docs/idempotency.md):
        # a retry in that moment is 409 idempotency_key_in_use; retried until
        # the replay
        got = []
        wait_for(lambda: got.append(request(g.port, "POST", "/v1/meter", body=body, headers=h)) or
                 got[-1].header("X-Error-Code") != "idempotency_key_in_use", 10, what="the replay of batch-0001")
        again = got[-1]
        assert again.status == 201 and again.json()["data"] == first.json()["data"], again.body
        h["Idempotency-Key"] = "batch-0002"
        other = request(g.port, "POST", "/v1/meter", body=body, headers=h)
        assert other.status == 409, other.body  # a new key: the ids are duplicates
        assert usage_rows(g, f"k:{kid}") == {"api.request": (2.0, 2)}
    finally:
        assert g.stop() == 0


def test_posted_events_show_in_the_usage_api(tmp_path, upstream_port):
    """The metering API's events are the caller's usage: GET usage_path with
    the key the events named reports them (route '', status class 0)."""
    g = start(str(tmp_path), upstream_port, metering=", usage_path: /v1/usage", routes="""
  - { path: /v1/meter, upstream: demo, auth: api_key }
  - { path: /v1/usage, upstream: demo, auth: api_key }
""")
    try:
        kid, secret = new_key(g)
        evs = [event(f"u{i}", kid, "storage.gb", 2.5) for i in range(4)] + [event("c1", kid, "compute.minutes", 7)]
        assert post(g, secret, evs).status == 201
        r = request(g.port, "GET", "/v1/usage", headers={"X-API-Key": secret})
        assert r.status == 200, r.body
        got = {u["event_type"]: (u["quantity"], u["events"]) for u in r.json()["usage"]}
        assert got == {"storage.gb": (10.0, 4), "compute.minutes": (7.0, 1)}, r.body
    finally:
        assert g.stop() == 0


def test_one_batch_many_rows(gw):
    """A batch spread over users, event types and hours adds to each usage
    row its own sum and count (the store sums a batch per row first)."""
    kid, secret = new_key(gw)
    other, _ = new_key(gw, owner="globex")
    now = int(time.time())
    hour = now // 3600 * 3600
    t_this = datetime.datetime.fromtimestamp(max(hour, now - 3000), datetime.timezone.utc)
    t_prev = datetime.datetime.fromtimestamp(hour - 1800, datetime.timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    evs = []
    for i in range(300):
        who = [kid, "globex", other][i % 3]
        when = (t_this if i % 2 else t_prev).strftime(fmt)
        evs.append(event(f"m{i}", who, ["api.request", "bandwidth.gb"][i % 5 == 0], 0.25 * (1 + i % 4),
                         timestamp=when))
    assert post(gw, secret, evs).status == 201
    want = {}
    for i, e in enumerate(evs):
        a = e["attributes"]
        subj = "u:globex" if a["user_id"] == "globex" else f"k:{a['user_id']}"
        h = (hour if i % 2 else hour - 3600) // 3600
        q, n = want.get((subj, a["event_type"], h), (0.0, 0))
        want[(subj, a["event_type"], h)] = (q + a["quantity"], n + 1)
    db = sqlite3.connect(f"{gw.tmp}/keys.db", timeout=10)
    try:
        got = {(r[0], r[1], r[2]): (r[3], r[4]) for r in db.execute(
            "SELECT subject, event_type, hour, quantity, events FROM usage WHERE route = '' AND status_class = 0")}
    finally:
        db.close()
    assert got == want


def test_ids_come_back_as_sent(gw):
    kid, secret = new_key(gw)
    ids = ['quote"d', "back\\slash", "ünï-çødé-€", "x" * 255, "tab-free/with:colons"]
    r = post(gw, secret, [event(i, kid) for i in ids])
    assert r.status == 201, r.body
    assert [d["id"] for d in r.json()["data"]] == ids
    assert stored_ids(gw) == set(ids)


def test_expired_ids_are_purged_recent_ones_stay(gw):
    """meter_events rows are deleted max_age + max_future + 2 min (7 days +
    3 min by default) after their receipt: rows written into the file with
    such receipts go on the next batch; a row received a day less long ago
    stays (whatever its timestamp), and so do this batch's events, whose
    resend is still 409."""
    kid, secret = new_key(gw)
    now = int(time.time())
    keep = 7 * 86400 + 60 + 120
    rows = {  # id: (ts, received)
        "gone-1": (now - keep - 3600, now - keep - 3600),
        "gone-2": (now - 30 * 86400, now - keep - 5),
        "kept-old-ts": (now - 8 * 86400, now - 86400),
        "kept-6-days": (now - 6 * 86400, now - 6 * 86400),
    }
    db = sqlite3.connect(f"{gw.tmp}/keys.db", timeout=10)
    try:
        with db:
            for eid, (t, rcv) in rows.items():
                db.execute("INSERT INTO meter_events (id, subject, event_type, quantity, ts, received)"
                           " VALUES (?, ?, 'api.request', 1, ?, ?)", (eid, f"k:{kid}", t, rcv))
    finally:
        db.close()
    assert stored_ids(gw) == set(rows)
    r = post(gw, secret, [event("fresh-1", kid), event("fresh-2", kid)])
    assert r.status == 201, r.body
    want = {"kept-old-ts", "kept-6-days", "fresh-1", "fresh-2"}
    deadline = time.monotonic() + 10
    while stored_ids(gw) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_ids(gw) == want
    r = post(gw, secret, [event("fresh-1", kid)])
    one_error(r, 409, "duplicate_event", "/data/0/id")
