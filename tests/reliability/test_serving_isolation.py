"""Reads are never held by uploads or generation: a public image is served promptly while 12
JPEG scan bombs are in flight, and while every thread of the app pool is held by a generation
the provider has not answered (benchmark-style measurements; the bound is loose for a loaded CI
machine, far below the 12 s such uploads once cost a read when both shared one gunicorn pool)."""

import base64
import fcntl
import json
import socket
import struct
import termios
import threading
import time
from urllib.parse import urlparse

import pytest
import requests

from tests.fake_openai import FakeOpenAI
from tests.hostile_images import jpeg_scan_bomb
from tests.reliability.conftest import start_reliability_stack

pytestmark = pytest.mark.slow

UPLOADS = 12
APP_WORKERS, APP_THREADS = 1, 4
READ_BOUND_SECONDS = 1.0


@pytest.fixture(scope="module")
def provider():
    """An OpenAI-compatible provider that holds every generation until it is closed."""
    with FakeOpenAI(mode="slow", slow_seconds=120) as fake:
        yield fake


@pytest.fixture(scope="module")
def isolation_stack(stack_root, mysql_databases, database_kind, provider):
    """One app worker of 4 threads: fewer slots than the uploads, and no idle second worker to hide a queue."""
    running = start_reliability_stack(
        stack_root, mysql_databases, database_kind, GOODEYE_WORKERS=str(APP_WORKERS), GOODEYE_THREADS=str(APP_THREADS),
        GOODEYE_OPENAI_BASE_URL=provider.base_url, GOODEYE_OPENAI_API_KEY=provider.api_key,
        GOODEYE_OPENAI_TIMEOUT_SECONDS=120, GOODEYE_FETCH_ALLOWLIST=provider.allowlist_entry,
    )
    yield running
    running.stack.stop()


def _public_urls(stack, owner, count):
    urls = []
    for i in range(count):
        record = requests.post(f"{stack.url}/v1/images", headers=owner.headers, data={"visibility": "public"},
                               files={"file": (f"p{i}.png", _png(i))}).json()
        urls.append(record["url"])
    return urls


def _read_each(urls):
    """Seconds each anonymous read took; each image's first read misses nginx's kept
    decisions, so every one asks the check."""
    seconds = []
    with requests.Session() as reader:
        for url in urls:
            started = time.monotonic()
            response = reader.get(url, timeout=60)
            seconds.append(time.monotonic() - started)
            assert response.status_code == 200
    return seconds


def _unsent_bytes(sock):
    """Bytes of `sock`'s send queue the peer has not yet acknowledged (TIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


class InFlightUpload:
    """One upload sent whole on a raw socket; its answer is read by a thread of its own."""

    def __init__(self, stack, key, body):
        url = urlparse(stack.url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=120)
        head = (
            f"POST /v1/images HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        self.answer = b""
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self):
        while chunk := self.sock.recv(65536):
            self.answer += chunk

    def received_by_server(self):
        return _unsent_bytes(self.sock) == 0

    def close(self):
        self.reader.join(timeout=120)
        self.sock.close()


def test_a_public_image_is_served_promptly_throughout_12_parallel_bomb_uploads(isolation_stack):
    stack = isolation_stack
    owner = stack.new_owner()
    urls = _public_urls(stack, owner, 8)
    body = json.dumps({"data": base64.b64encode(jpeg_scan_bomb()).decode()}).encode()

    uploads = [InFlightUpload(stack, owner.key, body) for _ in range(UPLOADS)]
    try:
        # In flight: every byte of every upload has reached nginx before the first read.
        deadline = time.monotonic() + 30
        while not all(upload.received_by_server() for upload in uploads):
            assert time.monotonic() < deadline, "the uploads never reached the server"
            time.sleep(0.01)
        reads = _read_each(urls)
    finally:
        for upload in uploads:
            upload.close()

    assert max(reads) < READ_BOUND_SECONDS, [f"{seconds:.2f}s" for seconds in reads]
    statuses = [upload.answer.split(b" ", 2)[1] for upload in uploads]
    assert statuses == [b"422"] * UPLOADS, statuses
    assert all(b'"image_too_complex"' in upload.answer for upload in uploads)


def test_a_public_image_is_served_promptly_while_generations_hold_every_app_thread(isolation_stack, provider):
    stack = isolation_stack
    owner = stack.new_owner()
    urls = _public_urls(stack, owner, 8)
    answers = []

    def generate():
        answers.append(requests.post(f"{stack.url}/v1/image-generators/openai/generate", headers=owner.headers,
                                     json={"prompt": "held"}, timeout=180).status_code)

    threads = [threading.Thread(target=generate) for _ in range(UPLOADS)]
    for thread in threads:
        thread.start()
    try:
        # Every app thread is inside a generation the provider holds (the rest queue behind them).
        deadline = time.monotonic() + 30
        while len(provider.generation_requests) < APP_WORKERS * APP_THREADS:
            assert time.monotonic() < deadline, f"only {len(provider.generation_requests)} generations reached the provider"
            time.sleep(0.01)
        reads = _read_each(urls)
        assert all(thread.is_alive() for thread in threads), "the generations were held throughout the reads"
    finally:
        provider.close()  # wakes the held generations: they answer 502
        for thread in threads:
            thread.join(timeout=180)
    assert max(reads) < READ_BOUND_SECONDS, [f"{seconds:.2f}s" for seconds in reads]
    assert len(answers) == UPLOADS


def _png(seed):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (seed * 20, 100, 200)).save(buffer, "PNG")
    return buffer.getvalue()
