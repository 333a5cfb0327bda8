"""SSRF-safe fetching of provider URLs, against a real HTTP(S) server on loopback."""

import datetime
import ipaddress
import socket
import ssl
from urllib.parse import quote

import pytest
import urllib3.util.connection

from goodeye.generation.fetch import (
    AllowedHost,
    FetchFailed,
    FetchRefused,
    fetch_image_bytes,
    is_forbidden_address,
    parse_allowlist,
)
from tests.fake_openai import FakeOpenAI

MAX = 200_000
PUBLIC_IP = "93.184.215.14"  # a global unicast address; tests never actually reach it


@pytest.fixture
def fake():
    with FakeOpenAI(slow_seconds=10) as server:
        yield server


@pytest.fixture
def connections(monkeypatch):
    """Record every socket connection urllib3 opens; refuse all but loopback ones."""
    seen = []
    real = urllib3.util.connection.create_connection

    def create_connection(address, *args, **kwargs):
        seen.append(address)
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError("tests never leave loopback")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return seen


class Resolver:
    """A scripted DNS: each lookup returns the next answer (the last one repeats)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, host, port):
        self.calls.append((host, port))
        index = min(len(self.calls), len(self.answers)) - 1
        return self.answers[index]


def fetch(url, allowlist, **kwargs):
    kwargs.setdefault("max_bytes", MAX)
    kwargs.setdefault("timeout_seconds", 5)
    return fetch_image_bytes(url, allowlist=allowlist, **kwargs)


# the allowed path


def test_allowed_fake_provider_with_private_marker(fake):
    body = fetch(fake.url("/files/img-0.png?sig=x"), [fake.allowlist_entry])
    assert body == fake.image_bytes(0)
    request = fake.requests[-1]
    assert request.path == "/files/img-0.png?sig=x"
    assert request.headers["host"] == f"127.0.0.1:{fake.port}"


def test_private_marker_is_needed_for_loopback(fake, connections):
    with pytest.raises(FetchRefused, match="non-public"):
        fetch(fake.url("/files/img-0.png"), [f"127.0.0.1:{fake.port}"])
    assert fake.requests == []
    assert connections == []


def test_name_is_matched_case_insensitively_and_host_header_is_the_name(fake):
    resolve = Resolver(["127.0.0.1"])
    body = fetch(
        f"http://Images.Provider.TEST:{fake.port}/files/img-1.png",
        [f"+images.provider.test:{fake.port}"],
        resolve=resolve,
    )
    assert body == fake.image_bytes(1)
    assert resolve.calls == [("images.provider.test", fake.port)]
    assert fake.requests[-1].headers["host"] == f"images.provider.test:{fake.port}"


# addresses that are refused


FORBIDDEN = [
    "127.0.0.1",
    "127.9.9.9",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",
    "fc00::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_forbidden_address_literal_is_refused(address, connections):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(FetchRefused, match="non-public"):
        fetch(f"http://{host}/latest/meta-data/", [host])
    assert connections == []


@pytest.mark.parametrize("address", FORBIDDEN)
def test_name_resolving_to_forbidden_address_is_refused(address, connections):
    resolve = Resolver([address])
    with pytest.raises(FetchRefused, match="non-public"):
        fetch("https://images.provider.test/a.png", ["images.provider.test"], resolve=resolve)
    assert len(resolve.calls) == 1
    assert connections == []


def test_one_forbidden_answer_among_public_ones_refuses(connections):
    resolve = Resolver([PUBLIC_IP, "127.0.0.1"])
    with pytest.raises(FetchRefused):
        fetch("http://images.provider.test/a.png", ["images.provider.test"], resolve=resolve)
    assert connections == []


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC_IP, "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_are_not_forbidden(address):
    assert not is_forbidden_address(address)


@pytest.mark.parametrize("address", FORBIDDEN)
def test_forbidden_addresses_are_forbidden(address):
    assert is_forbidden_address(ipaddress.ip_address(address))


# DNS rebinding: one lookup per hop, and the connection goes to that answer


def test_rebinding_name_connects_to_first_answer_never_the_second(fake, connections):
    resolve = Resolver([PUBLIC_IP], ["127.0.0.1"])
    with pytest.raises(FetchFailed):
        fetch(f"http://rebind.test:{fake.port}/files/img-0.png", [f"rebind.test:{fake.port}"], resolve=resolve)
    assert len(resolve.calls) == 1
    assert connections == [(PUBLIC_IP, fake.port)]
    assert fake.requests == []


def test_rebinding_name_uses_the_checked_answer_even_when_it_changes(fake, connections, monkeypatch):
    # Allowed to loopback by the marker; the second answer would go nowhere useful,
    # so success proves the request went to the first (checked) answer.
    resolve = Resolver(["127.0.0.1"], [PUBLIC_IP])

    real_getaddrinfo = socket.getaddrinfo

    def no_second_lookup(host, *args, **kwargs):
        # urllib3 hands the numeric address to getaddrinfo, which does no DNS.
        if host != "127.0.0.1":
            raise AssertionError(f"a second DNS lookup for {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_second_lookup)
    body = fetch(f"http://rebind.test:{fake.port}/files/img-0.png", [f"+rebind.test:{fake.port}"], resolve=resolve)
    assert body == fake.image_bytes(0)
    assert len(resolve.calls) == 1
    assert connections == [("127.0.0.1", fake.port)]
    assert fake.requests[-1].headers["host"] == f"rebind.test:{fake.port}"


# redirects


def test_redirects_are_followed_when_every_hop_is_allowed(fake):
    assert fetch(fake.url("/redirect/chain/3"), [fake.allowlist_entry]) == fake.image_bytes(0)
    assert len(fake.requests) == 4


def test_too_many_redirects_are_refused(fake):
    with pytest.raises(FetchRefused, match="redirects"):
        fetch(fake.url("/redirect/chain/4"), [fake.allowlist_entry])
    assert len(fake.requests) == 4
    assert not any(p.startswith("/files/") for p in fake.paths())


def test_redirect_to_private_host_off_the_allowlist_is_refused(fake, connections):
    target = quote("http://10.0.0.1/latest/meta-data/", safe="")
    with pytest.raises(FetchRefused, match="allowlist"):
        fetch(fake.url(f"/redirect/to?url={target}"), [fake.allowlist_entry])
    assert connections == [("127.0.0.1", fake.port)]


def test_redirect_to_allowlisted_name_that_is_private_is_refused(fake, connections):
    # localhost:PORT is allowlisted without the marker and resolves to loopback: the
    # marker on 127.0.0.1:PORT, the same server, does not carry over to it.
    with pytest.raises(FetchRefused, match="non-public"):
        fetch(fake.url("/redirect/private"), [fake.allowlist_entry, f"localhost:{fake.port}"])
    assert fake.paths() == ["/redirect/private"]
    assert connections == [("127.0.0.1", fake.port)]


@pytest.mark.parametrize("target", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://images.provider.test/a"])
def test_redirect_to_other_scheme_is_refused(fake, target):
    with pytest.raises(FetchRefused, match="scheme"):
        fetch(fake.url(f"/redirect/to?url={quote(target, safe='')}"), [fake.allowlist_entry, "images.provider.test"])


# the allowlist


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.test/a.png",
        "http://images.provider.test.evil.test/a.png",
        "http://evilimages.provider.test/a.png",
        "http://images.provider.test:8080/a.png",  # the entry has no port: default only
        "https://images.provider.test:80/a.png",
    ],
)
def test_host_not_on_allowlist_is_refused_before_any_lookup(url, connections):
    resolve = Resolver([PUBLIC_IP])
    with pytest.raises(FetchRefused, match="allowlist"):
        fetch(url, ["images.provider.test"], resolve=resolve)
    assert resolve.calls == []
    assert connections == []


def test_port_must_match_an_explicit_entry_port(fake):
    with pytest.raises(FetchRefused, match="allowlist"):
        fetch(fake.url("/files/img-0.png"), [f"+127.0.0.1:{fake.port + 1}", "+127.0.0.1"])
    assert fake.requests == []


def test_empty_allowlist_refuses_everything(fake):
    with pytest.raises(FetchRefused):
        fetch(fake.url("/files/img-0.png"), [])


@pytest.mark.parametrize(
    "url",
    [
        "ftp://images.provider.test/a.png",
        "file:///etc/passwd",
        "//images.provider.test/a.png",
        "http://user:pass@images.provider.test/a.png",
        "http://images.provider.test@127.0.0.1/a.png",
        "http://images.provider.test/a b.png",
        "http:///a.png",
    ],
)
def test_unusable_urls_are_refused(url, connections):
    with pytest.raises(FetchRefused):
        fetch(url, ["images.provider.test", "+127.0.0.1"], resolve=Resolver([PUBLIC_IP]))
    assert connections == []


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("images.example.com", AllowedHost("images.example.com", None, False)),
        (" Images.Example.COM. ", AllowedHost("images.example.com", None, False)),
        ("images.example.com:8443", AllowedHost("images.example.com", 8443, False)),
        ("+127.0.0.1:8099", AllowedHost("127.0.0.1", 8099, True)),
        ("+localhost", AllowedHost("localhost", None, True)),
        ("[2001:DB8::1]:8080", AllowedHost("2001:db8::1", 8080, False)),
        ("+[fd00::1]", AllowedHost("fd00::1", None, True)),
    ],
)
def test_parse_allowlist(entry, expected):
    assert parse_allowlist([entry]) == (expected,)


@pytest.mark.parametrize("entry", ["", "+", "http://x.test", "x.test/path", "x.test:0", "x.test:99999", "u@x.test", "x.test:port"])
def test_parse_allowlist_rejects_bad_entries(entry):
    with pytest.raises(ValueError):
        parse_allowlist([entry])


# size and time caps, status


def test_body_over_declared_cap_fails(fake):
    assert len(fake.oversized_png) > MAX
    with pytest.raises(FetchFailed, match="cap"):
        fetch(fake.url("/files/oversized.png"), [fake.allowlist_entry])


def test_streamed_body_over_cap_fails(fake):
    with pytest.raises(FetchFailed, match="cap"):
        fetch(fake.url("/files/oversized-stream.png"), [fake.allowlist_entry])


def test_body_just_under_cap_passes(fake):
    size = len(fake.oversized_png)
    assert fetch(fake.url("/files/oversized-stream.png"), [fake.allowlist_entry], max_bytes=size) == fake.oversized_png


@pytest.mark.slow
def test_slowly_dripping_body_hits_the_total_time_cap(fake):
    # Every piece arrives well within 1 s; only a cap on the whole fetch stops it.
    assert fake.drip_interval < 0.5
    with pytest.raises(FetchFailed, match="time cap|timed out"):
        fetch(fake.url("/files/drip.png"), [fake.allowlist_entry], timeout_seconds=1)


@pytest.mark.slow
def test_stalled_body_hits_the_time_cap(fake):
    with pytest.raises(FetchFailed):
        fetch(fake.url("/files/stall.png"), [fake.allowlist_entry], timeout_seconds=1)


@pytest.mark.slow
def test_slow_headers_hit_the_time_cap(fake):
    with pytest.raises(FetchFailed):
        fetch(fake.url("/files/slow-headers.png"), [fake.allowlist_entry], timeout_seconds=1)


@pytest.mark.parametrize("status", [404, 500])
def test_non_2xx_fails(fake, status):
    with pytest.raises(FetchFailed, match=str(status)):
        fetch(fake.url(f"/status/{status}"), [fake.allowlist_entry])


def test_encoded_body_is_not_decoded(fake):
    with pytest.raises(FetchFailed, match="gzip"):
        fetch(fake.url("/files/gzip.png"), [fake.allowlist_entry])


def test_connection_refused_fails():
    with FakeOpenAI() as closed:
        port = closed.port
    with pytest.raises(FetchFailed):
        fetch(f"http://127.0.0.1:{port}/a.png", [f"+127.0.0.1:{port}"])


# TLS is verified against the original host name while connecting to the address


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A test CA and a certificate for images.goodeye.test signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Goodeye test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.goodeye.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.goodeye.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(ca_path), str(cert_path), str(key_path)


@pytest.fixture
def tls_fake(tls_files):
    _, cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakeOpenAI(ssl_context=context) as server:
        yield server


def test_https_connects_to_the_address_and_verifies_the_name(tls_fake, tls_files, connections):
    ca, _, _ = tls_files
    port = tls_fake.port
    resolve = Resolver(["127.0.0.1"])
    body = fetch(
        f"https://images.goodeye.test:{port}/files/img-2.png",
        [f"+images.goodeye.test:{port}"],
        resolve=resolve,
        ca_certs=ca,
    )
    assert body == tls_fake.image_bytes(2)
    assert connections == [("127.0.0.1", port)]
    assert tls_fake.requests[-1].headers["host"] == f"images.goodeye.test:{port}"


def test_https_certificate_for_another_name_fails(tls_fake, tls_files):
    ca, _, _ = tls_files
    port = tls_fake.port
    with pytest.raises(FetchFailed):
        fetch(
            f"https://other.goodeye.test:{port}/files/img-2.png",
            [f"+other.goodeye.test:{port}"],
            resolve=Resolver(["127.0.0.1"]),
            ca_certs=ca,
        )
    assert tls_fake.requests == []


def test_https_untrusted_certificate_fails(tls_fake):
    port = tls_fake.port
    with pytest.raises(FetchFailed):
        fetch(
            f"https://images.goodeye.test:{port}/files/img-2.png",
            [f"+images.goodeye.test:{port}"],
            resolve=Resolver(["127.0.0.1"]),
        )
    assert tls_fake.requests == []
