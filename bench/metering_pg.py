#!/usr/bin/python3
"""bench/metering_pg.py - how fast the PostgreSQL sink copies (docs/metering.md,
"Exporting to PostgreSQL").

A gateway (the build given, Release for figures) with metering.sink to a
PostgreSQL server started for the run (tests/integration/pgserver.py), fed
by the metering API in 1000-event batches (one row per event, the sink's
worst case: served requests arrive as per-commit sums):
1. steady state: BATCHES batches posted one after another; how long after
   the last answer every row is in PostgreSQL;
2. backlog: PostgreSQL stopped, BATCHES more batches posted, PostgreSQL
   started; how long after it answers again every row is there.
A benchmark, not a test: nothing asserts.

Usage: /usr/bin/python3 bench/metering_pg.py [BUILD_DIR]   (env: BATCHES=100)"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../build-rel"))
os.environ["ERRGATE_BIN"] = os.path.join(BUILD, "errgate")
sys.path.insert(0, os.path.join(HERE, "../tests/integration"))
import conftest  # noqa: E402
import pgserver  # noqa: E402
import test_metering_pg as t  # noqa: E402

BATCHES = int(os.environ.get("BATCHES", "100"))


def post_all(gw, kid, secret, tag):
    for b in range(BATCHES):
        evs = [t.meter_event(f"{tag}{b}-{i}", kid, "compute.minutes", 1) for i in range(1000)]
        r = conftest.request(gw.port, "POST", "/v1/meter", body=json.dumps({"data": evs}).encode(),
                             headers={"X-API-Key": secret, "Content-Type": "application/vnd.api+json"},
                             timeout=60)
        assert r.status == 201, r.body[:300]


def rows(pg):
    try:
        return int(pg.psql("SELECT count(*) FROM usage_events")[0][0])
    except RuntimeError:  # the sink has not created the table yet
        return 0


def main():
    if pgserver.missing():
        sys.exit(f"bench: {pgserver.missing()}")
    tmp = tempfile.mkdtemp(prefix="eg-bench-pg-")
    up = conftest.free_port()
    upstream = subprocess.Popen([conftest.BIN, "demo-upstream", "--listen", f"127.0.0.1:{up}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conftest.wait_port(up)
    pg = pgserver.Postgres(conftest.free_port())
    gw = t.start(tmp, up, pg.port)
    try:
        kid, secret = t.new_key(gw, scopes=["meter:write"])
        gw.wait_log(lambda l: l.get("event") == "pg_sink_connected", "the sink connected")
        n = BATCHES * 1000
        t0 = time.monotonic()
        post_all(gw, kid, secret, "s")
        t1 = time.monotonic()
        conftest.wait_for(lambda: rows(pg) == n, timeout=300, interval=0.02)
        t2 = time.monotonic()
        print(f"steady: {n} events posted in {t1 - t0:.2f}s ({n / (t1 - t0):.0f}/s, one client); "
              f"all in PostgreSQL {t2 - t1:.2f}s after the last answer")
        pg.stop()
        post_all(gw, kid, secret, "b")
        pg.start()
        t3 = time.monotonic()
        conftest.wait_for(lambda: rows(pg) == 2 * n, timeout=300, interval=0.02)
        t4 = time.monotonic()
        print(f"backlog: {n} rows queued during an outage all in PostgreSQL {t4 - t3:.2f}s after it answered "
              f"again ({n / (t4 - t3):.0f} rows/s)")
    finally:
        gw.stop()
        pg.close()
        upstream.send_signal(signal.SIGTERM)
        upstream.wait()


if __name__ == "__main__":
    main()
