"""What the machine does to Goodeye: MySQL stopping under load, the blob store refusing a write,
a crash between blob write and commit, a gunicorn worker killed mid-request.

MySQL is a private MariaDB server started here (never the machine's shared one), so it can be
stopped and started again under a running Goodeye.
"""

import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from click.testing import CliRunner
from PIL import Image

from goodeye.cli import main as cli_main

from tests.conftest import IN_CI, free_port
from tests.fake_openai import FakeOpenAI
from tests.reliability.conftest import start_reliability_stack
from tests.reliability.helpers import DbProbe, error_code, sha256
from tests.s3_server import S3Server

# Fault injection, load, fuzzing and bench smoke: left out of the inner loop (-m "not slow").
pytestmark = pytest.mark.slow


def _png(seed, size=(16, 16)):
    out = io.BytesIO()
    Image.new("RGB", size, (seed % 256, seed // 256 % 256, 7)).save(out, "PNG")
    return out.getvalue()


class PrivateMariaDB:
    """A throwaway MariaDB server on its own data dir and port, that a test may stop and restart."""

    def __init__(self, root):
        self.datadir = os.path.join(root, "mariadb")
        self.socket = os.path.join(root, "mariadb.sock")
        self.port = free_port()
        self.process = None

    @staticmethod
    def binaries():
        server = shutil.which("mariadbd") or shutil.which("mysqld") or next(
            (p for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld") if os.path.exists(p)), None)
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        return server, install

    def install(self):
        _server, install = self.binaries()
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([install, "--no-defaults", f"--datadir={self.datadir}", "--auth-root-authentication-method=normal",
                        "--skip-test-db", *user], check=True, capture_output=True, timeout=120)
        return self

    def start(self):
        server, _install = self.binaries()
        user = ["--user=root"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.socket}", "--skip-grant-tables", "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
             f"--pid-file={self.datadir}/server.pid", *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the private MariaDB exited at start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the private MariaDB did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()  # a crash, not a clean shutdown
            self.process.wait(timeout=30)

    def url(self, name):
        return f"mysql://root@127.0.0.1:{self.port}/{name}"

    def create_database(self, name):
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn.close()


@pytest.fixture(scope="module")
def private_mariadb():
    server, install = PrivateMariaDB.binaries()
    if not (server and install):
        if IN_CI:
            pytest.fail("CI=true but no mariadbd/mysqld and mariadb-install-db on this machine")
        pytest.skip("no MariaDB server binaries on this machine")
    root = tempfile.mkdtemp(prefix="goodeye-mariadb-")
    db = PrivateMariaDB(root).install().start()
    yield db
    db.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_mysql_stopped_under_load_answers_503_and_recovers_without_a_restart(private_mariadb, stack_root, mysql_databases):
    private_mariadb.create_database("goodeye_fault")
    stack = start_reliability_stack(stack_root, mysql_databases, "mysql", GOODEYE_DATABASE_URL=private_mariadb.url("goodeye_fault"))
    try:
        owner = stack.new_owner()
        gunicorn_pid = stack.stack.processes["gunicorn"].pid
        record = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("a.png", _png(1))}).json()
        outcomes, stop = [], threading.Event()

        def client(seed):
            with requests.Session() as session:
                i = 0
                while not stop.is_set():
                    i += 1
                    started = time.monotonic()
                    if i % 2:
                        response = session.post(f"{stack.url}/v1/images", headers=owner.headers,
                                                files={"file": ("l.png", _png(seed * 10000 + i))})
                    else:
                        response = session.get(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers)
                    outcomes.append((response.status_code, time.monotonic() - started, response))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        private_mariadb.stop()
        stopped_at = len(outcomes)
        time.sleep(2)
        during = outcomes[stopped_at:]
        private_mariadb.start()
        # Recovery: the same gunicorn, no restart; the pool drops its dead connections.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not outcomes or outcomes[-1][0] == 503):
            time.sleep(0.2)
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join()

        statuses = {status for status, _, _ in outcomes}
        assert statuses <= {200, 201, 503}, statuses
        outage = [(elapsed, response) for status, elapsed, response in during if status == 503]
        assert outage, "no request saw the outage"
        assert all(error_code(response) == "service_unavailable" for _, response in outage)
        slowest = max(elapsed for elapsed, _ in outage)
        print(f"\nMySQL down: {len(outage)} requests answered 503 JSON, slowest in {slowest:.3f}s")
        # A refused connection must fail fast, never wait out the 5 s connect timeout.
        assert slowest < 5
        assert outcomes[-1][0] in (200, 201)
        assert stack.stack.processes["gunicorn"].pid == gunicorn_pid and stack.stack.processes["gunicorn"].poll() is None
        after = [requests.get(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).status_code for _ in range(20)]
        assert after == [200] * 20
        # Nothing lost: every image the clients were told about is there, every blob has its row.
        created = [response.json() for status, _, response in outcomes if status == 201]
        probe = DbProbe(stack.settings)
        try:
            # A commit that MySQL made durable just before it was killed never got its
            # acknowledgement back: the client saw 503, the image exists. Such
            # in-doubt uploads are the only extras allowed; nothing may be missing.
            in_doubt = sum(1 for status, _, response in outcomes if status == 503 and response.request.method == "POST")
            assert len(created) + 1 <= probe.image_count(owner.project) <= len(created) + 1 + in_doubt
            # Uploads whose commit died with MySQL left their bytes behind: orphans for the sweeper.
            rows = set(probe.blob_refs())
            assert rows <= set(stack.blob_keys())
            swept = CliRunner().invoke(cli_main, ["admin", "sweep", "--json"], env={**stack.env, "GOODEYE_ORPHAN_GRACE_SECONDS": "0"})
            assert swept.exit_code == 0, swept.output
            assert stack.blob_keys() == sorted(rows)
        finally:
            probe.close()
    finally:
        stack.stack.stop()


@pytest.fixture(scope="module")
def fault_stack(stack_root, mysql_databases, database_kind):
    running = start_reliability_stack(stack_root, mysql_databases, database_kind)
    yield running
    running.stack.stop()


def test_a_blob_store_that_refuses_the_write_answers_503_and_keeps_no_record(fault_stack):
    stack = fault_stack
    owner = stack.new_owner()
    data = _png(4242)
    digest = sha256(data)
    # Where the blob's directory must go, a file: every write there fails (even as root).
    shard = os.path.join(stack.settings.blob_dir, digest[:2])
    assert not os.path.exists(shard)
    with open(shard, "w") as handle:
        handle.write("in the way")
    probe = DbProbe(stack.settings)
    try:
        response = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("a.png", data)})
        assert response.status_code == 503 and error_code(response) == "service_unavailable"
        assert probe.image_count(owner.project) == 0 and digest not in probe.blob_refs()
        os.unlink(shard)
        retried = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("a.png", data)})
        assert retried.status_code == 201
        assert requests.get(retried.json()["url"], headers=owner.headers).content == data
    finally:
        probe.close()


def test_an_unreachable_s3_store_answers_503_and_keeps_no_record(stack_root, mysql_databases, database_kind):
    server = S3Server().start()
    stack = start_reliability_stack(stack_root, mysql_databases, database_kind, **server.env(server.create_bucket("faults")))
    probe = DbProbe(stack.settings)
    try:
        owner = stack.new_owner()
        server.stop()
        response = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("a.png", _png(77))})
        assert response.status_code == 503 and error_code(response) == "service_unavailable"
        assert probe.image_count(owner.project) == 0 and probe.blob_refs() == {}
    finally:
        probe.close()
        stack.stack.stop()
        if server.running:
            server.stop()


def test_the_sweeper_reclaims_a_blob_whose_commit_never_happened(fault_stack):
    stack = fault_stack
    owner = stack.new_owner()
    kept = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("k.png", _png(9001))}).json()
    # A process killed between the blob write and the commit leaves bytes with no row.
    orphan, fresh = _png(9002), _png(9003)
    stack.storage.put(sha256(orphan), orphan, "image/png")
    stack.storage.put(sha256(fresh), fresh, "image/png")
    old = time.time() - stack.settings.orphan_grace_seconds - 60
    os.utime(stack.storage.path(sha256(orphan)), (old, old))
    os.utime(stack.storage.path(kept["sha256"]), (old, old))
    temp = os.path.join(os.path.dirname(stack.storage.path(sha256(orphan))), ".tmp-crashed")
    with open(temp, "wb") as handle:
        handle.write(orphan[:10])
    os.utime(temp, (old, old))

    result = stack.admin("sweep", "--json")
    assert result.exit_code == 0, result.output
    keys = stack.blob_keys()
    assert sha256(orphan) not in keys and not os.path.exists(temp)
    # Within the grace (a write whose commit may still come) and referenced blobs stay.
    assert sha256(fresh) in keys and kept["sha256"] in keys
    assert requests.get(kept["url"], headers=owner.headers).status_code == 200


def _children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def test_a_worker_killed_mid_request_is_a_json_502_and_the_next_request_works(stack_root, mysql_databases, database_kind):
    # The provider holds every generation open until the workers are dead: the kill lands mid-request, always.
    with FakeOpenAI(mode="slow", slow_seconds=120) as provider:
        stack = start_reliability_stack(
            stack_root, mysql_databases, database_kind, GOODEYE_OPENAI_BASE_URL=provider.base_url,
            GOODEYE_OPENAI_API_KEY=provider.api_key, GOODEYE_FETCH_ALLOWLIST=provider.allowlist_entry,
        )
        try:
            _kill_workers_mid_request(stack, provider)
        finally:
            stack.stack.stop()


def _kill_workers_mid_request(stack, provider):
    owner = stack.new_owner()
    master = stack.stack.processes["gunicorn"].pid
    workers = _children(master)
    assert workers, "gunicorn has no workers"
    results = []

    def held():
        response = requests.post(f"{stack.url}/v1/image-generators/openai/generate", headers=owner.headers,
                                 json={"prompt": "a mountain held open", "n": 1})
        results.append(response)

    threads = [threading.Thread(target=held) for _ in range(4)]
    for thread in threads:
        thread.start()
    provider.wait_for_generation_requests(len(threads))
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    for thread in threads:
        thread.join()

    assert [r.status_code for r in results] == [502] * len(threads)
    assert all(error_code(r) == "service_unavailable" for r in results)
    # The master starts new workers; the very next request after that is served.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(set(_children(master)) - set(workers)) < len(workers):
        time.sleep(0.1)
    response = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("n.png", _png(5))})
    assert response.status_code == 201
