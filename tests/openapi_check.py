"""Hold real HTTP responses to `goodeye/openapi.yaml`.

    checker = OpenAPIChecker()
    checker.check("GET", "/v1/images/img_x", response)   # AssertionError on any mismatch
    checker.check_response(response)                      # method and path from response.request

    recorder = Recorder(checker)
    session = recorder.session()          # or recorder.attach(existing_session)
    ...                                   # every response is recorded
    with recorder.paused(): ...           # deliberate off-contract probes are not
    recorder.assert_all_documented()      # one AssertionError listing every mismatch
"""

import contextlib
import functools
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[1] / "goodeye" / "openapi.yaml"
BASE = "urn:goodeye:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_ERRORS = 5


@functools.lru_cache(maxsize=None)
def load_spec(path=SPEC_PATH):
    """The parsed document, read once per path."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _escape(token):
    return token.replace("~", "~0").replace("/", "~1")


def _template_regex(template):
    # A parameter never crosses a "/"; non-greedy so `{token}.{ext}` splits at the first dot.
    parts = re.split(r"\{([^}/]+)\}", template)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+?)" for i, part in enumerate(parts)
    )
    return re.compile(f"^{pattern}$"), len("".join(parts[::2]))


class OpenAPIChecker:
    """Matches a concrete request to a documented operation and validates the response."""

    def __init__(self, path=SPEC_PATH):
        self.spec = load_spec(Path(path))
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(BASE, resource)
        self.resolver = self.registry.resolver(BASE)
        self.templates = sorted(
            ((template, *_template_regex(template)) for template in self.spec["paths"]),
            key=lambda item: -item[2],  # most literal characters first: the most specific wins
        )

    def match(self, url_path):
        """(template, path parameters) of the most specific template matching `url_path`."""
        path = urlsplit(url_path).path
        for template, regex, _ in self.templates:
            found = regex.match(path)
            if found:
                return template, {k: unquote(v) for k, v in found.groupdict().items()}
        raise AssertionError(f"no path template of the OpenAPI document matches {path!r}")

    def _deref(self, node, pointer):
        """Follow `$ref`s of OpenAPI objects; returns (node, JSON pointer of node)."""
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].lstrip("#")
            node = self.resolver.lookup(BASE + "#" + pointer).contents
        return node, pointer

    def check(self, method, url_path, response):
        """Raise AssertionError saying what in `response` the document does not allow."""
        method = method.lower()
        template, _ = self.match(url_path)
        where = f"{method.upper()} {urlsplit(url_path).path} -> {response.status_code} (as {template})"
        item_pointer = "/paths/" + _escape(template)
        item = self.spec["paths"][template]
        operations = [m for m in METHODS if m in item]
        if method in item:
            op_method = method
        elif method == "head" and "get" in item:
            op_method = "get"  # Flask answers HEAD for every GET route
        else:
            # An undocumented method must be refused with the path's documented 405.
            if response.status_code != 405:
                raise AssertionError(f"{where}: method not documented for this path "
                                     f"(documented: {', '.join(operations)}), expected 405")
            op_method = next((m for m in operations if "405" in item[m].get("responses", {})), None)
            if op_method is None:
                raise AssertionError(f"{where}: method not documented and no 405 is documented")
        responses = item[op_method]["responses"]
        status = str(response.status_code)
        key = status if status in responses else f"{status[0]}XX" if f"{status[0]}XX" in responses else "default"
        if key not in responses:
            raise AssertionError(f"{where}: status {status} is not documented "
                                 f"(documented: {', '.join(sorted(responses))})")
        pointer = f"{item_pointer}/{op_method}/responses/{key}"
        documented, pointer = self._deref(responses[key], pointer)
        problems = self._check_headers(documented, pointer, response)
        problems += self._check_body(documented, pointer, response, method)
        if problems:
            raise AssertionError(f"{where}:\n  " + "\n  ".join(problems))

    def check_response(self, response):
        """`check` with the method and path of the request that produced `response`."""
        return self.check(response.request.method, response.request.path_url, response)

    def _validate(self, value, schema_pointer):
        validator = Draft202012Validator(
            {"$ref": BASE + "#" + schema_pointer},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(value), key=lambda e: e.json_path)
        # For anyOf/oneOf, say why each alternative failed.
        return [f"{e.json_path}: {e.message}" + (f" ({'; '.join(sorted({c.message for c in e.context}))})"
                                                 if e.context else "")
                for e in errors[:MAX_ERRORS]]

    def _check_headers(self, documented, pointer, response):
        problems = []
        for name, header in documented.get("headers", {}).items():
            header, hpointer = self._deref(header, f"{pointer}/headers/{_escape(name)}")
            value = response.headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"header {name} is required but missing")
                continue
            schema, _ = self._deref(header.get("schema", {}), hpointer + "/schema")
            if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value):
                value = int(value)
            problems += [f"header {name}={response.headers[name]!r}: {p.split(': ', 1)[1]}"
                         for p in self._validate(value, hpointer + "/schema")]
        return problems

    def _check_body(self, documented, pointer, response, method):
        content = documented.get("content")
        try:
            body = b"" if method == "head" else response.content
        except RuntimeError:  # streamed and already consumed by the test: nothing left to check
            body = None
        if not content:
            return [f"no body is documented, got {len(body)} bytes: {body[:200]!r}"] if body else []
        declared = response.headers.get("Content-Type")
        media = (declared or "").split(";")[0].strip().lower()
        if media not in content:
            return [f"Content-Type {declared!r} is not documented (documented: {', '.join(content)})"]
        if method == "head" or body is None:
            return []
        if not body:
            return [f"a {media} body is documented, got an empty body"]
        if not (media == "application/json" or media.endswith("+json")):
            return []  # binary bodies: the documented content type is the contract
        try:
            value = json.loads(body)
        except ValueError:
            return [f"body is not JSON: {body[:200]!r}"]
        if "schema" not in content[media]:
            return []
        problems = self._validate(value, f"{pointer}/content/{_escape(media)}/schema")
        return [f"body {p}" for p in problems] + ([f"body was {body[:300]!r}"] if problems else [])


class Recorder:
    """Collects every response a `requests.Session` receives, to check them all at the end."""

    def __init__(self, checker=None):
        self.checker = checker or OpenAPIChecker()
        self.responses = []
        self._paused = False

    def attach(self, session):
        """Record every response of `session` (through its `response` hook); returns it."""
        session.hooks["response"].append(self._hook)
        return session

    def session(self):
        """A new `requests.Session` whose responses are recorded."""
        return self.attach(requests.Session())

    def _hook(self, response, *args, **kwargs):
        if not self._paused:
            self.responses.append(response)

    @contextlib.contextmanager
    def paused(self):
        """Leave out responses to deliberately undocumented requests made inside the block."""
        self._paused, before = True, self._paused
        try:
            yield
        finally:
            self._paused = before

    def failures(self):
        """One message per recorded response that does not match the document."""
        messages = []
        for response in self.responses:
            try:
                self.checker.check_response(response)
            except AssertionError as exc:
                messages.append(str(exc))
        return messages

    def assert_all_documented(self):
        """Raise one AssertionError listing every mismatch among the recorded responses."""
        messages = self.failures()
        if messages:
            raise AssertionError(f"{len(messages)} of {len(self.responses)} responses do not match "
                                 "goodeye/openapi.yaml:\n" + "\n".join(messages))
