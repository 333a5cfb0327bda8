"""The OpenAPI document is valid, and the checker holds responses to it."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import openapi_spec_validator
from jsonschema import Draft202012Validator
from requests.structures import CaseInsensitiveDict

from tests.openapi_check import BASE, METHODS, OpenAPIChecker, Recorder, load_spec


SPEC = load_spec()
TOKEN = "Q2hlY2tlZC1ieS10aGUtb3BlbmFwaS1kb2M"
RECORD = {
    "id": "img_4bXq9TzK2mLpR7sVw1yN0c",
    "token": TOKEN,
    "url": f"http://goodeye.test/v1/i/{TOKEN}.png",
    "visibility": "private",
    "source": "upload",
    "content_type": "image/png",
    "size_bytes": 169_000,
    "width": 640,
    "height": 480,
    "sha256": "ab" * 32,
    "filename": "photo.png",
    "alias": "@hero",
    "expires_at": None,
    "created_at": "2025-11-28T10:00:00Z",
    "updated_at": "2025-11-28T10:00:00.123456+00:00",
}
PNG_HEADERS = {
    "Content-Type": "image/png",
    "Cache-Control": "public, max-age=600",
    "ETag": '"' + "ab" * 32 + '"',
    "Last-Modified": "Fri, 28 Nov 2025 10:00:00 GMT",
    "X-Content-Type-Options": "nosniff",
}


@pytest.fixture(scope="module")
def checker():
    return OpenAPIChecker()


def fake(method, path, status, body=b"", headers=None):
    """A `requests.Response` as if `method path` had answered `status` with `body`."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers = CaseInsensitiveDict(headers)
    response.url = "http://goodeye.test" + path
    response.request = requests.Request(method, response.url).prepare()
    return response


def v1_error(code):
    return {"error": {"code": code, "message": "Something specific."}}


def live_error(code):
    return {"success": False, "error": {"code": code, "message": "Something specific."}}


def operations():
    for template, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield template, method, item, item[method]


def walk(node, pointer=""):
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            yield from walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{pointer}/{i}")


# --- the document ----------------------------------------------------------------


def test_document_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1")
    openapi_spec_validator.validate(SPEC)


def test_validator_notices_a_broken_document():
    broken = json.loads(json.dumps(SPEC))
    broken["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/NoSuchSchema"
    }
    with pytest.raises(Exception, match="NoSuchSchema"):
        openapi_spec_validator.validate(broken)
    broken = json.loads(json.dumps(SPEC))
    del broken["paths"]["/v1/images/{id}"]["parameters"]
    with pytest.raises(Exception, match="Path parameter 'id'"):
        openapi_spec_validator.validate(broken)


def test_every_ref_resolves(checker):
    refs = [(pointer, node["$ref"]) for pointer, node in walk(SPEC) if isinstance(node.get("$ref"), str)]
    assert refs
    for pointer, ref in refs:
        assert ref.startswith("#/"), f"{pointer}: only local refs are used, got {ref}"
        checker.resolver.lookup(BASE + ref)  # raises if it does not resolve


def test_every_schema_is_valid_json_schema_2020_12():
    for name, schema in SPEC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    for pointer, node in walk(SPEC["paths"]):
        if isinstance(node.get("schema"), dict):
            Draft202012Validator.check_schema(node["schema"])


def test_operation_ids_are_unique():
    ids = [op["operationId"] for _, _, _, op in operations()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("template,method", [(t, m) for t, m, _, _ in operations()])
def test_operation_is_complete(checker, template, method):
    item = SPEC["paths"][template]
    op = item[method]
    responses = op["responses"]
    assert any(code.startswith("2") for code in responses), "no success response"
    # Every error nginx itself can produce, and a 405 for the methods not listed.
    for code in ("405", "414", "500", "502", "504"):
        assert code in responses, f"{method.upper()} {template} does not document {code}"
    declared = {
        p["name"]
        for p in [checker._deref(p, "")[0] for p in item.get("parameters", []) + op.get("parameters", [])]
        if p["in"] == "path"
    }
    assert declared == set(re.findall(r"\{([^}]+)\}", template))
    # Each family answers errors in its own envelope, except nginx's 414, which comes before
    # nginx has read the path and so is always /v1's.
    envelope = "LiveError" if template.startswith(("/cdn/", "/api/")) else "V1Error"
    for code, response in responses.items():
        if code == "414":
            assert response == {"$ref": "#/components/responses/UriTooLong"}
        elif int(code) >= 400:
            resolved, _ = checker._deref(response, "")
            assert f"#/components/schemas/{envelope}" in json.dumps(resolved), f"{code} is not a {envelope}"


def test_error_codes_cover_the_design():
    v1 = set(SPEC["components"]["schemas"]["V1ErrorCode"]["enum"])
    assert {
        "invalid_request", "auth_required", "invalid_api_key", "image_not_found", "generator_not_found",
        "image_too_large", "unsupported_image_type", "invalid_image", "image_too_large_dimensions",
        "rate_limited", "generation_failed", "service_unavailable", "internal_error",
    } <= v1
    live = set(SPEC["components"]["schemas"]["LiveErrorCode"]["enum"])
    assert {
        "SCOPE_INVALID_FORMAT", "SCOPE_CREATION_DISABLED", "ORG_NOT_FOUND", "PROJECT_NOT_FOUND",
        "SCOPE_NOT_FOUND", "SCOPE_ALREADY_EXISTS", "IP_RATE_LIMIT_EXCEEDED",
        "SCOPE_GENERATION_LIMIT_EXCEEDED", "IMAGE_NOT_FOUND", "VALIDATION_ERROR", "GENERATION_DISABLED",
        "GENERATION_FAILED", "UNAUTHORIZED", "INVALID_API_KEY",
    } <= live


def test_x_api_key_is_accepted_by_the_api_v1_family_only():
    for template, _, _, op in operations():
        schemes = {name for requirement in op.get("security", []) for name in requirement}
        assert ("apiKeyHeader" in schemes) == template.startswith("/api/v1/"), template


# --- path matching ---------------------------------------------------------------


@pytest.mark.parametrize("path,template,params", [
    (f"/v1/i/{TOKEN}.png", "/v1/i/{token}.{ext}", {"token": TOKEN, "ext": "png"}),
    (f"/v1/i/{TOKEN}.jpeg?download=1", "/v1/i/{token}.{ext}", {"token": TOKEN, "ext": "jpeg"}),
    ("/v1/images", "/v1/images", {}),
    ("/v1/images/img_abc", "/v1/images/{id}", {"id": "img_abc"}),
    ("/v1/image-generators/builtin/generate", "/v1/image-generators/{id}/generate", {"id": "builtin"}),
    ("/cdn/acme/website/img/hero-background.jpg", "/cdn/{org}/{project}/img/{filenameOrAlias}",
     {"org": "acme", "project": "website", "filenameOrAlias": "hero-background.jpg"}),
    ("/cdn/acme/website/img/%40hero", "/cdn/{org}/{project}/img/{filenameOrAlias}",
     {"org": "acme", "project": "website", "filenameOrAlias": "@hero"}),
    ("/cdn/acme/website/live/hero?prompt=a+cat", "/cdn/{org}/{project}/live/{scope}",
     {"org": "acme", "project": "website", "scope": "hero"}),
    ("/api/v1/live?prompt=x", "/api/v1/live", {}),
    ("/api/v1/live/scopes", "/api/v1/live/scopes", {}),
    ("/api/v1/live/scopes/hero/regenerate", "/api/v1/live/scopes/{slug}/regenerate", {"slug": "hero"}),
])
def test_match(checker, path, template, params):
    assert checker.match(path) == (template, params)


@pytest.mark.parametrize("path", ["/v1/i/tokenwithoutext", "/v1/images/a/b", "/nope", "/cdn/acme/img/x"])
def test_match_refuses_unknown_paths(checker, path):
    with pytest.raises(AssertionError, match="no path template"):
        checker.match(path)


def test_most_specific_literal_template_wins(tmp_path):
    doc = tmp_path / "spec.yaml"
    ok = {"responses": {"200": {"description": "ok"}}}
    doc.write_text(json.dumps({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {
        "/things/{id}": {"get": ok}, "/things/mine": {"get": ok}, "/{any}/mine": {"get": ok}}}))
    checker = OpenAPIChecker(doc)
    assert checker.match("/things/mine")[0] == "/things/mine"
    assert checker.match("/things/t1")[0] == "/things/{id}"
    assert checker.match("/others/mine")[0] == "/{any}/mine"


# --- JSON responses --------------------------------------------------------------


def test_valid_record_passes(checker):
    checker.check("GET", "/v1/images/img_abc", fake("GET", "/v1/images/img_abc", 200, RECORD))
    generated = dict(RECORD, source="generated", generation={"prompt": "a cat"}, scope=None)
    checker.check("POST", "/v1/images", fake("POST", "/v1/images", 201, generated))


@pytest.mark.parametrize("change,expected", [
    ({"sha256": None}, "'sha256' is a required property"),
    ({"visibility": "unlisted"}, "$.visibility: 'unlisted' is not one of"),
    ({"id": "abc"}, "$.id: 'abc' does not match"),
    ({"expires_at": "tomorrow"}, "$.expires_at: 'tomorrow' is not valid under any of the given schemas ("),
    ({"created_at": "2025-11-28T10:00:00+02:00"}, "$.created_at"),
    ({"url": f"http://goodeye.test/v1/images/{TOKEN}"}, "$.url"),
    ({"colour": "red"}, "Unevaluated properties are not allowed ('colour' was unexpected)"),
])
def test_invalid_record_fails_with_what_did_not_match(checker, change, expected):
    record = {k: v for k, v in {**RECORD, **change}.items() if v is not None or k not in change}
    response = fake("GET", "/v1/images/img_abc", 200, record)
    with pytest.raises(AssertionError) as info:
        checker.check("GET", "/v1/images/img_abc", response)
    assert expected in str(info.value)
    assert "GET /v1/images/img_abc -> 200 (as /v1/images/{id})" in str(info.value)


def test_list_page(checker):
    body = {"data": [RECORD, RECORD], "next_cursor": None}
    checker.check("GET", "/v1/images?limit=2", fake("GET", "/v1/images", 200, body))
    with pytest.raises(AssertionError, match="'next_cursor' is a required property"):
        checker.check("GET", "/v1/images", fake("GET", "/v1/images", 200, {"data": []}))


def test_undocumented_status_fails(checker):
    with pytest.raises(AssertionError, match=r"status 418 is not documented \(documented: 200, 401, 404"):
        checker.check("GET", "/v1/images/img_abc", fake("GET", "/v1/images/img_abc", 418, v1_error("internal_error")))


def test_error_code_must_fit_the_status(checker):
    path = "/v1/images/img_abc"
    checker.check("GET", path, fake("GET", path, 404, v1_error("image_not_found")))
    with pytest.raises(AssertionError, match=r"\$.error.code: 'image_not_found' was expected"):
        checker.check("GET", path, fake("GET", path, 404, v1_error("invalid_request")))
    with pytest.raises(AssertionError, match="'success' was unexpected"):
        checker.check("GET", path, fake("GET", path, 404, live_error("IMAGE_NOT_FOUND")))


def test_rate_limited_needs_retry_after(checker):
    body = v1_error("rate_limited")
    checker.check("GET", "/v1/images", fake("GET", "/v1/images", 429, body, {"Retry-After": "30"}))
    with pytest.raises(AssertionError, match="header Retry-After is required but missing"):
        checker.check("GET", "/v1/images", fake("GET", "/v1/images", 429, body))
    with pytest.raises(AssertionError, match="header Retry-After='soon'"):
        checker.check("GET", "/v1/images", fake("GET", "/v1/images", 429, body, {"Retry-After": "soon"}))


def test_delete_has_no_body(checker):
    path = "/v1/images/img_abc"
    checker.check("DELETE", path, fake("DELETE", path, 204))
    with pytest.raises(AssertionError, match="no body is documented, got 2 bytes"):
        checker.check("DELETE", path, fake("DELETE", path, 204, b"{}"))


def test_non_json_error_fails(checker):
    response = fake("POST", "/v1/images", 413, b"<html>413 Request Entity Too Large</html>",
                    {"Content-Type": "text/html"})
    with pytest.raises(AssertionError, match="Content-Type 'text/html' is not documented"):
        checker.check("POST", "/v1/images", response)


def test_generation(checker):
    path = "/v1/image-generators/builtin/generate"
    body = {
        "generation_id": "gen_1", "generator": "builtin", "prompt": "a cat", "enhanced_prompt": None,
        "image_urls": [RECORD["url"], "https://provider.example/x.png"],
        "hosted_images": [{k: RECORD[k] for k in ("id", "url", "visibility", "expires_at")}, None],
    }
    checker.check("POST", path, fake("POST", path, 201, body))
    with pytest.raises(AssertionError, match=r"\$.hosted_images\[1\]"):
        checker.check("POST", path, fake("POST", path, 201, dict(body, hosted_images=[None, {"id": "x"}])))


def test_probes(checker):
    checker.check("GET", "/healthz", fake("GET", "/healthz", 200, {"status": "ok"}))
    ready = {"status": "ready", "checks": {"database": "ok", "storage": "ok"}}
    checker.check("GET", "/readyz", fake("GET", "/readyz", 200, ready))
    checker.check("GET", "/readyz", fake("GET", "/readyz", 503, v1_error("service_unavailable")))


def test_live_family(checker):
    scope = {
        "id": "scope-123", "projectId": "project-456", "slug": "hero-section", "allowNewGenerations": True,
        "newGenerationsLimit": 50, "currentGenerations": 0, "lastGeneratedAt": None,
        "meta": {"description": "Hero section images"}, "createdAt": "2025-11-28T10:00:00.000Z",
    }
    page = {"success": True, "data": [scope], "pagination": {"limit": 20, "offset": 0, "total": 1, "hasMore": False}}
    checker.check("GET", "/api/v1/live/scopes", fake("GET", "/api/v1/live/scopes", 200, page))
    checker.check("POST", "/api/v1/live/scopes", fake("POST", "/api/v1/live/scopes", 201, {"success": True, "data": scope}))
    path = "/api/v1/live/scopes/nope"
    checker.check("GET", path, fake("GET", path, 404, live_error("SCOPE_NOT_FOUND")))
    del page["pagination"]["hasMore"]
    with pytest.raises(AssertionError, match="'hasMore' is a required property"):
        checker.check("GET", "/api/v1/live/scopes", fake("GET", "/api/v1/live/scopes", 200, page))


# --- binary responses ------------------------------------------------------------


def test_image_bytes(checker):
    path = f"/v1/i/{TOKEN}.png"
    checker.check("GET", path, fake("GET", path, 200, b"\x89PNG...", PNG_HEADERS))
    private = dict(PNG_HEADERS, **{"Cache-Control": "private, no-store"})
    checker.check("GET", path, fake("GET", path, 200, b"\x89PNG...", private))
    checker.check("HEAD", path, fake("HEAD", path, 200, b"", PNG_HEADERS))
    checker.check("GET", path, fake("GET", path, 304, b"", {k: PNG_HEADERS[k] for k in ("ETag", "Last-Modified")}))
    checker.check("HEAD", path, fake("HEAD", path, 404, b"", {"Content-Type": "application/json"}))


@pytest.mark.parametrize("change,expected", [
    ({"Content-Type": "text/html"}, "Content-Type 'text/html' is not documented"),
    ({"Content-Type": "image/svg+xml"}, "Content-Type 'image/svg+xml' is not documented"),
    ({"ETag": None}, "header ETag is required but missing"),
    ({"ETag": '"65a1-1a3"'}, "header ETag='\"65a1-1a3\"'"),
    ({"Last-Modified": None}, "header Last-Modified is required but missing"),
    ({"X-Content-Type-Options": None}, "header X-Content-Type-Options is required but missing"),
    ({"Cache-Control": "max-age=600"}, "header Cache-Control='max-age=600'"),
])
def test_image_bytes_mismatch(checker, change, expected):
    headers = {k: v for k, v in {**PNG_HEADERS, **change}.items() if v is not None}
    path = f"/v1/i/{TOKEN}.png"
    with pytest.raises(AssertionError, match=re.escape(expected)):
        checker.check("GET", path, fake("GET", path, 200, b"\x89PNG...", headers))


def test_image_bytes_must_not_be_empty(checker):
    path = f"/v1/i/{TOKEN}.png"
    with pytest.raises(AssertionError, match="image/png body is documented, got an empty body"):
        checker.check("GET", path, fake("GET", path, 200, b"", PNG_HEADERS))


def test_cdn_live_headers(checker):
    path = "/cdn/acme/website/live/hero?prompt=a+cat"
    hit = {"Content-Type": "image/jpeg", "Cache-Control": "public, max-age=31536000", "X-Content-Type-Options": "nosniff",
           "X-Cache-Status": "HIT", "X-Scope": "hero", "X-Image-Id": RECORD["id"],
           "ETag": PNG_HEADERS["ETag"], "Last-Modified": PNG_HEADERS["Last-Modified"]}
    checker.check("GET", path, fake("GET", path, 200, b"\xff\xd8\xff", hit))
    miss = dict(hit, **{"X-Cache-Status": "MISS", "X-Generation-Id": "gen_1", "X-RateLimit-Limit": "10",
                        "X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "3600"})
    checker.check("GET", path, fake("GET", path, 200, b"\xff\xd8\xff", miss))
    with pytest.raises(AssertionError, match="header X-RateLimit-Remaining='many'"):
        checker.check("GET", path, fake("GET", path, 200, b"\xff\xd8\xff", dict(miss, **{"X-RateLimit-Remaining": "many"})))
    with pytest.raises(AssertionError, match="header X-Cache-Status='STALE'"):
        checker.check("GET", path, fake("GET", path, 200, b"\xff\xd8\xff", dict(hit, **{"X-Cache-Status": "STALE"})))
    checker.check("HEAD", path, fake("HEAD", path, 200, b"", hit))  # HEAD falls back to the GET operation


# --- methods ---------------------------------------------------------------------


def test_undocumented_method_must_be_405(checker):
    path = "/v1/images/img_abc"
    allow = {"Allow": "GET, HEAD, PATCH, DELETE, OPTIONS"}
    checker.check("PUT", path, fake("PUT", path, 405, v1_error("method_not_allowed"), allow))
    with pytest.raises(AssertionError, match="header Allow is required but missing"):
        checker.check("PUT", path, fake("PUT", path, 405, v1_error("method_not_allowed")))
    with pytest.raises(AssertionError, match="method not documented for this path .* expected 405"):
        checker.check("PUT", path, fake("PUT", path, 200, RECORD))
    live = "/api/v1/live/scopes"
    checker.check("DELETE", live, fake("DELETE", live, 405, live_error("METHOD_NOT_ALLOWED"), allow))


# --- the recorder ----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Answers /healthz as documented and /readyz off-contract."""

    def do_GET(self):
        body = b'{"status": "ok"}' if self.path == "/healthz" else b'{"status": "fine"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_recorder_collects_and_checks_every_response(checker, server):
    recorder = Recorder(checker)
    with recorder.session() as session:
        session.get(server + "/healthz")
        with recorder.paused():
            session.get(server + "/readyz")
        recorder.assert_all_documented()
        session.get(server + "/readyz")
    assert len(recorder.responses) == 2
    with pytest.raises(AssertionError) as info:
        recorder.assert_all_documented()
    message = str(info.value)
    assert "1 of 2 responses do not match" in message
    assert "GET /readyz -> 200 (as /readyz)" in message
    assert "body $.status: 'ready' was expected" in message
