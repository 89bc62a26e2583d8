"""errgate as a system service (issue 27 item 14): the sd_notify protocol of
`errgate serve` (READY=1 once it serves, RELOADING=1 then READY=1 around a
SIGHUP reload, good or bad, STOPPING=1 when it drains), the unit file in
packaging/systemd/ as `systemd-analyze verify` reads it, and the logrotate
file in packaging/logrotate/ rotating a running gateway's log with SIGUSR1.

The service manager's side of the protocol is played by a unix datagram
socket of the test's (NOTIFY_SOCKET, abstract so its name has no path length
limit), as systemd listens for it."""
import os
import pwd
import grp
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, Gateway, base_config, free_port, request, wait_for

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
UNIT = os.path.join(ROOT, "packaging", "systemd", "errgate.service.in")
LOGROTATE = os.path.join(ROOT, "packaging", "logrotate", "errgate")


class Notify:
    """The service manager's end of NOTIFY_SOCKET: each datagram is one
    notification, read as its KEY=VALUE lines."""

    def __init__(self):
        self.name = f"errgate-test-{os.getpid()}-{secrets.token_hex(6)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.env = dict(os.environ, NOTIFY_SOCKET="@" + self.name)

    def next(self, timeout=30.0):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no notification within {timeout:g}s") from None
        return dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)

    def pending(self):
        """Notifications already sent and not read (none expected)."""
        self.sock.setblocking(False)
        try:
            return [self.sock.recv(65536)]
        except BlockingIOError:
            return []
        finally:
            self.sock.setblocking(True)

    def close(self):
        self.sock.close()


def monotonic_usec():
    # CLOCK_MONOTONIC, as systemd and the daemon read it
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_serve_tells_systemd_ready_reloading_and_stopping(tmp_path, upstream_port):
    port, admin = free_port(), free_port()
    notify = Notify()
    gw = None
    try:
        gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port), port, admin, env=notify.env)
        ready = notify.next()
        assert ready.get("READY") == "1", ready
        assert f"listening on 127.0.0.1:{port}" in ready.get("STATUS", ""), ready
        # READY=1 means serving: units ordered after it may send requests at once
        assert request(port, "GET", "/v1/hello").status == 200
        assert notify.pending() == []

        # a good reload: RELOADING=1 with the monotonic clock, then READY=1
        gw.rewrite(base_config(port, admin, upstream_port, extra_routes="  - path: /v2/\n    upstream: demo\n"))
        before = monotonic_usec()
        gw.signal(signal.SIGHUP)
        reloading = notify.next()
        after = monotonic_usec()
        assert reloading.get("RELOADING") == "1", reloading
        assert before <= int(reloading["MONOTONIC_USEC"]) <= after, (before, reloading, after)
        again = notify.next()
        assert again.get("READY") == "1" and "reloaded" in again.get("STATUS", ""), again
        gw.wait_event("reloaded")
        assert request(port, "GET", "/v2/x").status == 200

        # a bad reload: systemd still gets READY=1 (the old configuration serves)
        gw.rewrite("listen: [broken\n")
        gw.signal(signal.SIGHUP)
        assert notify.next().get("RELOADING") == "1"
        failed = notify.next()
        assert failed.get("READY") == "1" and "reload failed" in failed.get("STATUS", ""), failed
        gw.wait_event("reload_failed")
        assert request(port, "GET", "/v2/x").status == 200

        # SIGTERM: STOPPING=1 as the drain starts, then a clean exit
        gw.signal(signal.SIGTERM)
        stopping = notify.next()
        assert stopping.get("STOPPING") == "1", stopping
        # (a second SIGTERM would not be handled: the first one closes the handlers)
        assert gw.proc.wait(timeout=60) == 0
        assert notify.pending() == []
    finally:
        if gw:
            gw.kill()
        notify.close()


def test_serve_without_notify_socket_runs_as_before(gateway):
    """NOTIFY_SOCKET unset (a terminal, a container): nothing is sent and
    nothing fails (the `gateway` fixture's environment has none)."""
    assert "NOTIFY_SOCKET" not in os.environ
    assert request(gateway.port, "GET", "/v1/hello").status == 200


def _unit_for(bindir):
    with open(UNIT) as f:
        return f.read().replace("@EG_BINDIR@", bindir)


def test_the_unit_file_is_what_systemd_accepts(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not found (Debian package systemd)")
    unit = tmp_path / "errgate.service"
    unit.write_text(_unit_for(os.path.dirname(os.path.abspath(BIN))))
    # --man=no: the man pages are checked against an installed tree in
    # test_install.py; verify exits 0 on a misspelled setting, so its
    # output must be empty as well
    p = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    # systemd's own rating of the sandbox (0 safest .. 10): 1.5 when written;
    # a setting dropped by mistake shows here
    p = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True,
                       cwd=tmp_path)
    m = re.search(r"Overall exposure level for errgate.service: ([0-9.]+)", p.stdout)
    assert m and float(m.group(1)) <= 2.0, p.stdout[-2000:] + p.stderr
    text = unit.read_text()
    for setting in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                    "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "StateDirectory=errgate"]:
        assert re.search(rf"^{re.escape(setting)}$", text, re.M), setting


def test_a_broken_unit_file_is_refused(tmp_path):
    """The check above can fail: a misspelled type is reported."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not found (Debian package systemd)")
    unit = tmp_path / "errgate.service"
    unit.write_text(_unit_for(os.path.dirname(os.path.abspath(BIN))).replace("Type=notify", "Type=notfy"))
    p = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert "notfy" in p.stdout + p.stderr


def test_logrotate_rotates_a_running_gateways_log(tmp_path, upstream_port):
    """packaging/logrotate/errgate as logrotate runs it, with the paths, the
    user and the signal's target made this test's: the file is renamed, the
    gateway told with SIGUSR1, and its next line goes to a new file."""
    logrotate = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None)
    if not logrotate:
        pytest.skip("logrotate not found (Debian package logrotate, scripts/deps.sh --test)")
    logdir = tmp_path / "log"
    logdir.mkdir()
    access = logdir / "access.log"
    port, admin = free_port(), free_port()
    cfg = base_config(port, admin, upstream_port).replace(
        "log: { access: stderr, redact_query: [api_key] }", f"log: {{ access: {access}, errors: stderr }}")
    gw = Gateway(str(tmp_path), cfg, port, admin)
    try:
        request(port, "GET", "/v1/hello", headers={"X-Request-ID": "before-rotation"})
        wait_for(lambda: "before-rotation" in access.read_text(), what="the first access line")
        with open(LOGROTATE) as f:
            conf = f.read()
        assert "/var/log/errgate/*.log {" in conf and "systemctl kill --signal=USR1 --kill-whom=main errgate.service" in conf
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        conf = (conf.replace("/var/log/errgate/", f"{logdir}/")
                .replace("errgate errgate", f"{user} {group}")
                .replace("systemctl kill --signal=USR1 --kill-whom=main errgate.service", f"kill -USR1 {gw.proc.pid}"))
        (tmp_path / "logrotate.conf").write_text(conf)
        p = subprocess.run([logrotate, "--force", "--state", str(tmp_path / "state"), str(tmp_path / "logrotate.conf")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        gw.wait_event("logs_reopened")
        request(port, "GET", "/v1/hello", headers={"X-Request-ID": "after-rotation"})
        wait_for(lambda: "after-rotation" in access.read_text(), what="the line in the new file")
        rotated = (logdir / "access.log.1").read_text()  # delaycompress: the newest stays plain
        assert "before-rotation" in rotated and "after-rotation" not in rotated
        assert "before-rotation" not in access.read_text()
    finally:
        assert gw.stop() == 0
