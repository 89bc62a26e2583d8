"""A real PostgreSQL server for the tests (the metering sink's, issue 24).

Debian's `postgresql` package installs the server under
/usr/lib/postgresql/<version>/bin; the newest there is used. Each server is a
cluster of its own (initdb) in a temporary directory, on a free port of this
process's block (conftest.free_port), listening on 127.0.0.1 only, with a
password (scram-sha-256) so that a test can check the gateway never logs it.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster
belongs to the `postgres` system user (the package creates it) and the
server runs as that user (Popen's user/group), in a directory made for it
outside pytest's tmp_path (whose parents are root's, mode 0700).

Ready means a real query answered (psql SELECT 1 over TCP with the
password), not an open port: the server listens before it accepts logins
while it starts or recovers.

Missing server binaries are a skip, which EG_REQUIRE_ALL=1 (CI) turns into
a failure (conftest's hook): scripts/deps.sh --test installs them."""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time


def bindir():
    """The newest PostgreSQL server's bin directory, or None."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        v = d.split("/")[-2]
        if v.isdigit() and all(os.access(os.path.join(d, x), os.X_OK) for x in ("initdb", "postgres", "psql")):
            found.append((int(v), d))
    return max(found)[1] if found else None


def missing():
    """Why no server can be started here, or None."""
    if not bindir():
        return "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres; scripts/deps.sh --test)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
    return None


class Postgres:
    USER = "errgate"
    PASSWORD = "pg-S3cret-for-the-sink-tests"
    DB = "metering"

    def __init__(self, port):
        self.port = port
        self.bin = bindir()
        self.tmp = tempfile.mkdtemp(prefix="eg-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.logpath = os.path.join(self.tmp, "postgres.log")
        self.as_user = {}
        if os.geteuid() == 0:  # postgres refuses root: the cluster is the postgres user's
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self.as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.proc = None
        pwfile = os.path.join(self.tmp, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.PASSWORD + "\n")
        if self.as_user:
            os.chown(pwfile, self.as_user["user"], self.as_user["group"])
        os.chmod(pwfile, 0o600)
        subprocess.run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", self.USER, "--pwfile", pwfile,
                        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                        "--no-sync"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.tmp, **self.as_user)
        os.unlink(pwfile)
        self.start()
        self.psql(f"CREATE DATABASE {self.DB}", db="postgres")

    def url(self, password=True, db=None):
        auth = f"{self.USER}:{self.PASSWORD}" if password else self.USER
        return f"postgres://{auth}@127.0.0.1:{self.port}/{db or self.DB}"

    def start(self, timeout=60.0):
        """Starts the server (again, on the same port and data) and waits
        until it answers a query."""
        log = open(self.logpath, "ab")
        # fsync off: a test's data need not survive a power cut, only a
        # server stop (which writes everything)
        self.proc = subprocess.Popen([os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
                                      "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.tmp}",
                                      "-c", "fsync=off", "-c", "full_page_writes=off"],
                                     stdout=log, stderr=log, cwd=self.tmp, **self.as_user)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log_tail()}")
            r = self._psql("SELECT 1", "postgres", timeout=10)
            if r.returncode == 0 and r.stdout.strip() == "1":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres on port {self.port} did not answer SELECT 1:\n{r.stderr}\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def stop(self):
        """A fast shutdown (SIGINT): sessions are ended, what is committed is
        written; the server is gone when this returns."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _psql(self, sql, db, timeout=60):
        env = dict(os.environ, PGPASSWORD=self.PASSWORD, PGCONNECT_TIMEOUT="5")
        return subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                               "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER,
                               "-d", db, "-c", sql], capture_output=True, text=True, env=env, timeout=timeout)

    def psql(self, sql, db=None):
        """Runs sql; returns its rows as lists of strings (tab-separated
        fields, so values must not hold tabs). Raises on an error."""
        r = self._psql(sql, db or self.DB)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}): {r.stderr}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def log_tail(self, n=3000):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
