"""A real S3 endpoint for the tests: moto's server mode on loopback, stoppable and restartable.

moto keeps its buckets in process-global backends, so a server stopped and
started again on the same port still holds every object (an outage, not a
wipe). Each request is recorded, so tests can prove what reached the endpoint.
"""

import socket
import threading

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "goodeye-test", "AWS_SECRET_ACCESS_KEY": "goodeye-test-secret"}
REGION = "us-east-1"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Server:
    """moto's S3 on 127.0.0.1:port in a thread; `requests` lists (method, path) of every request served."""

    def __init__(self, port=None):
        self.port = port or _free_port()
        self.requests = []
        # path fragment -> HTTP status that GETs of matching paths answer instead of moto.
        self.failing_gets = {}
        self._lock = threading.Lock()
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server = None
        self._thread = None

    @property
    def endpoint_url(self):
        return f"http://127.0.0.1:{self.port}"

    def _recording_app(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        with self._lock:
            self.requests.append((method, path))
            failure = next((status for fragment, status in self.failing_gets.items() if fragment in path), None)
        if method == "GET" and failure:
            body = f"<Error><Code>Injected</Code><Message>status {failure}</Message></Error>".encode()
            start_response(f"{failure} Injected", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return self._app(environ, start_response)

    def start(self):
        """Listen on the port (the same one after a stop)."""
        self._server = make_server("127.0.0.1", self.port, self._recording_app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening; later connections are refused until start()."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None

    @property
    def running(self):
        return self._server is not None

    def requests_for(self, fragment):
        """The recorded requests whose path contains `fragment`."""
        with self._lock:
            return [entry for entry in self.requests if fragment in entry[1]]

    def client(self):
        """A boto3 S3 client for this endpoint (path-style, test credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name):
        """Create a bucket and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket):
        """The GOODEYE_* and AWS_* variables of a Goodeye using `bucket` here."""
        return {
            **CREDENTIALS,
            "GOODEYE_STORAGE": "s3",
            "GOODEYE_S3_BUCKET": bucket,
            "GOODEYE_S3_ENDPOINT_URL": self.endpoint_url,
            "GOODEYE_S3_REGION": REGION,
        }
