"""The package stands on its own: a wheel built from the checkout, installed (not editable) into a
fresh virtualenv outside it, runs `goodeye serve` from an empty directory, uploads and serves."""

import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest
import requests

from tests import factories
from tests.conftest import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, (argv, result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout


def _build_wheel(tmp_path):
    """A wheel of the tracked files, built in a copy so the checkout gets no build/ or egg-info."""
    source = tmp_path / "source"
    for name in _run("git", "ls-files", "-z", cwd=ROOT).split("\0"):
        if name and os.path.exists(os.path.join(ROOT, name)):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(source))
    [wheel] = list((tmp_path / "dist").glob("goodeye-*.whl"))
    return wheel


def _clean_env(**extra):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GOODEYE_", "PROMETHEUS_")) and key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    return {**env, **extra}


@pytest.mark.slow
def test_an_installed_wheel_serves_from_any_directory(tmp_path):
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    # The dependencies come from this test run's own environment, named by a .pth line (which,
    # unlike a site dir, runs none of that environment's .pth files, so not its editable
    # finder): the test is about the package and its data, not about downloading from PyPI.
    site = _run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    dependencies = [path for path in sys.path if path.endswith("site-packages")]
    with open(os.path.join(site, "test-dependencies.pth"), "w") as pth:
        pth.write("\n".join(dependencies) + "\n")
    _run(str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", str(wheel), env=_clean_env())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed package, with its data, not the checkout.
    located = _run(str(venv / "bin" / "python"), "-c",
                   "import goodeye, os; d = os.path.dirname(goodeye.__file__); print(d);"
                   "assert os.path.isfile(os.path.join(d, 'openapi.yaml'));"
                   "assert os.path.isfile(os.path.join(d, 'nginx', 'goodeye.conf.j2'))",
                   cwd=elsewhere, env=_clean_env())
    assert located.strip().startswith(str(venv))

    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "goodeye"), "serve"], cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=_clean_env(GOODEYE_DATA_DIR="data", GOODEYE_PORT=str(port), PYTHONUNBUFFERED="1"),
    )
    lines = []
    key_seen = threading.Event()

    def read_output():
        for line in server.stdout:
            lines.append(line)
            if line.strip().startswith("good_live_"):
                key_seen.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        assert key_seen.wait(120), "".join(lines)
        key = next(line.strip() for line in lines if line.strip().startswith("good_live_"))
        headers = {"Authorization": f"Bearer {key}"}
        data = factories.png()
        base = f"http://127.0.0.1:{port}"
        uploaded = requests.post(f"{base}/v1/images", headers=headers, files={"file": ("i.png", data)})
        assert uploaded.status_code == 201, uploaded.text
        served = requests.get(uploaded.json()["url"], headers=headers)
        assert served.status_code == 200 and served.content == data
        assert requests.get(f"{base}/v1/usage", headers=headers).json()["images"] == 1
        # Everything it wrote is under the directory it was started in.
        assert os.path.isfile(elsewhere / "data" / "goodeye.sqlite3")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        reader.join(5)
    assert "Goodeye stopped." in "".join(lines)
