"""The console's files, /docs, /openapi.json and /favicon.ico: the same bytes and headers whether
nginx serves them (GOODEYE_ACCEL=nginx) or Flask does (GOODEYE_ACCEL=off)."""

import configparser
import fnmatch
import json
import os
import re

import pytest
import requests
import yaml

from goodeye import console

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECURITY_HEADERS = {name.lower(): value for name, value in console.SECURITY_HEADERS.items()}


def assert_console_headers(response, cache_control):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert response.headers["Cache-Control"] == cache_control


def assets_named_by(page):
    return re.findall(r'"/console/([0-9a-f]{12})/([a-z]+\.(?:js|css))"', page)


@pytest.mark.parametrize("path,page", [("/", "index.html"), ("/docs", "docs.html")])
def test_pages_name_their_assets_under_the_current_version(stack, path, page):
    response = requests.get(stack.url + path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert_console_headers(response, console.REVALIDATE)
    assert console.VERSION_PLACEHOLDER not in response.text
    assets = assets_named_by(response.text)
    assert assets and {version for version, _name in assets} == {console.asset_version()}
    assert response.text == console.render_page(page).decode()


def test_assets_are_immutable_under_their_versioned_url(stack):
    base = f"{stack.url}/console/{console.asset_version()}"
    for name in sorted(os.listdir(console.STATIC_DIR)):
        if name in console.PAGES:
            continue
        response = requests.get(f"{base}/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == console.content_type(name)
        assert_console_headers(response, console.IMMUTABLE)
        with open(os.path.join(console.STATIC_DIR, name), "rb") as handle:
            assert response.content == handle.read(), name
    # ES modules import each other by relative path, so they are all under the versioned path.
    app = requests.get(f"{base}/app.js").text
    assert re.search(r'from "\./images\.js"', app)


@pytest.mark.parametrize("path", [
    "/console/000000000000/app.js",  # an old version: gone, not served under a stale name
    "/console/{version}/index.html",  # pages only at / and /docs, with the version filled in
    "/console/{version}/missing.js",
])
def test_anything_else_under_console_is_a_json_404(stack, path):
    response = requests.get(stack.url + path.format(version=console.asset_version()))
    assert response.status_code == 404
    assert response.json()["error"]["code"] in ("not_found", "image_not_found")


@pytest.mark.parametrize("path", [
    "/console/{version}/../__init__.py",
    "/console/{version}/..%2f__init__.py",
    "/console/{version}/%2e%2e/views.py",
    "/console/{version}/..%2f..%2fopenapi.yaml",
    "/console/{version}/%2e%2e%2f%2e%2e%2f%2e%2e%2fsetup.cfg",
])
def test_no_path_climbs_out_of_the_static_dir(stack, path):
    session = requests.Session()
    request = requests.Request("GET", stack.url + "/").prepare()
    request.url = stack.url + path.format(version=console.asset_version())  # after preparing: dots kept
    response = session.send(request)
    assert response.status_code in (400, 404)
    assert response.json()["error"]["code"] in ("invalid_request", "not_found", "image_not_found")


def test_openapi_json_is_the_yaml_document(stack):
    response = requests.get(f"{stack.url}/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert_console_headers(response, console.REVALIDATE)
    with open(os.path.join(REPO_ROOT, "goodeye", "openapi.yaml"), encoding="utf-8") as handle:
        assert response.json() == yaml.safe_load(handle)


def test_favicon_is_an_icon(stack):
    response = requests.get(f"{stack.url}/favicon.ico")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"
    assert_console_headers(response, console.FAVICON_CACHE)


def test_a_write_to_a_page_is_a_json_405(stack):
    response = requests.post(f"{stack.url}/", data=b"x")
    assert response.status_code == 405
    assert json.loads(response.content)["error"]["code"] == "method_not_allowed"


def test_a_non_editable_install_ships_every_static_file():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO_ROOT, "setup.cfg"))
    patterns = parser["options.package_data"]["goodeye.console"].split()
    for name in os.listdir(console.STATIC_DIR):
        assert os.path.isfile(os.path.join(console.STATIC_DIR, name)), f"{name}: package_data globs are flat"
        assert any(fnmatch.fnmatch(f"static/{name}", pattern) for pattern in patterns), name


def test_flask_serves_only_static_files_of_a_known_type(tmp_path, monkeypatch):
    from goodeye import create_app
    from goodeye.config import load_settings
    from goodeye.console import views

    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_bytes(b"export {};\n")
    (static / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (static / "notes").write_bytes(b"left behind\n")
    monkeypatch.setattr(views, "STATIC_DIR", str(static))
    client = create_app(load_settings({"GOODEYE_DATA_DIR": str(tmp_path / "data"), "GOODEYE_ACCEL": "off"})).test_client()
    base = f"/console/{console.asset_version()}"
    assert client.get(f"{base}/app.js").data == b"export {};\n"
    for name in (".DS_Store", "notes"):
        response = client.get(f"{base}/{name}")
        assert (response.status_code, response.json["error"]["code"]) == (404, "not_found"), name
