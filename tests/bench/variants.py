"""Variant figures for scripts/bench: first-render times of the cases the README names, and a large render's memory.

Renders are timed in-process (goodeye.variants.render, the work a worker does
on a first request) and once through the stack (check + render + store +
nginx serving). The 50-megapixel case runs in a child process so its peak RSS
is its own, measured above the child's size once everything is imported.
"""

import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import requests
from PIL import Image
from werkzeug.datastructures import MultiDict

from goodeye.config import Settings
from goodeye.variants.params import parse_variant_params
from goodeye.variants.render import render

# name -> (source maker, content type, query)
CASES = {
    "12 MP JPEG -> 640w WebP": ("photo_jpeg", "image/jpeg", "w=640&fm=webp"),
    "4 MP PNG -> 256x256 cover JPEG": ("photo_png", "image/png", "w=256&h=256&fit=cover&fm=jpeg"),
    "animated GIF -> 128w WebP": ("animated_gif", "image/gif", "w=128&fm=webp"),
}
LARGE_CASE = "50 MP PNG -> 3840w AVIF"


def photo(width, height, seed=7):
    """A photo-like picture: smooth gradients plus a little grain (noise alone would be unlike any photo)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    channels = [np.sin(x * (3 + k) * np.pi + y * (2 + k)) * 0.5 + 0.5 for k in range(3)]
    pixels = np.stack(channels, axis=-1) * 220 + rng.normal(0, 8, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode(picture, fmt, **options):
    out = io.BytesIO()
    picture.save(out, fmt, **options)
    return out.getvalue()


def photo_jpeg():
    return encode(photo(4000, 3000), "JPEG", quality=85)


def photo_png():
    return encode(photo(2310, 1732), "PNG", compress_level=1)


def animated_gif():
    frames = [photo(480, 270, seed=n).convert("P", palette=Image.Palette.WEB, dither=Image.Dither.NONE) for n in range(12)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)


def sources():
    """{case: (bytes, content type, query)} for every timed case."""
    makers = {"photo_jpeg": photo_jpeg, "photo_png": photo_png, "animated_gif": animated_gif}
    return {case: (makers[maker](), content_type, query) for case, (maker, content_type, query) in CASES.items()}


def spec_for(content_type, query):
    args = MultiDict([pair.split("=") for pair in query.split("&")])
    return parse_variant_params(args, Settings().variant_sizes).resolve(content_type)


def in_process_ms(cases, repeats):
    """Median ms of render() for each case."""
    figures = {}
    for case, (data, content_type, query) in cases.items():
        spec = spec_for(content_type, query)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            render(io.BytesIO(data), spec, Settings().max_pixels)
            times.append((time.perf_counter() - started) * 1000)
        figures[case] = round(sorted(times)[len(times) // 2], 1)
    return figures


def through_the_stack_ms(stack_url, key, cases):
    """Wall ms of the first request of each variant (check, render, store, serve) and of the second."""
    figures = {}
    with requests.Session() as session:
        for case, (data, content_type, query) in cases.items():
            created = session.post(
                f"{stack_url}/v1/images", headers={"Authorization": f"Bearer {key}"},
                files={"file": ("source", data, content_type)}, data={"visibility": "public"}, timeout=120,
            )
            created.raise_for_status()
            url = f"{created.json()['url']}?{query}"
            timings = []
            for _ in range(2):
                started = time.perf_counter()
                session.get(url, timeout=120).raise_for_status()
                timings.append(round((time.perf_counter() - started) * 1000, 1))
            figures[case] = {"first_ms": timings[0], "again_ms": timings[1]}
    return figures


LARGE_CHILD = """
import json, sys, time
from goodeye.variants.render import render
from tests.bench.variants import spec_for

def status_mb(field):
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would be the forking bench's.
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field)) / 1024

idle = status_mb("VmRSS:")
started = time.perf_counter()
with open(sys.argv[1], "rb") as source:
    render(source, spec_for("image/png", "w=3840&fm=avif"), 50_000_000)
elapsed = (time.perf_counter() - started) * 1000
print(json.dumps({"ms": round(elapsed, 1), "idle_rss_mb": round(idle, 1), "peak_rss_above_idle_mb": round(status_mb("VmHWM:") - idle, 1)}))
"""


def large_render(root, cwd):
    """The 50-megapixel PNG -> 3840-wide AVIF in a child process: its time and its peak RSS above its size before the render.

    The child reads the PNG from a file, as a worker reads a local blob.
    """
    path = os.path.join(root, "50mp.png")
    # Smooth content scaled up from a quarter size: cheap to make, and a PNG that decodes like a large photo.
    photo(2165, 1443).resize((8660, 5773), Image.Resampling.BILINEAR).save(path, "PNG", compress_level=1)
    done = subprocess.run([sys.executable, "-c", LARGE_CHILD, path], cwd=cwd, capture_output=True, text=True, timeout=600)
    os.unlink(path)
    if done.returncode != 0:
        return {"status": "failed", "reason": done.stderr[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# The same outputs asked of thumbor (its URL syntax; `WxH` without fit-in crops to fill, like fit=cover).
THUMBOR_PATHS = {
    "12 MP JPEG -> 640w WebP": "640x0/filters:format(webp)",
    "4 MP PNG -> 256x256 cover JPEG": "256x256/filters:format(jpeg)",
    "animated GIF -> 128w WebP": "128x0/filters:format(webp)",
}
THUMBOR_CONF = """
LOADER = "thumbor.loaders.file_loader"
FILE_LOADER_ROOT_PATH = {root!r}
STORAGE = "thumbor.storages.no_storage"
ALLOW_UNSAFE_URL = True
"""
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif"}


def thumbor_first_request_ms(thumbor_bin, cases, root, port):
    """thumbor (its default engine) on loopback, same sources and outputs: wall ms of each output's first request, and again."""
    sources_dir = os.path.join(root, "thumbor-sources")
    os.makedirs(sources_dir, exist_ok=True)
    names = {}
    for number, (case, (data, content_type, _query)) in enumerate(cases.items()):
        names[case] = f"source-{number}.{EXTENSIONS[content_type]}"
        with open(os.path.join(sources_dir, names[case]), "wb") as handle:
            handle.write(data)
    conf = os.path.join(root, "thumbor.conf")
    with open(conf, "w") as handle:
        handle.write(THUMBOR_CONF.format(root=sources_dir))
    proc = subprocess.Popen(
        [thumbor_bin, "--ip", "127.0.0.1", "--port", str(port), "--conf", conf, "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthcheck", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                return {"status": "failed", "reason": "thumbor did not start"}
            time.sleep(0.2)
        figures = {}
        with requests.Session() as session:
            for case, path in THUMBOR_PATHS.items():
                timings = []
                for _ in range(2):
                    started = time.perf_counter()
                    response = session.get(f"{base}/unsafe/{path}/{names[case]}", timeout=120)
                    timings.append(round((time.perf_counter() - started) * 1000, 1))
                    response.raise_for_status()
                picture = Image.open(io.BytesIO(response.content))
                figures[case] = {
                    "first_ms": timings[0], "again_ms": timings[1],
                    "output": f"{picture.format} {picture.width}x{picture.height}, {getattr(picture, 'n_frames', 1)} frame(s)",
                }
        return figures
    finally:
        proc.terminate()
        proc.wait(10)
