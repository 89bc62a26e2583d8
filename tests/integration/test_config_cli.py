"""The configuration at the command line (issue 27 item 13): check-config
takes --config FILE like serve and keys (and FILE alone, as before); a tab
in the indentation is named as such; `make run` takes its ports from
PORT, ADMIN_PORT and UPSTREAM_PORT (the configuration it would run is made
by `make run-config`, checked here without building or starting anything)."""
import os
import shutil
import subprocess

import pytest

from conftest import BIN

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOOD = """listen: 127.0.0.1:8123
upstreams:
  demo: { servers: ["127.0.0.1:9123"] }
routes:
  - path: /
    upstream: demo
"""


def check_config(*args):
    return subprocess.run([BIN, "check-config", *args], capture_output=True, text=True, timeout=60)


def test_check_config_takes_config_like_the_other_commands(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(GOOD)
    for args in (["--config", str(path)], [f"--config={path}"], ["-c", str(path)], [str(path)]):
        out = check_config(*args)
        assert out.returncode == 0, (args, out.stderr)
        assert out.stdout.startswith(f"{path}: ok: listen 127.0.0.1:8123, "), (args, out.stdout)
    for args in ([], ["--config"], ["--config", str(path), str(path)], [str(path), str(path)], ["--bogus", str(path)]):
        out = check_config(*args)
        assert out.returncode == 2, (args, out.returncode, out.stderr)
        assert out.stderr.startswith("errgate: check-config: "), (args, out.stderr)
    out = check_config("--help")
    assert out.returncode == 0 and "check-config --config FILE" in out.stdout


def test_a_tab_in_the_indentation_is_named_plainly(tmp_path):
    path = tmp_path / "tabs.yaml"
    path.write_text(GOOD.replace("  - path: /", "\t- path: /"))
    out = check_config("--config", str(path))
    assert out.returncode == 3
    assert out.stderr == f"errgate: {path}:5:1: tabs are not allowed for indentation (use spaces)\n"


def test_make_run_ports_are_overridable(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make not found")
    build = tmp_path / "build"
    out = subprocess.run(["make", "-s", "-C", ROOT, "run-config", f"BUILD={build}", "PORT=8090", "TLS_PORT=8453",
                          "ADMIN_PORT=8091", "UPSTREAM_PORT=9010"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cfg = (build / "demo-run.yaml").read_text()
    assert "  - 127.0.0.1:8090\n" in cfg and "address: 127.0.0.1:8453 " in cfg
    assert "admin_listen: 127.0.0.1:8091 " in cfg
    # the HTTPS listener's certificate (made by the target) from the copy too
    assert f"cert: {ROOT}/examples/demo-tls/cert.pem" in cfg
    assert os.path.exists(f"{ROOT}/examples/demo-tls/key.pem")
    assert "servers: [127.0.0.1:9010]" in cfg and "9000" not in cfg.replace("on :9000", "")
    # the key store stays the demo's (errgate keys --config examples/demo.yaml reaches it)
    assert f"path: {ROOT}/examples/demo.db" in cfg
    check = check_config("--config", str(build / "demo-run.yaml"))
    assert check.returncode == 0 and "listen 127.0.0.1:8090" in check.stdout, (check.stdout, check.stderr)
    # the default ports run examples/demo.yaml itself
    dry = subprocess.run(["make", "-n", "-C", ROOT, "run", f"BUILD={build}"], capture_output=True, text=True,
                         timeout=60)
    assert "serve --config examples/demo.yaml" in dry.stdout, dry.stdout
    dry = subprocess.run(["make", "-n", "-C", ROOT, "run", f"BUILD={build}", "PORT=8090"], capture_output=True,
                         text=True, timeout=60)
    assert f"serve --config {build}/demo-run.yaml" in dry.stdout, dry.stdout


def test_environment_variables_in_the_configuration(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text("""listen: "${EG_T_HOST:-127.0.0.1}:${EG_T_PORT}"
upstreams:
  demo: { servers: ["${EG_T_UP}"], timeout: "${EG_T_TIMEOUT:-5s}" }
routes:
  - { path: /, upstream: demo }
""")
    env = dict(os.environ, EG_T_PORT="8124", EG_T_UP="127.0.0.1:9124")
    env.pop("EG_T_HOST", None)
    out = subprocess.run([BIN, "check-config", str(path)], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{path}: ok: listen 127.0.0.1:8124, "), out.stdout
    del env["EG_T_UP"]
    out = subprocess.run([BIN, "check-config", str(path)], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode != 0
    assert f"{path}:3:" in out.stderr and "environment variable EG_T_UP is not set" in out.stderr, out.stderr
