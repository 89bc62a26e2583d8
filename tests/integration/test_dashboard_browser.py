"""The live dashboard in a real browser (docs/dashboard.md): headless
Chromium, driven by Selenium, opens GET / on the admin listener (behind the
admin token, given as the password of the URL's credentials) while traffic
runs, and the numbers the page shows are checked against what the test sent:
per route requests and statuses in the window table, the top error codes,
the firing alert, the upstream marked down, the rate-limit refusals by
policy, and charts that were drawn. A screenshot is saved
(EG_DASHBOARD_SCREENSHOT names where: docs/dashboard.png is made so).

Expected values are written here from the traffic the test sends. Nothing
sleeps: every check waits for the page (which polls every 2 s) to show the
state, with a deadline.

Needs Debian's chromium, chromium-driver and python3-selenium, as
test_cors_browser.py (whose driver set-up this reuses); skipped without them,
failed under EG_REQUIRE_ALL=1."""
import os
import shutil
import tempfile
import threading

import pytest

from conftest import Gateway, QuietHandler, ThreadedUpstream, dead_port, free_port, request, wait_for
from test_cors_browser import CHROMEDRIVER, CHROMIUM, missing_prerequisite

TOKEN = "dash-admin-token-0123456789abcdef"


class App(QuietHandler):
    def do_GET(self):
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    why = missing_prerequisite()
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="eg-chromium-", dir=str(tmp_path_factory.getbasetemp()))
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", f"--user-data-dir={profile}", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-proxy-server", "--window-size=1440,1000", "--hide-scrollbars"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_script_timeout(30)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def stack(tmp_path):
    app = ThreadedUpstream(App)
    port, admin = free_port(), free_port()
    with open(tmp_path / "admin.token", "w") as f:
        f.write(TOKEN + "\n")
    cfg = f"""
listen: 127.0.0.1:{port}
admin_listen: 127.0.0.1:{admin}
workers: 2
log: {{ access: off }}
store: {{ path: {tmp_path}/keys.db }}
auth: {{ admin_token_file: {tmp_path}/admin.token }}
upstreams:
  app: {{ servers: ["127.0.0.1:{app.port}"], timeout: 5s }}
  dead: {{ servers: ["127.0.0.1:{dead_port()}"], connect_timeout: 1s, max_fails: 3, fail_timeout: 1h }}
routes:
  - {{ path: /v1/, upstream: app }}
  - {{ path: /bg/, upstream: app }}
  - {{ path: /dead/, upstream: dead }}
  - {{ path: /limited/, upstream: app, rate_limit: {{ limit: 2, window: 1h, by: ip }} }}
alerts:
  windows: [1m, 5m]
  rules:
    - {{ name: server_errors, min_requests: 5, for: 0s }}
"""
    gw = Gateway(str(tmp_path), cfg, port, admin)
    yield gw
    code = gw.stop()
    app.close()
    assert code == 0, gw.log_text()[-4000:]


def cell(drv, route, key):
    return drv.execute_script(
        "const r = document.querySelector(`#route-table tr[data-route=\"${arguments[0]}\"] td[data-k=\"${arguments[1]}\"]`);"
        "return r ? r.textContent : null;", route, key)


def row(drv, route):
    return {k: cell(drv, route, k) for k in ("requests", "2xx", "4xx", "5xx", "error_rate", "server_error_rate")}


def test_dashboard_shows_what_was_sent(stack, driver):
    gw = stack
    # the page is the admin token's: nothing without it
    r = request(gw.admin_port, path="/")
    assert r.status == 401 and r.header("www-authenticate").startswith("Basic")
    r = request(gw.admin_port, path="/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200 and b"/ui/app.js" in r.body
    assert "default-src 'none'" in r.header("content-security-policy")
    assert request(gw.admin_port, path="/ui/app.js",
                   headers={"Authorization": f"Bearer {TOKEN}"}).header("content-type").startswith("text/javascript")

    for _ in range(40):
        assert request(gw.port, path="/v1/ok").status == 200
    for _ in range(10):
        assert request(gw.port, path="/dead/x").status in (502, 503)
    for _ in range(5):
        assert request(gw.port, path="/nowhere").status == 404
    statuses = [request(gw.port, path="/limited/x").status for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]

    # background traffic while the page is open
    stop, sent = threading.Event(), [0]

    def background():
        while not stop.is_set() and sent[0] < 400:
            request(gw.port, path="/bg/x")
            sent[0] += 1

    bg = threading.Thread(target=background, daemon=True)
    bg.start()
    try:
        driver.get(f"http://admin:{TOKEN}@127.0.0.1:{gw.admin_port}/")
        wait_for(lambda: cell(driver, "/v1/", "requests") == "40", what="the /v1/ row to show 40 requests")
        # the page keeps updating while traffic runs
        first = int(cell(driver, "/bg/", "requests").replace(",", ""))
        wait_for(lambda: int(cell(driver, "/bg/", "requests").replace(",", "")) > first or sent[0] >= 400,
                 what="the /bg/ row to grow without a reload")
    finally:
        stop.set()
        bg.join()
    total_bg = sent[0]
    wait_for(lambda: cell(driver, "/bg/", "requests") == f"{total_bg:,}", what=f"the /bg/ row to reach {total_bg}")

    assert row(driver, "/v1/") == {"requests": "40", "2xx": "40", "4xx": "0", "5xx": "0", "error_rate": "0%",
                                   "server_error_rate": "0%"}
    assert row(driver, "/dead/") == {"requests": "10", "2xx": "0", "4xx": "0", "5xx": "10",
                                     "error_rate": "100.0%", "server_error_rate": "100.0%"}
    assert row(driver, "/limited/") == {"requests": "5", "2xx": "2", "4xx": "3", "5xx": "0",
                                        "error_rate": "60.0%", "server_error_rate": "0%"}
    assert row(driver, "(none)") == {"requests": "5", "2xx": "0", "4xx": "5", "5xx": "0",
                                     "error_rate": "100.0%", "server_error_rate": "0%"}
    assert cell(driver, "*", "requests") == f"{60 + total_bg:,}"

    codes = wait_for(lambda: driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#codes li[data-code]')]"
        ".map(li => [li.dataset.code, li.querySelector('.n').textContent]))"), what="the top error codes")
    assert codes == {"bad_gateway": "10", "not_found": "5", "rate_limit_exceeded": "3"}

    alerts = wait_for(lambda: driver.execute_script(
        "return [...document.querySelectorAll('#alerts li[data-alert]')]"
        ".map(li => [li.dataset.alert, li.dataset.route, li.dataset.state])"), what="the firing alert")
    assert alerts == [["server_errors", "/dead/", "firing"]]
    assert driver.find_element("id", "k-firing").text == "1"

    ups = driver.execute_script(
        "return [...document.querySelectorAll('#upstreams li[data-upstream]')]"
        ".map(li => [li.dataset.upstream, li.dataset.up])")
    assert sorted(ups) == [["app", "1"], ["dead", "0"]]

    refusals = driver.execute_script(
        "return [...document.querySelectorAll('#refusals tr[data-route]')]"
        ".map(tr => [tr.dataset.route, tr.dataset.kind, tr.querySelector('[data-k=refused]').textContent])")
    assert refusals == [["/limited/", "rate_limit", "3"]]

    # the charts were drawn: lines with points, no "no data yet"
    drawn = driver.execute_script(
        "return ['c-rate', 'c-err', 'c-lat'].map(id => { const s = document.getElementById(id);"
        " return [s.querySelectorAll('path.line, circle').length, !!s.querySelector('.empty')]; })")
    assert all(n > 0 and not empty for n, empty in drawn), drawn
    # one route's view: its own numbers in the tiles
    driver.execute_script("document.querySelector('#routes button[data-scope=\"/dead/\"]').click()")
    wait_for(lambda: driver.find_element("id", "k-5xx").text == "100.0%", what="the /dead/ tiles")
    driver.execute_script("document.querySelector('#routes button[data-scope=\"*\"]').click()")
    wait_for(lambda: driver.find_element("id", "k-firing").text == "1", what="the all-routes view again")

    shot = os.environ.get("EG_DASHBOARD_SCREENSHOT") or str(gw.log) + ".png"
    driver.save_screenshot(shot)
    assert os.path.getsize(shot) > 10000
