"""Property-based fuzzing (hypothesis) of the upload endpoint and of every JSON body and query
parameter the OpenAPI document lists: never a 5xx, every error a JSON envelope of its family.

The operations come from goodeye/openapi.yaml, so a new endpoint is fuzzed without a new test.
Runs are deterministic (`derandomize=True`) and bounded (GOODEYE_RELIABILITY_SCALE).
"""

import base64
import io

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from tests.openapi_check import load_spec
from tests.reliability.helpers import DbProbe, count, is_envelope, sha256

# Fault injection, load, fuzzing and bench smoke: left out of the inner loop (-m "not slow").
pytestmark = pytest.mark.slow

SPEC = load_spec()
FUZZ = settings(
    derandomize=True,
    max_examples=count("fuzz_examples"),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Strings a careful attacker tries first, then anything hypothesis makes up.
NASTY = [
    "", " ", "0", "-1", "1e309", "NaN", "null", "true", "[]", "{}", "../../etc/passwd", "..%2f..%2f", "%00", "\x00",
    "\r\nSet-Cookie: x=1", "<script>alert(1)</script>", "' OR 1=1 --", "@", "@@alias", "a" * 1500, "\u202e\u0000\ufeff",
    "9" * 40, "public", "private", "upload", "generated", "1:1", "16:9", "general",
]
texts = st.one_of(st.sampled_from(NASTY), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), texts,
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=8)


def node_path(ref):
    return [part.replace("~1", "/").replace("~0", "~") for part in ref.lstrip("#/").split("/")]


def resolve(node):
    """Follow `$ref`s of the document."""
    while isinstance(node, dict) and "$ref" in node:
        target = SPEC
        for part in node_path(node["$ref"]):
            target = target[part]
        node = target
    return node


def _operations():
    json_ops, query_ops = [], []
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                properties = resolve(resolve(body["schema"])).get("properties", {})
                json_ops.append(pytest.param(method, path, sorted(properties), id=f"{method.upper()} {path}"))
            query = [resolve(p)["name"] for p in op.get("parameters", []) if resolve(p).get("in") == "query"]
            if query:
                query_ops.append(pytest.param(method, path, query, id=f"{method.upper()} {path}"))
    return json_ops, query_ops


JSON_OPERATIONS, QUERY_OPERATIONS = _operations()


@pytest.fixture(scope="module")
def world(rel_stack):
    """A project with a public image and a scope: real values for every path parameter."""
    owner = rel_stack.new_owner()
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png, "PNG")
    record = requests.post(
        f"{rel_stack.url}/v1/images", headers=owner.headers,
        files={"file": ("fuzz.png", png.getvalue())}, data={"visibility": "public", "alias": "@fuzz"},
    ).json()
    scope = requests.post(f"{rel_stack.url}/api/v1/live/scopes", headers=owner.headers, json={"slug": "fuzz"})
    assert scope.status_code == 201, scope.text
    org, project = owner.project.split("/")
    values = {
        "id": record["id"], "token": record["token"], "ext": "png", "org": org, "project": project,
        "slug": "fuzz", "scope": "fuzz", "filenameOrAlias": "@fuzz",
    }
    return rel_stack, owner, values


def _url(stack, path, values):
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    if path.startswith("/v1/image-generators/"):
        path = path.replace("{id}", "builtin")
    return stack.url + path


def _family(path):
    return "upper" if path.startswith(("/cdn/", "/api/")) else "v1"


def assert_no_5xx_and_envelope(response, path):
    assert response.status_code < 500, (response.status_code, response.request.method, response.request.url, response.text[:300])
    if response.status_code >= 400 and response.request.method == "HEAD":
        # A HEAD answer carries no body: the envelope's Content-Type is what shows of it.
        assert response.headers.get("Content-Type", "").startswith("application/json"), (response.status_code, response.headers)
    elif response.status_code >= 400:
        assert is_envelope(response, _family(path)), (response.status_code, response.headers, response.content[:300])


def json_bodies(properties):
    """Objects built from the documented field names with hostile values, unknown fields, or any JSON at all."""
    documented = st.fixed_dictionaries({}, optional={name: json_values for name in properties}) if properties else st.just({})
    with_unknown = st.builds(lambda d, extra: {**d, **extra}, documented, st.dictionaries(texts, json_values, max_size=2))
    return st.one_of(documented, documented, with_unknown, json_values)


@pytest.mark.parametrize("method,path,properties", JSON_OPERATIONS)
def test_every_json_body_gets_no_5xx(world, method, path, properties):
    stack, owner, values = world
    url = _url(stack, path, values)

    @FUZZ
    @given(body=json_bodies(properties), raw=st.one_of(st.none(), st.binary(max_size=200)))
    def run(body, raw):
        with requests.Session() as session:
            if raw is None:
                response = session.request(method, url, headers=owner.headers, json=body)
            else:
                response = session.request(method, url, headers={**owner.headers, "Content-Type": "application/json"}, data=raw)
            assert_no_5xx_and_envelope(response, path)

    run()


@pytest.mark.parametrize("method,path,names", QUERY_OPERATIONS)
def test_every_query_parameter_gets_no_5xx(world, method, path, names):
    stack, owner, values = world
    url = _url(stack, path, values)
    query_values = st.one_of(texts, st.integers(min_value=-(2**66), max_value=2**66).map(str))

    @FUZZ
    @given(params=st.dictionaries(st.sampled_from(names), query_values, min_size=1), anonymous=st.booleans())
    def run(params, anonymous):
        response = requests.request(method, url, params=params, headers={} if anonymous else owner.headers)
        assert_no_5xx_and_envelope(response, path)

    run()


def _image(fmt, size=(12, 9)):
    out = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(out, fmt)
    return out.getvalue()


SEEDS = [_image("PNG"), _image("JPEG"), _image("GIF"), _image("WEBP")]


@st.composite
def upload_bytes(draw):
    """A real image, the same with a few bytes flipped, cut, or spliced, or random bytes."""
    kind = draw(st.sampled_from(["valid", "flipped", "cut", "spliced", "random"]))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    if kind == "flipped":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "spliced":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=64)) + data[at:]
    elif kind == "random":
        data = bytearray(draw(st.binary(max_size=512)))
    return bytes(data)


upload_fields = st.fixed_dictionaries({}, optional={
    "visibility": texts, "ttl_seconds": st.one_of(texts, st.integers(-5, 2**40).map(str)),
    "filename": texts, "alias": st.one_of(texts, st.from_regex(r"@[a-z0-9][a-z0-9_-]{0,70}", fullmatch=True)),
    "permanent": texts, "unknown": texts,
})


def test_uploads_of_mutated_images_get_no_5xx_and_leave_nothing_when_refused(rel_stack):
    owner = rel_stack.new_owner()
    probe = DbProbe(rel_stack.settings)
    accepted = {201, 400, 413, 415, 422}

    @FUZZ
    @given(data=upload_bytes(), fields=upload_fields, as_json=st.booleans(), filename=texts)
    def run(data, fields, as_json, filename):
        rows, blobs = probe.image_count(owner.project), rel_stack.blob_keys()
        if as_json:
            body = {**fields, "data": base64.b64encode(data).decode()}
            body.pop("unknown", None)
            response = requests.post(f"{rel_stack.url}/v1/images", headers=owner.headers, json=body)
        else:
            form = {k: v.encode("utf-8", "surrogatepass") for k, v in fields.items()}
            response = requests.post(f"{rel_stack.url}/v1/images", headers=owner.headers,
                                     files={"file": (filename, data)}, data=form)
        assert response.status_code in accepted, (response.status_code, response.text[:300])
        if response.status_code == 201:
            record = response.json()
            served = requests.get(record["url"], headers=owner.headers)
            assert served.content == data and record["sha256"] == sha256(data)
            assert requests.delete(f"{rel_stack.url}/v1/images/{record['id']}", headers=owner.headers).status_code == 204
        else:
            assert is_envelope(response)
        assert probe.image_count(owner.project) == rows and rel_stack.blob_keys() == blobs

    try:
        run()
    finally:
        probe.close()
