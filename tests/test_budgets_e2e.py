"""What one request may cost, end to end through nginx on MySQL: hostile images refused from
their headers (JPEG scans, decode memory), JSON bodies bounded before they are parsed, and
every JSON field of the wrong type a 400 naming it."""

import base64
import io
import json
import os
import time

import pytest
import requests
from PIL import Image

from tests.conftest import start_stack
from tests.hostile_images import jpeg_scan_bomb, png_16bit_rgba


def gunicorn_workers(stack):
    """The pids of the workers of both gunicorn pools."""
    masters = {process.pid for name, process in stack.stack.processes.items() if name.startswith("gunicorn")}
    workers = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                if int(handle.read().rpartition(")")[2].split()[1]) in masters:
                    workers.append(int(entry))
        except OSError:
            continue
    return workers


def peak_rss_kb(pids):
    """{pid: VmHWM in kB}: each process's peak resident memory so far."""
    peaks = {}
    for pid in pids:
        with open(f"/proc/{pid}/status") as handle:
            peaks[pid] = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    return peaks


class PeakGrowth:
    """The largest growth of any gunicorn worker's peak RSS across a block, in MB."""

    def __init__(self, stack):
        self.stack = stack

    def __enter__(self):
        self.workers = gunicorn_workers(self.stack)
        assert len(self.workers) >= 2, "both gunicorn pools have workers"
        self.before = peak_rss_kb(self.workers)
        return self

    def __exit__(self, *_exc):
        after = peak_rss_kb(self.workers)
        self.mb = max(after[pid] - self.before[pid] for pid in self.workers) / 1024


@pytest.fixture(scope="module")
def budget_stack(stack_root, mysql_databases, database_kind):
    """A stack of its own, so no other test has raised its workers' peak memory first."""
    running = start_stack(stack_root, mysql_databases, database_kind)
    yield running
    running.stack.stop()


@pytest.fixture(scope="module")
def budget_owner(budget_stack):
    return budget_stack.new_owner()


def _png(side=8):
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_jpeg_scan_bomb_is_refused_in_bounded_time(budget_stack, budget_owner, http):
    bomb = jpeg_scan_bomb()
    assert len(bomb) < 400_000 and bomb.count(b"\xff\xda") > 1000
    started = time.monotonic()
    response = http.post(f"{budget_stack.url}/v1/images", headers=budget_owner.headers,
                         files={"file": ("scans.jpg", bomb)}, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 422 and response.json()["error"]["code"] == "image_too_complex", response.text
    assert "scans" in response.json()["error"]["message"]
    assert elapsed < 2, f"refused after {elapsed:.1f}s"


def test_a_16bit_png_that_decodes_to_hundreds_of_mb_is_refused_without_decoding(budget_stack, budget_owner, http):
    data = png_16bit_rgba()
    assert len(data) < 400_000
    with PeakGrowth(budget_stack) as growth:
        response = http.post(f"{budget_stack.url}/v1/images", headers=budget_owner.headers,
                             files={"file": ("deep.png", data)}, timeout=30)
    assert response.status_code == 422 and response.json()["error"]["code"] == "image_too_complex", response.text
    assert growth.mb < 150, f"a worker's peak RSS grew by {growth.mb:.0f} MB"


def test_a_34_mb_json_array_is_refused_before_it_is_read(budget_stack, budget_owner, http):
    body = b"[" + b"{}," * 11_333_333 + b"{}]"
    assert len(body) > 34_000_000
    with PeakGrowth(budget_stack) as growth:
        response = http.post(f"{budget_stack.url}/v1/image-generators/builtin/generate", data=body, timeout=60,
                             headers={**budget_owner.headers, "Content-Type": "application/json"})
    assert growth.mb < 100, f"a worker's peak RSS grew by {growth.mb:.0f} MB"
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", response.text
    assert "65536 bytes" in response.json()["error"]["message"]


def test_the_upload_route_bounds_json_elements_and_depth_too(budget_stack, budget_owner, http):
    """The one route whose cap is the upload size still refuses a body of many small values unparsed."""
    url = f"{budget_stack.url}/v1/images"
    many = json.dumps({"data": "AAAA", "filename": [{}] * 20_000})
    deep = '{"data": "AAAA", "filename": ' + "[" * 40 + "]" * 40 + "}"
    for body, expected in ((many, "elements"), (deep, "nests")):
        response = http.post(url, data=body, headers={**budget_owner.headers, "Content-Type": "application/json"})
        assert response.status_code == 400 and expected in response.json()["error"]["message"], response.text


@pytest.fixture(scope="module")
def typed_targets(budget_stack, budget_owner):
    """An image and a scope of the owner's, for the PATCH/PUT/regenerate rows."""
    image = requests.post(f"{budget_stack.url}/v1/images", headers=budget_owner.headers,
                      files={"file": ("t.png", _png())}).json()
    scope = requests.post(f"{budget_stack.url}/api/v1/live/scopes", headers=budget_owner.headers, json={"slug": "typed"})
    assert scope.status_code == 201, scope.text
    return {"image": image["id"], "scope": "typed"}


DATA = base64.b64encode(_png()).decode()
# (method, path, body, the field the 400 must name): every JSON body of the API, each
# field given a JSON type other than the one goodeye/openapi.yaml declares.
WRONG_TYPES = [
    ("POST", "/v1/images", {"data": DATA, "ttl_seconds": "10"}, "ttl_seconds"),
    ("POST", "/v1/images", {"data": DATA, "ttl_seconds": 10.0}, "ttl_seconds"),
    ("POST", "/v1/images", {"data": DATA, "strip_metadata": "true"}, "strip_metadata"),
    ("POST", "/v1/images", {"data": DATA, "permanent": "true"}, "permanent"),
    ("POST", "/v1/images", {"data": DATA, "visibility": ["public"]}, "visibility"),
    ("POST", "/v1/images", {"data": DATA, "filename": 7}, "filename"),
    ("POST", "/v1/images", {"data": DATA, "alias": {"name": "x"}}, "alias"),
    ("POST", "/v1/images", {"data": 12}, "data"),
    ("PATCH", "/v1/images/{image}", {"ttl_seconds": "10"}, "ttl_seconds"),
    ("PATCH", "/v1/images/{image}", {"permanent": "true"}, "permanent"),
    ("PATCH", "/v1/images/{image}", {"visibility": True}, "visibility"),
    ("PATCH", "/v1/images/{image}", {"alias": 5}, "alias"),
    ("POST", "/v1/image-generators/builtin/generate", {"prompt": 5}, "prompt"),
    ("POST", "/v1/image-generators/builtin/generate", {"prompt": "x", "n": "1"}, "n"),
    ("POST", "/v1/image-generators/builtin/generate", {"prompt": "x", "aspect_ratio": ["1:1"]}, "aspect_ratio"),
    ("POST", "/v1/image-generators/builtin/generate", {"prompt": "x", "seed": "7"}, "seed"),
    ("POST", "/v1/image-generators/builtin/generate", {"prompt": "x", "auto_enhance": "true"}, "auto_enhance"),
    ("POST", "/v1/image-generators/builtin/generate", {"prompt": "x", "template": 1}, "template"),
    ("POST", "/api/v1/live/scopes", {"slug": "s-one", "allowNewGenerations": "true"}, "allowNewGenerations"),
    ("POST", "/api/v1/live/scopes", {"slug": "s-one", "newGenerationsLimit": "5"}, "newGenerationsLimit"),
    ("POST", "/api/v1/live/scopes", {"slug": "s-one", "meta": "x"}, "meta"),
    ("PUT", "/api/v1/live/scopes/{scope}", {"newGenerationsLimit": "5"}, "newGenerationsLimit"),
    ("PUT", "/api/v1/live/scopes/{scope}", {"allowNewGenerations": 1}, "allowNewGenerations"),
    ("POST", "/api/v1/live/scopes/{scope}/regenerate", {"imageId": 5}, "imageId"),
    ("PATCH", "/api/v1/project", {"allowNewLiveScopes": "true"}, "allowNewLiveScopes"),
    ("PATCH", "/api/v1/project", {"liveGenerationsPerIpPerHour": "25"}, "liveGenerationsPerIpPerHour"),
]


def test_a_json_field_of_the_wrong_type_is_a_400_naming_it(budget_stack, budget_owner, typed_targets, http):
    images_url = f"{budget_stack.url}/v1/images"
    before = http.get(images_url, headers=budget_owner.headers).json()["data"]
    wrong = []
    for method, path, body, field in WRONG_TYPES:
        url = budget_stack.url + path.format(**typed_targets)
        response = http.request(method, url, headers=budget_owner.headers, json=body)
        error = response.json().get("error", {})
        expected_code = "VALIDATION_ERROR" if path.startswith("/api/") else "invalid_request"
        if response.status_code != 400 or error.get("code") != expected_code or field not in error.get("message", ""):
            wrong.append((method, path, body if field != "data" else "...", response.status_code, response.text[:200]))
    assert not wrong, "\n".join(map(str, wrong))
    # Nothing was stored or changed on the way.
    assert http.get(images_url, headers=budget_owner.headers).json()["data"] == before


@pytest.mark.parametrize("body, field", [({}, "prompt"), ({"prompt": "x", "aspect_ratio": ["1:1"]}, "aspect_ratio")])
def test_generate_without_a_prompt_or_with_a_list_for_aspect_ratio_is_a_400(budget_stack, budget_owner, http, body, field):
    response = http.post(f"{budget_stack.url}/v1/image-generators/builtin/generate", headers=budget_owner.headers, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request" and field in response.json()["error"]["message"]


def test_multipart_fields_are_still_text(budget_stack, budget_owner, http):
    response = http.post(f"{budget_stack.url}/v1/images", headers=budget_owner.headers, files={"file": ("m.png", _png(9))},
                         data={"ttl_seconds": "60", "strip_metadata": "true", "visibility": "public"})
    assert response.status_code == 201, response.text
    assert response.json()["expires_at"] is not None and response.json()["visibility"] == "public"
    refused = http.post(f"{budget_stack.url}/v1/images", headers=budget_owner.headers, files={"file": ("m.png", _png(9))},
                        data={"ttl_seconds": "ten"})
    assert refused.status_code == 400 and "ttl_seconds" in refused.json()["error"]["message"]
    http.delete(f"{budget_stack.url}/v1/images/{response.json()['id']}", headers=budget_owner.headers)
