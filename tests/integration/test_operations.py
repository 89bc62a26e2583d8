"""Operating the gateway (issue 27): a second `errgate serve` on an address
that is taken refuses to start (exit 4) instead of sharing the port through
SO_REUSEPORT, while a reload and a restart on the same port still work."""
import signal
import socket
import subprocess

import pytest

from conftest import BIN, Gateway, base_config, free_port, request, wait_for

LISTEN_EXIT = 4  # docs/operations.md: 4 cannot listen


def serve_exit(tmp_path, config_text, name="second.yaml"):
    """Runs errgate serve on a configuration that must not start: its exit
    code and stderr. One that does start is stopped and fails the test."""
    path = tmp_path / name
    path.write_text(config_text)
    p = subprocess.Popen([BIN, "serve", "--config", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        pytest.fail(f"the second gateway started and ran; stderr:\n{err[-2000:]}")
    return p.returncode, err


def test_a_second_gateway_on_the_same_address_refuses_to_start(gateway, tmp_path):
    """Before: the second process bound the port too (SO_REUSEPORT) and the
    kernel gave it half of the new connections."""
    other_admin = free_port()
    code, err = serve_exit(tmp_path, base_config(gateway.port, other_admin, gateway.upstream_port))
    assert code == LISTEN_EXIT, err
    assert (f"errgate: cannot listen on 127.0.0.1:{gateway.port}: another process holds it "
            "(Address already in use)") in err
    assert '"event":"started"' not in err
    # the admin port of the refused one was never bound
    s = socket.socket()
    try:
        assert s.connect_ex(("127.0.0.1", other_admin)) != 0
    finally:
        s.close()
    # the first gateway has every connection
    for _ in range(20):
        r = request(gateway.port, "GET", "/nowhere")
        assert r.status == 404 and r.header("X-Request-ID")


def test_a_taken_admin_address_refuses_too_before_any_worker_binds(gateway, tmp_path):
    port = free_port()
    code, err = serve_exit(tmp_path, base_config(port, gateway.admin_port, gateway.upstream_port))
    assert code == LISTEN_EXIT, err
    assert (f"errgate: admin: cannot listen on 127.0.0.1:{gateway.admin_port}: another process holds it"
            in err)
    # probed before the workers bound: their port was never listening
    s = socket.socket()
    try:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        s.close()
    assert request(gateway.admin_port, "GET", "/health").status == 200


def test_a_port_held_by_another_program_is_refused(tmp_path, upstream_port):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    port = holder.getsockname()[1]
    try:
        code, err = serve_exit(tmp_path, base_config(port, free_port(), upstream_port))
        assert code == LISTEN_EXIT, err
        assert f"cannot listen on 127.0.0.1:{port}: another process holds it" in err
    finally:
        holder.close()


def test_reload_keeps_its_own_listeners_and_a_restart_takes_the_port_back(tmp_path, upstream_port):
    """The probe must not refuse the instance itself: a SIGHUP reload binds
    nothing new, and a restart on the same port right after a stop starts
    even with the old connections still in TIME_WAIT on it."""
    port, admin = free_port(), free_port()
    gw = Gateway(str(tmp_path), base_config(port, admin, upstream_port), port, admin)
    try:
        for _ in range(5):  # the gateway closes these: TIME_WAIT on its side of the port
            r = request(port, "GET", "/v1/hello", headers={"Connection": "close"})
            assert r.status == 200
        gw.signal(signal.SIGHUP)
        gw.wait_event("reloaded")
        assert gw.proc.poll() is None
        assert request(port, "GET", "/v1/hello").status == 200
    finally:
        assert gw.stop() == 0
    again = tmp_path / "again"
    again.mkdir()
    gw2 = Gateway(str(again), base_config(port, admin, upstream_port), port, admin)
    try:
        wait_for(lambda: request(port, "GET", "/v1/hello").status == 200, what="the restarted gateway")
    finally:
        assert gw2.stop() == 0
