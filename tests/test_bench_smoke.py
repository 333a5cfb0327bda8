"""scripts/bench --quick end to end: it exits 0 and writes every figure (a smoke test, never a timing assertion)."""

import json
import os
import subprocess

import pytest

from tests.bench.harness import REPO_ROOT
from tests.conftest import MYSQL_ADMIN_URL

# Fault injection, load, fuzzing and bench smoke: left out of the inner loop (-m "not slow").
pytestmark = pytest.mark.slow

SCENARIOS = {
    "raw nginx",
    "public hot",
    "public hot, S3 storage",
    "raw nginx, variant bytes",
    "variant served again",
    "raw nginx, spread",
    "public spread",
    "private + owner key",
    "signed hot (private)",
    "signed first request",
    "cdn img @alias",
    "raw nginx, live bytes",
    "live HIT",
    "unknown token (404)",
    "flask streaming (accel off)",
    "flask streaming, private + key",
    "upload 1 MB PNG",
    "upload 1 MB PNG, 1 client",
    "raw nginx, again",
}


def run_quick_bench(tmp_path, database_kind):
    """Run `scripts/bench --quick` on this suite's database kind; return its JSON report."""
    env = dict(os.environ, GOODEYE_DATABASE_URL=MYSQL_ADMIN_URL if database_kind == "mysql" else "")
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [os.path.join(REPO_ROOT, "scripts", "bench"), "--quick", "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_quick_bench_writes_every_figure(tmp_path, database_kind):
    report = run_quick_bench(tmp_path, database_kind)

    assert report["config"]["database"] == database_kind
    assert report["config"]["settle_seconds"] == 0  # only the full run waits for a quiet machine
    assert set(report["scenarios"]) == SCENARIOS
    for name, figures in report["scenarios"].items():
        assert figures["status"] == "ok", (name, figures)
        assert figures["requests"] > 0 and figures["requests_per_s"] > 0, name
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], name
        if name == "unknown token (404)":
            assert figures["non_2xx"] == figures["requests"]
        else:
            assert figures["non_2xx"] == 0, (name, figures)
        if not name.startswith("upload"):
            assert figures["ratio_to_raw"] > 0, name
    raw_runs = [report["scenarios"][name]["requests_per_s"] for name in ("raw nginx", "raw nginx, again")]
    assert report["raw_nginx_requests_per_s"] == round(sum(raw_runs) / 2, 1)

    uploads = report["uploads"]
    assert uploads["uploads_per_s"] > 0 and uploads["server_ms_per_upload"] > 0
    assert uploads["in_process_ms"] > 0 and uploads["ratio_to_in_process"] > 0
    assert report["generation"]["builtin_1024_median_ms"] > 0
    checks, scenarios = report["checks"], report["scenarios"]
    private_rps = scenarios["private + owner key"]["requests_per_s"]
    assert checks["private_vs_flask_streaming"] == round(private_rps / scenarios["flask streaming, private + key"]["requests_per_s"], 3)
    assert checks["private_vs_flask_streaming_public"] == round(private_rps / scenarios["flask streaming (accel off)"]["requests_per_s"], 3)
    signed_first_rps = scenarios["signed first request"]["requests_per_s"]
    assert checks["signed_first_request_vs_private_key"] == round(signed_first_rps / private_rps, 3)
    spread_ratio = scenarios["public spread"]["requests_per_s"] / scenarios["raw nginx, spread"]["requests_per_s"]
    assert report["same_bytes"]["public_spread_vs_raw_nginx_same_files"] == round(spread_ratio, 3)
    live_ratio = scenarios["live HIT"]["requests_per_s"] / scenarios["raw nginx, live bytes"]["requests_per_s"]
    assert report["same_bytes"]["live_hit_vs_raw_nginx_same_bytes"] == round(live_ratio, 3)
    assert checks["private_vs_check_without_db"] == round(private_rps / scenarios["unknown token (404)"]["requests_per_s"], 3)
    served_variant = scenarios["variant served again"]["requests_per_s"]
    assert report["variants"]["served_again_vs_raw_nginx_same_bytes"] == round(
        served_variant / scenarios["raw nginx, variant bytes"]["requests_per_s"], 3
    )
    assert all(ms > 0 for ms in report["variants"]["first_render_in_process_ms"].values())
    assert all(case["first_ms"] > 0 for case in report["variants"]["first_request_through_the_stack"].values())
    assert len(report["gunicorn_peak_rss_mb"]) == report["config"]["workers"]
    assert all(mb > 0 for mb in report["gunicorn_peak_rss_mb"])
    assert report["machine"]["nproc"] > 0 and report["machine"]["cpu_model"]
