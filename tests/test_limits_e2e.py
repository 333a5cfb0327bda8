"""Per-address limits as a fresh deployment gets them: database-backed (no Redis), exact across
every gunicorn worker and every node sharing the database, keyed on the address nginx settles on
(X-Forwarded-For believed only from GOODEYE_TRUSTED_PROXIES), raised per project.

Clients connect from chosen loopback addresses (127.x.y.z), so one test plays the load
balancer and the clients behind it, or several clients, on one machine.
"""

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import start_stack
from tests.live_helpers import api, client, error_code, live_url, random_loopback, unique


def _statuses(responses):
    return sorted(response.status_code for response in responses)


def _concurrent(calls, workers=16):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda call: call(), calls))


def _live_misses(stack, project, count, address):
    """`count` concurrent MISSes (distinct prompts) of one scope from one address."""
    scope = f"scope-{secrets.token_hex(4)}"
    with client(address) as session:
        return _concurrent([lambda: session.get(live_url(stack, project, scope, unique("miss"))) for _ in range(count)])


@pytest.fixture(scope="module")
def default_stack(stack_root, mysql_databases, database_kind):
    """What `scripts/serve` runs: 3 workers, SQLite, the default limits storage and limits."""
    running = start_stack(stack_root, mysql_databases, "sqlite", GOODEYE_WORKERS="3")
    assert running.settings.ratelimit_storage_uri == "database://" and running.settings.database.startswith("sqlite")
    yield running
    running.stack.stop()


def test_sixteen_concurrent_live_misses_from_one_address_get_exactly_ten(default_stack):
    owner = default_stack.new_owner()
    answers = _live_misses(default_stack, owner.project, 16, random_loopback())
    assert _statuses(answers) == [200] * 10 + [429] * 6
    assert {error_code(a) for a in answers if a.status_code == 429} == {"IP_RATE_LIMIT_EXCEEDED"}
    assert sorted(a.headers["X-RateLimit-Remaining"] for a in answers if a.status_code == 200) == sorted(map(str, range(10)))


def test_concurrent_anonymous_generations_from_one_address_stop_at_the_limit(default_stack):
    with client(random_loopback()) as session:
        answers = _concurrent([
            lambda: session.post(f"{default_stack.url}/v1/image-generators/builtin/generate", json={"prompt": unique("anonymous")})
            for _ in range(24)
        ])
    assert _statuses(answers) == [201] * 20 + [429] * 4
    refused = [a for a in answers if a.status_code == 429]
    assert {a.json()["error"]["code"] for a in refused} == {"rate_limited"}
    assert all(int(a.headers["Retry-After"]) > 0 and a.headers["X-RateLimit-Remaining"] == "0" for a in refused)


def test_two_nodes_on_one_database_hold_one_limit_for_live_and_anonymous_generations(stack_root, mysql_databases, database_kind):
    first = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_WORKERS="3")
    second = start_stack(stack_root, mysql_databases, database_kind, database_url=first.settings.database, GOODEYE_WORKERS="3")
    try:
        assert first.settings.ratelimit_storage_uri == second.settings.ratelimit_storage_uri == "database://"
        owner = first.new_owner()
        scope, address = f"scope-{secrets.token_hex(4)}", random_loopback()
        with client(address) as session:
            answers = _concurrent(
                [lambda stack=stack: session.get(live_url(stack, owner.project, scope, unique("twin"))) for stack in (first, second) * 8]
            )
        assert _statuses(answers) == [200] * 10 + [429] * 6
        with client(random_loopback()) as session:
            anonymous = _concurrent([
                lambda stack=stack: session.post(
                    f"{stack.url}/v1/image-generators/builtin/generate", json={"prompt": unique("twin anonymous")}
                )
                for stack in (first, second) * 12
            ])
        assert _statuses(anonymous) == [201] * 20 + [429] * 4
    finally:
        second.stack.stop()
        first.stack.stop()


@pytest.fixture(scope="module")
def balanced_stack(stack_root, mysql_databases, database_kind):
    """A stack whose only trusted peer is the load balancer at 127.0.0.2; the live limit is 2."""
    running = start_stack(
        stack_root, mysql_databases, database_kind, GOODEYE_TRUSTED_PROXIES="127.0.0.2", GOODEYE_LIVE_GENERATION_LIMIT="2/hour"
    )
    yield running
    running.stack.stop()


def _remaining(stack, project, session, forwarded_for):
    response = session.get(live_url(stack, project, "forwarded", unique("fwd")), headers={"X-Forwarded-For": forwarded_for})
    return response.status_code, response.headers.get("X-RateLimit-Remaining")


def test_a_trusted_balancers_forwarded_address_carries_the_limit(balanced_stack):
    owner = balanced_stack.new_owner()
    with client("127.0.0.2") as balancer:
        # Two clients behind the balancer: each has its own allowance.
        assert _remaining(balanced_stack, owner.project, balancer, "203.0.113.1") == (200, "1")
        assert _remaining(balanced_stack, owner.project, balancer, "203.0.113.2") == (200, "1")
        assert _remaining(balanced_stack, owner.project, balancer, "203.0.113.1") == (200, "0")
        assert _remaining(balanced_stack, owner.project, balancer, "203.0.113.1")[0] == 429
        # What a client put in front of the balancer's own entry is not believed: the
        # rightmost address that is not a trusted proxy is the client.
        assert _remaining(balanced_stack, owner.project, balancer, "198.51.100.9, 203.0.113.2") == (200, "0")
        assert _remaining(balanced_stack, owner.project, balancer, "203.0.113.3, 127.0.0.2") == (200, "1")


def test_ipv6_clients_are_counted_per_64_network(balanced_stack):
    owner = balanced_stack.new_owner()
    with client("127.0.0.2") as balancer:
        # Any address of one /64 is the same subscriber; a neighbouring /64 is another.
        assert _remaining(balanced_stack, owner.project, balancer, "2001:db8:1:2::1") == (200, "1")
        assert _remaining(balanced_stack, owner.project, balancer, "2001:db8:1:2:ffff::9") == (200, "0")
        assert _remaining(balanced_stack, owner.project, balancer, "2001:db8:1:3::1") == (200, "1")
        # An IPv4 address written as IPv6 is that IPv4 client.
        assert _remaining(balanced_stack, owner.project, balancer, "203.0.113.77") == (200, "1")
        assert _remaining(balanced_stack, owner.project, balancer, "::ffff:203.0.113.77") == (200, "0")


def test_an_untrusted_peers_forwarded_address_moves_nothing(balanced_stack):
    owner = balanced_stack.new_owner()
    # A client on loopback, but not the balancer: its X-Forwarded-For is ignored (no loopback trust).
    with client(random_loopback()) as peer:
        answers = [_remaining(balanced_stack, owner.project, peer, f"203.0.113.{n}") for n in (10, 11, 12)]
    assert answers[:2] == [(200, "1"), (200, "0")] and answers[2][0] == 429


def test_a_project_may_raise_its_live_limit(stack_root, mysql_databases, database_kind):
    stack = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_WORKERS="3")
    try:
        raised, kept = stack.new_owner(), stack.new_owner()
        assert api(stack, raised, "GET", "/project").json()["data"]["liveGenerationsPerIpPerHour"] is None
        patched = api(stack, raised, "PATCH", "/project", json={"liveGenerationsPerIpPerHour": 25})
        assert patched.status_code == 200 and patched.json()["data"]["liveGenerationsPerIpPerHour"] == 25
        address = random_loopback()
        assert _statuses(_live_misses(stack, raised.project, 27, address)) == [200] * 25 + [429] * 2
        # The same address in another project keeps the deployment's 10.
        assert _statuses(_live_misses(stack, kept.project, 12, address)) == [200] * 10 + [429] * 2

        # The operator sets it too, and `default` gives the deployment's back.
        updated = stack.admin("project", "update", kept.project, "--live-generations-per-ip-per-hour", "40", "--json")
        assert updated.exit_code == 0, updated.output
        assert api(stack, kept, "GET", "/project").json()["data"]["liveGenerationsPerIpPerHour"] == 40
        assert stack.admin("project", "update", kept.project, "--live-generations-per-ip-per-hour", "default").exit_code == 0
        assert api(stack, kept, "GET", "/project").json()["data"]["liveGenerationsPerIpPerHour"] is None
        refused = stack.admin("project", "update", kept.project, "--live-generations-per-ip-per-hour", "0")
        assert refused.exit_code != 0 and "is neither a whole number from 1 to 1000000 nor 'default'" in refused.output
    finally:
        stack.stack.stop()


@pytest.mark.parametrize("value", [0, -1, 1_000_001, 2.5, "25", True, {}])
def test_a_live_limit_out_of_range_or_of_another_type_is_refused(plain_stack, value):
    owner = plain_stack.new_owner()
    response = api(plain_stack, owner, "PATCH", "/project", json={"liveGenerationsPerIpPerHour": value})
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"
    assert "liveGenerationsPerIpPerHour" in response.json()["error"]["message"]
    assert api(plain_stack, owner, "GET", "/project").json()["data"]["liveGenerationsPerIpPerHour"] is None


def test_memory_limits_with_several_workers_refuse_to_start(stack_root, mysql_databases, database_kind):
    with pytest.raises(Exception, match="GOODEYE_RATELIMIT_STORAGE_URI=memory:// counts per process but GOODEYE_WORKERS=2"):
        start_stack(stack_root, mysql_databases, database_kind, GOODEYE_RATELIMIT_STORAGE_URI="memory://")
    one_worker = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_RATELIMIT_STORAGE_URI="memory://", GOODEYE_WORKERS="1")
    try:
        assert requests.get(f"{one_worker.url}/readyz").status_code == 200
    finally:
        one_worker.stack.stop()
