"""scripts/bench-similar on a few thousand rows: it exits 0 and every answer equals brute force (never a timing assertion)."""

import json
import os
import subprocess

import pytest

from tests.bench.harness import REPO_ROOT
from tests.conftest import MYSQL_ADMIN_URL

pytestmark = pytest.mark.slow


def test_small_similar_bench_is_exact(tmp_path, database_kind):
    env = dict(os.environ, GOODEYE_DATABASE_URL=MYSQL_ADMIN_URL if database_kind == "mysql" else "")
    out = tmp_path / "similar.json"
    done = subprocess.run(
        [os.path.join(REPO_ROOT, "scripts", "bench-similar"), "--rows", "3000", "--sqlite-rows", "2000", "--settle-seconds", "0",
         "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    kinds = ["mysql", "sqlite"] if database_kind == "mysql" else ["sqlite"]
    for kind in kinds:
        figures = report[kind]["similar"]
        assert set(figures) == {"4", "8", "16"}
        assert all(row["identical_to_brute_force"] and row["queries"] == 100 for row in figures.values()), figures
    if database_kind == "mysql":
        assert report["blocklist"]["entries"] == 10_000 and 0 < report["blocklist"]["check_share_of_upload"]
