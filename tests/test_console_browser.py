"""The console, driven in a real headless Chromium (Debian's) through real nginx.

Screenshots of the grid, the image panel and a phone-sized screen are saved under
test-artifacts/console/ (see the README's Console section) for people to look at.
"""

import io
import os
import re
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image, ImageColor
from playwright.sync_api import expect, sync_playwright

from goodeye.console import CONTENT_SECURITY_POLICY
from tests.conftest import IN_CI, start_stack
from tests.factories import png
from tests.live_helpers import client
from tests.openapi_check import load_spec

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts", "console")
# Chromium reports every 4xx answer to fetch/XHR as a console error; tests that provoke
# one on purpose (a wrong key, a refused file) allow exactly those.
NETWORK_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright (no browser download: executable_path points at it)."""
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"CI=true but {CHROMIUM} is missing (scripts/test installs it with apt-get)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """One browser tab on the console, with what it logged and every URL it asked for."""

    def __init__(self, page, stack):
        self.page = page
        self.stack = stack
        self.console_errors = []
        self.page_errors = []
        self.requests = []
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))

    def open(self, path="/"):
        return self.page.goto(self.stack.url + path)

    def sign_in(self, key):
        self.open()
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    def card(self, filename):
        return self.page.get_by_role("list", name="Images").get_by_role("listitem", name=filename)

    def panel(self):
        return self.page.get_by_role("dialog", name=re.compile("."))

    def unexpected_console_errors(self):
        return [text for text in self.console_errors if not NETWORK_ERROR.match(text)]

    def foreign_requests(self):
        return [url for url in self.requests if not url.startswith((self.stack.url + "/", "blob:", "data:"))]


@pytest.fixture()
def console_tab(browser, plain_stack):
    """A fresh browser context (empty session storage) on the default stack (nginx, local blobs)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = Console(context.new_page(), plain_stack)
    yield tab
    context.close()
    assert tab.page_errors == [], "uncaught errors in the page"
    assert tab.unexpected_console_errors() == [], "console errors in the page"
    assert tab.foreign_requests() == [], "requests to another origin than the server's"


@pytest.fixture()
def owner(plain_stack):
    return plain_stack.new_owner()


def picture(size, hue):
    """A PNG with a two-colour gradient (something to look at in the screenshots)."""
    ramp = Image.linear_gradient("L").rotate(-35, expand=True).resize(size)
    start = Image.new("RGB", size, ImageColor.getrgb(f"hsl({hue}, 70%, 55%)"))
    end = Image.new("RGB", size, ImageColor.getrgb(f"hsl({(hue + 60) % 360}, 80%, 30%)"))
    buffer = io.BytesIO()
    Image.composite(end, start, ramp).save(buffer, "PNG")
    return buffer.getvalue()


def upload(stack, owner, name, size=(320, 200), hue=200, **fields):
    response = requests.post(
        f"{stack.url}/v1/images", headers=owner.headers, files={"file": (name, picture(size, hue))}, data=fields
    )
    assert response.status_code == 201, response.text
    return response.json()


def screenshot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, name))


def test_the_page_loads_clean_with_its_headers_and_signs_in_and_out(console_tab, owner):
    response = console_tab.open()
    assert response.status == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    page = console_tab.page
    page.get_by_label("API key").fill(owner.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_text(owner.project.replace("/", " / "))).to_be_visible()
    expect(page.get_by_text("No images yet.")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('goodeye.apiKey')") == owner.key
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert console_tab.console_errors == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('goodeye.apiKey')") is None


def test_a_wrong_key_shows_the_servers_message(console_tab, plain_stack):
    wrong = "good_live_" + "x" * 40
    answer = requests.get(f"{plain_stack.url}/api/v1/project", headers={"Authorization": f"Bearer {wrong}"})
    assert answer.status_code == 401
    console_tab.open()
    page = console_tab.page
    page.get_by_label("API key").fill(wrong)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text=answer.json()["error"]["message"])).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_upload_two_files_by_the_picker_and_a_refused_file_by_drop(console_tab, owner):
    console_tab.sign_in(owner.key)
    page = console_tab.page
    page.get_by_label("Upload images").set_input_files([
        {"name": "sunrise.png", "mimeType": "image/png", "buffer": png((300, 200), (250, 160, 60))},
        {"name": "harbour.png", "mimeType": "image/png", "buffer": png((200, 300), (40, 110, 200))},
    ])
    for name in ("sunrise.png", "harbour.png"):
        card = console_tab.card(name)
        expect(card).to_be_visible()
        # Private: the thumbnail is a short signed URL of a 256-wide variant (an <img> cannot send the key).
        expect(card.locator("img")).to_have_attribute("src", re.compile(r"^/v1/i/[A-Za-z0-9_-]{32}\.png\?.*w=256.*&signature="))
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=card.locator("img").element_handle())
    uploads = page.get_by_role("list").filter(has=page.get_by_text("sunrise.png"))
    expect(uploads.get_by_text("Uploaded").first).to_be_visible()

    drop = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "report.pdf", {type: "application/pdf"}));
            return transfer;
        }""",
        list(PDF),
    )
    page.dispatch_event("main", "dragenter", {"dataTransfer": drop})
    expect(page.get_by_text("Drop images to upload them")).to_be_visible()
    page.dispatch_event("main", "drop", {"dataTransfer": drop})
    refused = page.locator(".upload-row").filter(has_text="report.pdf")
    expect(refused).to_contain_text("unsupported_image_type")
    listed = requests.get(f"{console_tab.stack.url}/v1/images", headers=owner.headers).json()["data"]
    assert sorted(image["filename"] for image in listed) == ["harbour.png", "sunrise.png"]
    expect(page.get_by_role("list", name="Images").get_by_role("listitem")).to_have_count(2)


def test_the_image_panel_shares_changes_and_deletes(console_tab, owner):
    stack = console_tab.stack
    image = upload(stack, owner, "lighthouse.png", size=(800, 500), hue=20)
    other = upload(stack, owner, "keeper.png")
    console_tab.sign_in(owner.key)
    page = console_tab.page

    card = console_tab.card("lighthouse.png")
    card.get_by_role("button", name="Make public").click()
    expect(card.get_by_role("button", name="Make private")).to_be_visible()
    assert requests.get(image["url"]).status_code == 200
    expect(card.locator("img")).to_have_attribute("src", re.compile(r"^/v1/i/"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    card.get_by_role("button", name="Copy URL").click()
    expect(page.get_by_role("status").filter(has_text="Copied the URL of lighthouse.png.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == image["url"]

    card.get_by_role("button", name="Open lighthouse.png").click()
    panel = page.get_by_role("dialog", name="lighthouse.png")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("textbox", name="URL")).to_have_value(image["url"])
    expect(panel.get_by_role("textbox", name="Markdown")).to_have_value(f"![lighthouse.png]({image['url']})")
    expect(panel.get_by_role("textbox", name="HTML")).to_have_value(re.compile(r'^<img src=".+" srcset=".+\?w=\d+ \d+w'))
    page.wait_for_function("() => document.getElementById('panel-preview').naturalWidth > 0")
    screenshot(page, "panel.png")

    panel.get_by_role("button", name="Make private").click()
    expect(panel.get_by_role("button", name="Make public")).to_be_visible()
    assert requests.get(image["url"]).status_code == 401

    panel.get_by_label("Expire after").fill("2")
    panel.get_by_label("Unit").select_option(label="hours")
    panel.get_by_role("button", name="Set expiry").click()
    expect(page.get_by_role("status").filter(has_text="lighthouse.png expires")).to_be_visible()
    record = requests.get(f"{stack.url}/v1/images/{image['id']}", headers=owner.headers).json()
    assert record["expires_at"] is not None
    panel.get_by_role("button", name="Never expire").click()
    expect(panel.locator("dd").filter(has_text="never")).to_be_visible()
    assert requests.get(f"{stack.url}/v1/images/{image['id']}", headers=owner.headers).json()["expires_at"] is None

    panel.get_by_label("Alias", exact=True).fill("beacon")
    panel.get_by_role("button", name="Save alias").click()
    expect(panel.locator("dd").filter(has_text="@beacon")).to_be_visible()
    assert requests.get(f"{stack.url}/v1/images/{image['id']}", headers=owner.headers).json()["alias"] == "@beacon"

    panel.get_by_label("Replace image file").set_input_files(
        {"name": "new.png", "mimeType": "image/png", "buffer": png((111, 77), (10, 200, 90))}
    )
    expect(panel.locator("dd").filter(has_text="111 × 77")).to_be_visible()
    after = requests.get(f"{stack.url}/v1/images/{image['id']}", headers=owner.headers).json()
    assert after["sha256"] != record["sha256"] and after["url"] == record["url"]

    # Delete asks first, in the page: Cancel keeps the image.
    panel.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("alertdialog", name="Delete lighthouse.png?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert requests.get(f"{stack.url}/v1/images/{image['id']}", headers=owner.headers).status_code == 200

    panel.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete for good").click()
    expect(panel).to_be_hidden()
    expect(console_tab.card("lighthouse.png")).to_have_count(0)
    expect(console_tab.card("keeper.png")).to_be_visible()
    assert requests.get(image["url"], headers=owner.headers).status_code == 404
    assert requests.get(other["url"], headers=owner.headers).status_code == 200


def test_generate_one_image_and_see_it_in_the_grid(console_tab, owner):
    stack = console_tab.stack
    for index, prompt in enumerate(["a lighthouse at dusk", "a field of poppies", "a city in the rain"]):
        generated = requests.post(
            f"{stack.url}/v1/image-generators/builtin/generate", headers=owner.headers,
            json={"prompt": prompt, "n": 1, "aspect_ratio": ["16:9", "1:1", "3:4"][index]},
        )
        assert generated.status_code == 201, generated.text
    upload(stack, owner, "holiday.png", size=(640, 480), hue=170, visibility="public")
    console_tab.sign_in(owner.key)
    page = console_tab.page
    grid = page.get_by_role("list", name="Images")
    expect(grid.get_by_role("listitem")).to_have_count(4)

    page.get_by_text("Generate an image").click()
    page.get_by_label("Prompt").fill("a red fox in the snow")
    page.get_by_label("Aspect ratio").select_option("4:3")
    page.get_by_label("Count").fill("1")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Generated 1 image.")).to_be_visible()
    expect(grid.get_by_role("listitem")).to_have_count(5)
    newest = requests.get(f"{stack.url}/v1/images?limit=1", headers=owner.headers).json()["data"][0]
    assert newest["source"] == "generated" and newest["generation"]["prompt"] == "a red fox in the snow"
    expect(console_tab.card(newest["filename"])).to_contain_text("Generated")

    page.get_by_label("Source").select_option(label="Uploaded")
    expect(grid.get_by_role("listitem")).to_have_count(1)
    page.get_by_label("Source").select_option(label="All")
    expect(grid.get_by_role("listitem")).to_have_count(5)
    page.get_by_text("Generate an image").click()
    page.wait_for_function("() => [...document.querySelectorAll('#grid img')].every(img => img.complete && img.naturalWidth > 0)")
    page.set_viewport_size({"width": 1280, "height": 540})
    screenshot(page, "grid.png")


def test_scrolling_loads_the_next_page(console_tab, owner):
    stack = console_tab.stack
    for index in range(35):
        upload(stack, owner, f"page-{index:02d}.png")
    console_tab.sign_in(owner.key)
    grid = console_tab.page.get_by_role("list", name="Images")
    expect(grid.get_by_role("listitem")).to_have_count(30)
    console_tab.page.get_by_role("listitem", name="page-05.png").scroll_into_view_if_needed()
    expect(grid.get_by_role("listitem")).to_have_count(35)
    expect(console_tab.page.get_by_role("button", name="Load more")).to_be_hidden()


def test_live_scopes_show_their_counts_and_settings(console_tab, owner):
    stack = console_tab.stack
    created = requests.post(
        f"{stack.url}/api/v1/live/scopes", headers=owner.headers, json={"slug": "heroes", "newGenerationsLimit": 5}
    )
    assert created.status_code == 201
    org, project = owner.project.split("/")
    live = client().get(f"{stack.url}/cdn/{org}/{project}/live/heroes", params={"prompt": "a quiet harbour"})
    assert live.status_code == 200
    console_tab.sign_in(owner.key)
    page = console_tab.page
    page.get_by_role("link", name="Live scopes").click()
    scope = page.get_by_role("list", name="Live scopes").get_by_role("listitem", name="heroes")
    expect(scope).to_contain_text("1 of 5 generations used")
    scope.get_by_label("Allow new generations").uncheck()
    scope.get_by_label("Generation limit").fill("8")
    scope.get_by_role("button", name="Save").click()
    expect(page.get_by_role("list", name="Live scopes").get_by_role("listitem", name="heroes")).to_contain_text("1 of 8 generations used")
    screenshot(page, "scopes.png")
    saved = requests.get(f"{stack.url}/api/v1/live/scopes/heroes", headers=owner.headers).json()["data"]
    assert (saved["allowNewGenerations"], saved["newGenerationsLimit"]) == (False, 8)


def test_a_phone_and_the_keyboard_alone(browser, plain_stack, owner):
    upload(plain_stack, owner, "pocket.png")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = Console(context.new_page(), plain_stack)
    page = tab.page
    try:
        tab.open()
        expect(page.get_by_label("API key")).to_be_focused()
        page.keyboard.type(owner.key)
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        opener = tab.card("pocket.png").get_by_role("button", name="Open pocket.png")
        expect(opener).to_be_visible()
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.getAttribute('aria-label')") == "Open pocket.png":
                break
        expect(opener).to_be_focused()
        page.keyboard.press("Enter")
        panel = page.get_by_role("dialog", name="pocket.png")
        expect(panel).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(opener).to_be_focused()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "phone.png")
    finally:
        context.close()
    assert tab.page_errors == [] and tab.unexpected_console_errors() == [] and tab.foreign_requests() == []


def test_the_api_docs_render_every_operation(console_tab):
    response = console_tab.open("/docs")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page = console_tab.page
    spec = load_spec()
    expect(page.get_by_role("heading", name=f"Goodeye API {spec['info']['version']}")).to_be_visible()
    operations = [
        (method, path) for path, item in spec["paths"].items() for method in item if method in ("get", "post", "put", "patch", "delete", "head")
    ]
    expect(page.locator("section.operation h3")).to_have_count(len(operations) + len(spec["components"]["schemas"]))
    expect(page.get_by_role("link", name="POST /v1/images", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="POST /v1/images", exact=True)).to_contain_text("unsupported_image_type")
    assert console_tab.console_errors == []
    assert {urlsplit(url).path for url in console_tab.requests} >= {"/docs", "/openapi.json"}
    screenshot(page, "docs.png")


@pytest.fixture(scope="module")
def limited_stack(stack_root, mysql_databases, database_kind):
    """A stack that allows one new variant render per hour to a caller without a key or a signed URL."""
    running = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_VARIANT_RENDER_LIMIT="1/hour")
    yield running
    running.stack.stop()


def test_thumbnails_past_the_anonymous_render_limit_load_signed(browser, limited_stack):
    # The console loads from the owner's address: its thumbnails' first renders must not run
    # out of what that address may render anonymously.
    owner = limited_stack.new_owner()
    names = [f"public-{index}.png" for index in range(3)] + [f"private-{index}.png" for index in range(3)]
    for index, name in enumerate(names):
        upload(limited_stack, owner, name, hue=40 * index, visibility="public" if name.startswith("public") else "private")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = Console(context.new_page(), limited_stack)
    tab.sign_in(owner.key)
    for name in names:
        img = tab.card(name).locator("img")
        expect(img).to_be_visible()
        tab.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    # Public thumbnails load from their plain URL while the limit allows, then from a signed one.
    sources = [tab.card(name).locator("img").get_attribute("src") for name in names[:3]]
    assert any("signature=" not in source for source in sources) and any("signature=" in source for source in sources)
    context.close()
    assert tab.page_errors == [] and tab.unexpected_console_errors() == [] and tab.foreign_requests() == []
