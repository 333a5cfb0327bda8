"""A first start cannot lose the demo key; `goodeye admin` never invents a database."""

import contextlib
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from click.testing import CliRunner

from goodeye.cli import main as cli_main
from tests.conftest import IN_CI, free_port, mysql_available


def _serve(data_dir, port, cwd, *args, **settings):
    """`goodeye serve` as scripts/serve runs it, on its own data dir and port."""
    env = {**os.environ, "GOODEYE_DATA_DIR": data_dir, "GOODEYE_PORT": str(port), "GOODEYE_DATABASE_URL": "", **settings}
    return subprocess.Popen(
        [sys.executable, "-m", "goodeye.cli", "serve", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _read_until(process, marker, timeout=60):
    """The output of `serve` up to the line containing `marker` (AssertionError if it exits first)."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError(f"no {marker!r} in the output of serve:\n{''.join(lines)}")


class _AnswersEverything(http.server.BaseHTTPRequestHandler):
    """Another server on the port, which answers 200 to every request (/readyz too), as another Goodeye would."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


@contextlib.contextmanager
def _port_taken(port, answering):
    """Something listening on 127.0.0.1:port: a bare socket, or an HTTP server answering 200."""
    if not answering:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            yield
        return
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _AnswersEverything)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("answering", [False, True], ids=["bare-socket", "another-server-answering-200"])
def test_a_first_start_that_fails_keeps_the_demo_key_for_the_next(tmp_path, answering):
    data_dir, port = str(tmp_path / "data"), free_port()
    with _port_taken(port, answering):
        failed = _serve(data_dir, port, tmp_path)
        output, _ = failed.communicate(timeout=60)
    assert failed.returncode != 0 and f"127.0.0.1:{port} is in use" in output, output
    assert "API key" not in output

    second = _serve(data_dir, port, tmp_path)
    try:
        output = _read_until(second, "Press Ctrl+C")
        key = re.search(r"API key \(shown once\):\n  (\S+)", output).group(1)
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/v1/images", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        # The Try lines, pasted into a shell, make a PNG, upload it and generate an image.
        try_lines = output.split("Try:\n", 1)[1].split("Press Ctrl+C", 1)[0]
        pasted = subprocess.run(["bash", "-euc", try_lines], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert pasted.returncode == 0, pasted.stderr
        assert pasted.stdout.count('"id":') >= 2 and '"error"' not in pasted.stdout, pasted.stdout
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)

    third = _serve(data_dir, port, tmp_path)
    try:
        assert "API key" not in _read_until(third, "Press Ctrl+C")
    finally:
        os.killpg(third.pid, signal.SIGTERM)
        third.wait(timeout=30)


@pytest.mark.slow
def test_logs_to_stdout_put_every_line_on_serves_output_and_none_in_files(tmp_path):
    data_dir, port = str(tmp_path / "data"), free_port()
    served = _serve(data_dir, port, tmp_path, "--no-demo", GOODEYE_LOG_TO="stdout")
    try:
        _read_until(served, "Press Ctrl+C")
        answer = requests.get(f"http://127.0.0.1:{port}/v1/images")
        assert answer.status_code == 401
        request_id = answer.headers["X-Request-Id"]
        # nginx writes its access line once the response is sent; the app logged before answering.
        output = _read_until(served, f'"request_id":"{request_id}"')
    finally:
        os.killpg(served.pid, signal.SIGTERM)
        output += served.communicate(timeout=30)[0]
    assert f'"request_id": "{request_id}"' in output  # the app's line for the same request
    assert '"logger": "goodeye.request"' in output
    assert not [name for name in os.listdir(os.path.join(data_dir, "run")) if name.endswith(".log")]


def _admin(*args, env):
    return CliRunner().invoke(cli_main, ["admin", *args], env=env)


def test_admin_on_a_missing_database_says_so_in_one_line_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for env in ({"GOODEYE_DATA_DIR": None, "GOODEYE_DATABASE_URL": None}, {"GOODEYE_DATA_DIR": str(tmp_path / "elsewhere")}):
        result = _admin("key", "list", "demo/website", env=env)
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and result.output.startswith("error: no database at "), result.output
        assert "goodeye admin db init" in result.output
        assert os.listdir(tmp_path) == []
    # --help never needs a database.
    assert _admin("key", "list", "--help", env={"GOODEYE_DATA_DIR": None}).exit_code == 0


def test_admin_on_an_uninitialised_database_says_so_and_db_init_initialises_it(tmp_path):
    path = tmp_path / "empty.sqlite3"
    path.touch()
    env = {"GOODEYE_DATABASE_URL": f"sqlite:///{path}"}
    result = _admin("org", "create", "acme", env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "is not initialised: run `goodeye admin db init`" in result.output
    assert _admin("db", "init", env=env).exit_code == 0
    assert _admin("org", "create", "acme", env=env).exit_code == 0


def test_admin_on_an_empty_mysql_database_says_so(mysql_databases):
    if not mysql_available():
        if IN_CI:
            pytest.fail("CI=true but MySQL is not reachable")
        pytest.skip("MySQL is not reachable")
    env = {"GOODEYE_DATABASE_URL": mysql_databases.create()}
    result = _admin("key", "list", "demo/website", env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "is not initialised" in result.output, result.output
    missing = env["GOODEYE_DATABASE_URL"] + "_absent"
    result = _admin("key", "list", "demo/website", env={"GOODEYE_DATABASE_URL": missing})
    assert result.exit_code == 1 and result.output.startswith("error: cannot open the database"), result.output
    assert _admin("db", "migrate", env=env).exit_code == 0
