"""`<img srcset sizes>` in a real headless Chromium (Debian's): the browser asks for the right width and gets it.

A page on another origin (a local http.server, like any website) holds one
image in the README's srcset shape for each kind of serving URL: the token URL,
a /cdn name by filename and by alias, a live URL and a private image's signed
URLs. Each viewport and device scale factor must make Chromium request exactly
the candidate its sizes call for, get an image of that width in a format it
accepts (AVIF for fm=auto, with Vary: Accept), and never be refused.
"""

import io
import json
import secrets
import threading
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
import requests
from PIL import Image, ImageColor, ImageDraw

from tests.live_helpers import start_live_stack
from tests.test_console_browser import browser  # noqa: F401 (the fixture: Debian's Chromium under Playwright)

pytestmark = pytest.mark.browser

LADDER = (384, 640, 1080, 1920)
SIZES = "(max-width: 700px) 100vw, 640px"
ORIGINAL = (2000, 1250)
# The builtin generator draws a 16:9 live image 1024 pixels wide; scale-down never enlarges it.
LIVE_WIDTH = 1024
# (viewport width, device scale factor) -> the candidate the slot asks for: the slot
# (100vw up to 700px, else 640px) times the scale factor is a ladder width, or just
# under one, so no browser heuristic between two candidates is involved.
CASES = [
    ((1280, 1), 640),
    ((375, 1), 384),
    ((360, 3), 1080),
    ((1280, 3), 1920),
]


def slot(viewport):
    """The CSS width `SIZES` gives the image at this viewport width."""
    return viewport if viewport <= 700 else 640


@pytest.fixture(scope="module")
def srcset_stack(stack_root, mysql_databases, database_kind):
    """A stack with the default limits counted in Redis (under a prefix of its own), as a deployment keeps them."""
    running = start_live_stack(stack_root, mysql_databases, database_kind)
    yield running
    running.stack.stop()


class Site:
    """Another origin serving HTML pages from memory, as the website embedding the images would."""

    def __init__(self):
        self.pages = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def site():
    with Site() as running:
        yield running


def photo(size, hue, label):
    """A JPEG with a gradient, a grid and a label, so a screenshot shows which image is which."""
    ramp = Image.linear_gradient("L").rotate(-35, expand=True).resize(size)
    start = Image.new("RGB", size, ImageColor.getrgb(f"hsl({hue}, 70%, 55%)"))
    end = Image.new("RGB", size, ImageColor.getrgb(f"hsl({(hue + 60) % 360}, 80%, 30%)"))
    picture = Image.composite(end, start, ramp)
    draw = ImageDraw.Draw(picture)
    for x in range(0, size[0], 125):
        draw.line([(x, 0), (x, size[1])], fill="white", width=4)
    for y in range(0, size[1], 125):
        draw.line([(0, y), (size[0], y)], fill="white", width=4)
    draw.text((60, 60), label, fill="white", font_size=160)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload(stack, owner, name, data, **fields):
    response = requests.post(
        f"{stack.url}/v1/images", headers=owner.headers, files={"file": (name, data)}, data={"filename": name, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()


def with_query(url, **params):
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def srcset_img(name, candidates):
    """The README's <img src srcset sizes> for `candidates` (width -> URL), the 640 one as src."""
    srcset = ",\n             ".join(f"{escape(url)} {width}w" for width, url in candidates.items())
    return (
        f'<figure><img id="{name}" src="{escape(candidates[640])}"\n     srcset="{srcset}"\n'
        f'     sizes="{SIZES}" alt="{name}"><figcaption>{name}</figcaption></figure>'
    )


def page_html(images):
    style = (
        "body{margin:0;font:14px sans-serif} figure{margin:0 0 8px} figcaption{padding:2px 4px}"
        "img{display:block;width:640px;height:auto} @media (max-width:700px){img{width:100vw}}"
    )
    figures = "\n".join(srcset_img(name, candidates) for name, candidates in images.items())
    return f"<!doctype html><html><head><meta name=viewport content='width=device-width'><style>{style}</style></head><body>\n{figures}\n</body></html>"


@pytest.fixture(scope="module")
def srcset_page(srcset_stack, site):
    """One page with five images in srcset shape: ({img id: (width -> URL, the source's width)}, the page's URL)."""
    stack = srcset_stack
    owner = stack.new_owner()
    public = upload(stack, owner, "harbour.jpg", photo(ORIGINAL, 200, "public"), visibility="public", alias="harbour")
    private = upload(stack, owner, "garden.jpg", photo(ORIGINAL, 20, "private signed"))
    cdn = f"{stack.url}/cdn/{owner.project}"
    live = f"{cdn}/live/srcset-{secrets.token_hex(3)}?" + urlencode({"prompt": "a lighthouse at dusk", "aspectRatio": "16:9"})

    def signed(width):
        answer = requests.post(
            f"{stack.url}/v1/images/{private['id']}/signed-url", headers=owner.headers,
            json={"expires_in": 3600, "w": width, "fm": "auto"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["url"]

    images = {
        "token": ({w: with_query(public["url"], w=w, fm="auto") for w in LADDER}, ORIGINAL[0]),
        "cdn-filename": ({w: with_query(f"{cdn}/img/harbour.jpg", w=w, fm="auto") for w in LADDER}, ORIGINAL[0]),
        "cdn-alias": ({w: with_query(f"{cdn}/img/@harbour", w=w, fm="auto") for w in LADDER}, ORIGINAL[0]),
        "live": ({w: with_query(live, w=w, fm="auto") for w in LADDER}, LIVE_WIDTH),
        "signed": ({w: signed(w) for w in LADDER}, ORIGINAL[0]),
    }
    path = f"/srcset-{secrets.token_hex(4)}.html"
    site.pages[path] = page_html({name: candidates for name, (candidates, _width) in images.items()})
    return images, site.url + path


def variants_stored(stack):
    result = stack.admin("variants", "stats", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["variants"]


def load(browser, page_url, stack, viewport, scale, screenshot_path=None):
    """Open the page in a fresh context; (what the stack answered each request, each image's currentSrc and naturalWidth).

    An answer is (URL, status, headers, request headers, body); a request that got no
    answer the page could use has status None (Chromium blocks a cross-origin JSON error
    to an <img> before it reaches the page).
    """
    context = browser.new_context(viewport={"width": viewport, "height": 900}, device_scale_factor=scale)
    asked = []
    try:
        page = context.new_page()
        page.on("request", lambda request: request.url.startswith(stack.url) and asked.append(request))
        page.goto(page_url, wait_until="load")
        page.wait_for_function("[...document.images].every(img => img.complete)")
        shown = page.evaluate(
            "Object.fromEntries([...document.images].map(img => [img.id, [img.currentSrc, img.naturalWidth]]))"
        )
        if screenshot_path:
            page.screenshot(path=screenshot_path, full_page=True)
        found = []
        for request in asked:
            response = None if request.failure else request.response()
            if response is None:
                found.append((request.url, None, {}, request.all_headers(), b""))
            else:
                found.append((request.url, response.status, response.all_headers(), request.all_headers(), response.body()))
    finally:
        context.close()
    return found, shown


def test_each_viewport_loads_the_width_its_sizes_ask_for(browser, srcset_stack, srcset_page, tmp_path):
    images, page_url = srcset_page
    by_url = {url: (name, width) for name, (candidates, _source) in images.items() for width, url in candidates.items()}
    # First every variant is rendered on request; again, each is served as stored.
    for round_ in ("first", "again"):
        for index, ((viewport, scale), wanted) in enumerate(CASES):
            shot = tmp_path / f"srcset-{viewport}x{scale}-{round_}.png"
            answers, shown = load(browser, page_url, srcset_stack, viewport, scale, shot)
            where = f"viewport {viewport}px at {scale}x ({round_} load)"

            # (a) one request per image, for the candidate the slot asks for.
            asked = sorted(by_url[url] for url, *_rest in answers)
            assert asked == sorted((name, wanted) for name in images), where
            received = {}
            for url, status, headers, request_headers, body in answers:
                name, _width = by_url[url]
                assert status == 200, f"{where}: {name} answered {status}: {url}"
                # (c) fm=auto: Chromium names AVIF first, and gets it; the answer varies on Accept.
                assert "image/avif" in request_headers["accept"], where
                assert headers["content-type"] == "image/avif", f"{where}: {name}"
                assert headers["vary"] == "Accept", f"{where}: {name}"
                assert headers["x-content-type-options"] == "nosniff"
                if name == "live":
                    # The page's first load generates the live image, with its variant, in one answer.
                    assert headers["x-cache-status"] == ("MISS" if (round_, index) == ("first", 0) else "HIT"), where
                if name == "signed":
                    assert headers["cache-control"].startswith("private, max-age=")
                else:
                    assert headers["cache-control"].startswith("public, max-age=")
                received[name] = Image.open(io.BytesIO(body))
            # (b) each image shows the candidate it asked for, whose bytes are that many pixels
            # wide (a live image is 1024: scale-down never enlarges it). naturalWidth is in CSS
            # pixels: the bytes' width over the candidate's density (its w over the slot), floored.
            for name, (candidates, source_width) in images.items():
                current_src, natural_width = shown[name]
                assert current_src == candidates[wanted], f"{where}: {name}"
                assert received[name].format == "AVIF", f"{where}: {name}"
                assert received[name].width == min(wanted, source_width), f"{where}: {name}"
                assert abs(natural_width - received[name].width * slot(viewport) / wanted) <= 1, f"{where}: {name}"
            assert shot.stat().st_size > 0
        # One render per (source, width): the token URL and both /cdn names share theirs.
        assert variants_stored(srcset_stack) == len(CASES) * len({"public", "live", "signed"})


def test_a_live_image_shows_on_its_first_load_when_the_render_limit_is_spent(
    browser, stack_root, mysql_databases, database_kind, site, tmp_path
):
    stack = start_live_stack(stack_root, mysql_databases, database_kind, GOODEYE_VARIANT_RENDER_LIMIT="2/hour")
    try:
        owner = stack.new_owner()
        gallery = {}
        for index in range(3):
            record = upload(stack, owner, f"shot-{index}.jpg", photo(ORIGINAL, 40 * index, f"shot {index}"), visibility="public")
            gallery[f"shot-{index}"] = {w: with_query(record["url"], w=w, fm="auto") for w in LADDER}
        site.pages["/gallery.html"] = page_html(gallery)
        live = f"{stack.url}/cdn/{owner.project}/live/hero?" + urlencode({"prompt": "a quiet bay", "aspectRatio": "16:9"})
        site.pages["/live.html"] = page_html({"live": {w: with_query(live, w=w, fm="auto") for w in LADDER}})

        # The gallery's three first renders from one address: the limit of 2 refuses one
        # (the page gets no image for it).
        answers, shown = load(browser, site.url + "/gallery.html", stack, 1280, 1)
        assert sorted(status or 0 for _url, status, *_rest in answers) == [0, 200, 200]
        [refused] = [url for url, status, *_rest in answers if status is None]
        assert requests.get(refused, headers={"Accept": "image/avif"}).status_code == 429
        assert sorted(width for _src, width in shown.values()) == [0, 640, 640]

        # The live page's first load generates its image (the live limit counts it) and shows
        # it: its variant is part of that answer, not a render refused after generating.
        answers, shown = load(browser, site.url + "/live.html", stack, 1280, 1, tmp_path / "live.png")
        [(url, status, headers, _request_headers, body)] = answers
        assert status == 200, f"the live image was refused: {requests.get(url).text}"
        assert (headers["x-cache-status"], headers["content-type"]) == ("MISS", "image/avif"), url
        assert Image.open(io.BytesIO(body)).width == 640 and shown["live"][1] == 640
    finally:
        stack.stack.stop()
