#!/usr/bin/python3
"""bench/upgrade.py - tunneled WebSocket connections through errgate and nginx.

One upstream (Python, here) answers the WebSocket handshake and then, like
a server pushing data, writes TOTAL bytes as fast as the socket takes them
(raw bytes after the 101: a tunnel does not look at frames, neither proxy
parses them). CONNS clients each do a handshake through the proxy and read
their share to the end. Each proxy runs one worker, plain HTTP, default
buffers; nginx with the usual `proxy_http_version 1.1; proxy_set_header
Upgrade $http_upgrade; proxy_set_header Connection "upgrade"`. Printed: MB/s
through the proxy and the proxy's CPU time per GB (utime + stime of its
processes, /proc), best of ROUNDS. Figures, never assertions.

Usage: bench/upgrade.py [BUILD_DIR]   (env: TOTAL_MB=2048 CONNS=4 ROUNDS=3)
"""
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-rel"
TOTAL = int(os.environ.get("TOTAL_MB", "2048")) * 1024 * 1024
CONNS = int(os.environ.get("CONNS", "4"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
CHUNK = b"\x00" * (1 << 20)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upstream(port, share):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)

    def serve(c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += c.recv(65536)
        key = [l.split(b": ", 1)[1] for l in buf.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key")][0]
        acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        left = share
        while left:
            n = c.send(CHUNK[:min(left, len(CHUNK))])
            left -= n
        c.shutdown(socket.SHUT_WR)
        while c.recv(65536):
            pass
        c.close()

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv


def client(port, share, out, i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /ws/ HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    got = len(rest)
    mem = bytearray(1 << 20)
    while True:
        n = s.recv_into(mem)
        if not n:
            break
        got += n
    s.close()
    out[i] = got


def cpu(pids):
    t = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return t / os.sysconf("SC_CLK_TCK")


def run(port, pids):
    share = TOTAL // CONNS
    out = [0] * CONNS
    c0, t0 = cpu(pids), time.monotonic()
    ts = [threading.Thread(target=client, args=(port, share, out, i)) for i in range(CONNS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt, dc = time.monotonic() - t0, cpu(pids) - c0
    assert sum(out) == share * CONNS, (sum(out), share * CONNS)
    gb = sum(out) / 1e9
    return sum(out) / dt / 1e6, dc / gb


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def main():
    errgate = os.path.join(BUILD, "errgate")
    if not os.access(errgate, os.X_OK):
        raise SystemExit("bench: build first (cmake -B build-rel -DCMAKE_BUILD_TYPE=Release)")
    tmp = tempfile.mkdtemp(prefix="errgate-bench-upgrade.")
    up = free_port()
    srv = upstream(up, TOTAL // CONNS)
    procs = []
    try:
        ep = free_port()
        with open(f"{tmp}/errgate.yaml", "w") as f:
            f.write(f"""listen: 127.0.0.1:{ep}
workers: 1
log: {{ access: off }}
upstreams: {{ up: {{ servers: ["127.0.0.1:{up}"] }} }}
routes:
  - {{ path: /ws/, upstream: up, upgrade: {{ protocols: [websocket], idle_timeout: 60s }} }}
""")
        procs.append(subprocess.Popen([errgate, "serve", "--config", f"{tmp}/errgate.yaml"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        targets = [("errgate", ep, lambda: [procs[0].pid])]
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
        if nginx:
            np_ = free_port()
            with open(f"{tmp}/nginx.conf", "w") as f:
                f.write(f"""worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{
    listen 127.0.0.1:{np_};
    location /ws/ {{
      proxy_pass http://127.0.0.1:{up};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 60s;
    }}
  }}
}}
""")
            procs.append(subprocess.Popen([nginx, "-c", f"{tmp}/nginx.conf"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            master = procs[-1].pid
            targets.append(("nginx", np_, lambda: [master] + [
                int(p) for p in subprocess.run(["pgrep", "-P", str(master)], capture_output=True,
                                               text=True).stdout.split()]))
        for _, port, _ in targets:
            wait_port(port)
        best = {}
        for _ in range(ROUNDS):
            for name, port, pids in targets:
                mbs, cpu_gb = run(port, pids())
                b = best.get(name)
                best[name] = (max(mbs, b[0]), min(cpu_gb, b[1])) if b else (mbs, cpu_gb)
        print(f"{TOTAL >> 20} MiB over {CONNS} tunnels, best of {ROUNDS} (upstream -> client):")
        for name, (mbs, cpu_gb) in best.items():
            print(f"  {name:8s} {mbs:8.0f} MB/s   {cpu_gb:6.3f} CPU s/GB")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
