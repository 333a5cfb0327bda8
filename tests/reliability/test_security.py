"""Who may do what, and what an attacker can smuggle in: the authorization matrix over every
operation of the OpenAPI document, spoofed forwarding headers, path traversal on every path
parameter, header injection, token and key entropy, keys stored only hashed.

SSRF through the generation endpoint is covered end to end by tests/test_generation_e2e.py
(off-allowlist hosts, redirects to private hosts) and the fetcher by tests/test_fetch.py.
"""

import base64
import hashlib
import http.client
import io
import json
import os
import re
import secrets

import pytest
import requests
from PIL import Image

from tests.live_helpers import client
from tests.openapi_check import load_spec
from tests.reliability.conftest import start_reliability_stack
from tests.reliability.helpers import DbProbe, count, is_envelope

SPEC = load_spec()
CREDENTIALS = ["anonymous", "owner", "other_project", "revoked_key", "malformed_key"]
MALFORMED = ["good_live_short", "Bearer", "good_live_" + "!" * 40, "x" * 300, "good_test_" + "a" * 40]


def _png(seed=0):
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, 9, 9)).save(out, "PNG")
    return out.getvalue()


def _operations():
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield pytest.param(path, method, op.get("security"), id=f"{method.upper()} {path}")


@pytest.fixture(scope="module")
def parties(rel_stack):
    """The owner, another project, and a key of the owner's project that is revoked."""
    owner, other = rel_stack.new_owner(), rel_stack.new_owner()
    created = rel_stack.admin("key", "create", owner.project, "--json")
    revoked = json.loads(created.output)
    assert rel_stack.admin("key", "revoke", revoked["id"]).exit_code == 0
    return owner, other, revoked["key"]


def _resources(stack, owner):
    """A fresh private image, public image and scope of the owner: real values for every path parameter."""
    private = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("p.png", _png(1))}).json()
    public = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("q.png", _png(2))},
                           data={"visibility": "public"}).json()
    slug = f"s{secrets.token_hex(4)}"
    assert requests.post(f"{stack.url}/api/v1/live/scopes", headers=owner.headers, json={"slug": slug}).status_code == 201
    org, project = owner.project.split("/")
    return {"id": private["id"], "token": private["token"], "ext": "png", "org": org, "project": project,
            "slug": slug, "scope": slug, "filenameOrAlias": public["filename"]}


BODIES = {
    ("post", "/v1/images"): {"files": {"file": ("m.png", _png(3))}},
    ("patch", "/v1/images/{id}"): {"json": {"visibility": "private"}},
    ("put", "/v1/images/{id}/file"): {"files": {"file": ("r.png", _png(4))}},
    ("post", "/v1/images/similar"): {"files": {"file": ("s.png", _png(5))}},
    ("post", "/v1/image-generators/{id}/generate"): {"json": {"prompt": "matrix"}},
    ("post", "/api/v1/live/scopes"): {"json": {"slug": "matrix-new"}},
    ("put", "/api/v1/live/scopes/{slug}"): {"json": {"allowNewGenerations": True}},
    ("post", "/api/v1/live/scopes/{slug}/regenerate"): {"json": {}},
    ("patch", "/api/v1/project"): {"json": {}},
}
QUERIES = {"/cdn/{org}/{project}/live/{scope}": {"prompt": "matrix"}, "/api/v1/live": {"prompt": "matrix"}}


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("path,method,security", list(_operations()))
def test_authorization_matrix(rel_stack, parties, path, method, security, credential):
    owner, other, revoked = parties
    values = _resources(rel_stack, owner)
    url = path.replace("/image-generators/{id}", "/image-generators/builtin")
    for name, value in values.items():
        url = url.replace("{" + name + "}", value)
    headers = {
        "anonymous": {}, "owner": owner.headers, "other_project": other.headers,
        "revoked_key": {"Authorization": f"Bearer {revoked}"},
        "malformed_key": {"Authorization": f"Bearer {MALFORMED[len(path) % len(MALFORMED)]}"},
    }[credential]
    response = requests.request(method, rel_stack.url + url, headers=headers, params=QUERIES.get(path),
                                **BODIES.get((method, path), {}))
    status = response.status_code
    assert status < 500, (status, response.text[:300])
    schemes = {name for requirement in (security or []) for name in requirement}
    upper = path.startswith(("/cdn/", "/api/"))
    if not schemes:
        if path.startswith("/cdn/") and credential in ("revoked_key", "malformed_key"):
            # Public by design, but a key that is sent is read, and a wrong one refused.
            assert status == 401 and (method == "head" or response.json()["error"]["code"] == "INVALID_API_KEY"), status
            return
        # Public by design (/healthz, /readyz, /cdn): no key, or a valid one, changes nothing.
        assert status < 400 or path.startswith("/cdn/") and status == 404, (status, response.text[:300])
        return
    # HEAD answers carry no body: only the status can be checked.
    code = response.json()["error"]["code"] if status >= 400 and method != "head" else None

    def expect(wanted_status, *codes):
        assert status == wanted_status and (method == "head" or code in codes), (status, code)

    if credential in ("revoked_key", "malformed_key"):
        # A wrong key is refused everywhere a key is read, never treated as anonymous.
        expect(401, "INVALID_API_KEY" if upper else "invalid_api_key")
    elif credential == "anonymous" and ({} not in security or "{token}" in path):
        # The serving URL is open to anyone, but the image here is private.
        expect(401, "UNAUTHORIZED" if upper else "auth_required")
    elif credential == "other_project" and any("{" + p + "}" in path for p in ("id", "token", "slug")) and "image-generators" not in path:
        # Someone else's image or scope does not exist for this caller (existence masking).
        expect(404, "image_not_found", "IMAGE_NOT_FOUND", "SCOPE_NOT_FOUND")
    else:
        assert status < 400, (status, response.text[:300])


def test_spoofed_forwarding_headers_never_move_a_limit(stack_root, mysql_databases, database_kind):
    stack = start_reliability_stack(stack_root, mysql_databases, database_kind, GOODEYE_LIVE_GENERATION_LIMIT="3/hour")
    try:
        owner = stack.new_owner()
        org, project = owner.project.split("/")
        with client() as attacker:
            answers = []
            for n in range(5):
                spoof = f"10.9.{n}.{n + 1}"
                answers.append(attacker.get(
                    f"{stack.url}/cdn/{org}/{project}/live/spoof", params={"prompt": f"spoof {n}"},
                    headers={"X-Forwarded-For": spoof, "X-Real-IP": spoof, "Forwarded": f"for={spoof}", "X-Client-IP": spoof},
                ))
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        assert [a.headers.get("X-RateLimit-Remaining") for a in answers[:3]] == ["2", "1", "0"]
        # Another real address still has its own budget.
        with client() as someone_else:
            assert someone_else.get(f"{stack.url}/cdn/{org}/{project}/live/spoof", params={"prompt": "fresh"}).status_code == 200
    finally:
        stack.stack.stop()


TRAVERSALS = [
    "..", "../..", "../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252f..%252fetc%252fpasswd", "....//....//etc/passwd", "..\\..\\windows\\win.ini", "%2e%2e%5c%2e%2e%5c",
    "%00", "x%00.png", "..%00/", "%c0%ae%c0%ae%2f", "/etc/passwd", "%2fetc%2fpasswd", ".", "%2e", "~root",
    "..;/..;/", "%ff%fe", "blobs/../../goodeye.sqlite3", "..%2f..%2fgoodeye.sqlite3",
]


def _raw_get(stack, path, headers=None):
    conn = http.client.HTTPConnection(stack.settings.listen_host, stack.settings.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("template", [p for p in SPEC["paths"] if "{" in p])
def test_path_traversal_on_every_path_parameter(rel_stack, parties, template):
    owner, _other, _revoked = parties
    values = _resources(rel_stack, owner)
    params = re.findall(r"\{([^}]+)\}", template)
    # A path whose dot segments climb to `/` gets the console's public page: no secret, no image.
    allowed = _owner_shas(rel_stack, owner) | {hashlib.sha256(requests.get(f"{rel_stack.url}/").content).hexdigest()}
    wrong = []
    for param in params:
        for attack in TRAVERSALS:
            path = template
            for name in params:
                path = path.replace("{" + name + "}", attack if name == param else values.get(name, "builtin"))
            # Raw requests: a client library would resolve the dot segments before sending.
            for headers in ({}, owner.headers):
                status, response_headers, body = _raw_get(rel_stack, path, headers)
                leaked = b"root:" in body or b"SQLite format" in body or b"[fonts]" in body
                if status >= 500 or leaked or status < 400 and status not in (200, 304):
                    wrong.append(f"{path}: {status} leaked={leaked}")
                elif status >= 400 and not response_headers.get("Content-Type", "").startswith("application/json"):
                    wrong.append(f"{path}: {status} not JSON")
                elif status == 200 and hashlib.sha256(body).hexdigest() not in allowed:
                    wrong.append(f"{path}: 200 with bytes that are none of the owner's images nor the console page")
    assert not wrong, "\n".join(wrong[:30])


def _owner_shas(stack, owner):
    listing = requests.get(f"{stack.url}/v1/images?limit=100", headers=owner.headers).json()["data"]
    return {record["sha256"] for record in listing}


INJECTIONS = ["a\r\nX-Injected: 1.png", "a\nX-Injected: 1.png", "a\rX-Injected: 1.png", "a%0d%0aX-Injected:%201.png",
              "a\u2028X-Injected: 1.png", "a\x00\r\nSet-Cookie: pwned=1.png"]


@pytest.mark.parametrize("name", INJECTIONS)
def test_cr_lf_in_filenames_and_aliases_never_reach_a_response_header(rel_stack, parties, name):
    owner, _other, _revoked = parties
    org, project = owner.project.split("/")
    body = {"data": base64.b64encode(_png(7)).decode(), "filename": name, "visibility": "public"}
    record = requests.post(f"{rel_stack.url}/v1/images", headers=owner.headers, json=body)
    assert record.status_code == 201
    record = record.json()
    assert not re.search(r"[\r\n\x00\u2028]", record["filename"])
    bad_alias = requests.patch(f"{rel_stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"alias": "@" + name})
    assert bad_alias.status_code == 400 and is_envelope(bad_alias)
    answers = [
        requests.get(record["url"]),
        requests.get(record["url"], headers=owner.headers),
        requests.get(f"{rel_stack.url}/cdn/{org}/{project}/img/{record['filename']}"),
    ]
    for answer in answers:
        assert answer.status_code in (200, 400, 404)
        assert "X-Injected" not in answer.headers and "pwned" not in answer.headers.get("Set-Cookie", "")
        assert not any(re.search(r"[\r\n]", value) for value in answer.headers.values())


def test_tokens_carry_128_random_bits_and_never_repeat(rel_stack):
    owner = rel_stack.new_owner()
    samples = count("entropy_samples")
    tokens = []
    with requests.Session() as session:
        for n in range(samples):
            body = {"data": base64.b64encode(_png(0)).decode()}  # identical bytes: tokens must still differ
            tokens.append(session.post(f"{rel_stack.url}/v1/images", headers=owner.headers, json=body).json()["token"])
    assert len(set(tokens)) == samples
    randoms = []
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) == 24
        randoms.append(int.from_bytes(raw[:16], "big"))
    assert len(set(randoms)) == samples
    # Every one of the 128 random bits varies; with 200+ samples a stuck bit shows at once
    # (a fair bit stays outside [15%, 85%] with probability below 1e-20 at n=200).
    for bit in range(128):
        ones = sum((value >> bit) & 1 for value in randoms)
        assert 0.15 * samples < ones < 0.85 * samples, f"bit {bit} set in {ones} of {samples}"


def test_keys_have_over_128_bits_and_are_stored_only_as_sha256(rel_stack):
    owner = rel_stack.new_owner()
    keys = [owner.key]
    for _ in range(count("entropy_samples") // 4):
        created = rel_stack.admin("key", "create", owner.project, "--json")
        keys.append(json.loads(created.output)["key"])
    assert len(set(keys)) == len(keys)
    for key in keys:
        # 40 base62 characters: 40 × log2(62) ≈ 238 bits.
        assert re.fullmatch(r"good_live_[A-Za-z0-9]{40,}", key)
    probe = DbProbe(rel_stack.settings)
    try:
        hashes = {row[0] for row in probe.rows("SELECT key_hash FROM api_key")}
        assert {hashlib.sha256(key.encode()).hexdigest() for key in keys} <= hashes
        # No column of any table holds a key, or its random part, in plaintext.
        tables = [row[0] for row in probe.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
            if not rel_stack.settings.database.startswith("sqlite") else "SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = "\n".join(repr(row) for table in tables for row in probe.rows(f"SELECT * FROM `{table}`"))
    finally:
        probe.close()
    assert not [key for key in keys if key in dump or key[len("good_live_"):] in dump]
    logs = rel_stack.settings.run_dir
    for name in os.listdir(logs):
        if name.endswith(".log"):
            with open(os.path.join(logs, name), "rb") as handle:
                text = handle.read()
            assert not [key for key in keys if key.encode() in text], name
