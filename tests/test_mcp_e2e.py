"""`goodeye mcp` driven by the official SDK's own client over stdio, against a live stack through nginx."""

import base64
import os
import sys

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests import factories
from tests.similar_helpers import near_duplicates, scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The MCP server's own upload limit in these tests: small, so an oversized payload stays small.
MCP_MAX_UPLOAD_BYTES = 16 * 1024
TOOLS = {
    "upload_image", "list_images", "get_image", "update_image", "delete_image", "generate_image", "get_usage",
    "replace_image", "sign_image_url", "find_similar_images",
}


@pytest.fixture(scope="module")
def mcp_stack(plain_stack):
    """The CLI and MCP do not depend on the serving mode: the default stack is enough."""
    return plain_stack


@pytest.fixture()
def owner(mcp_stack):
    return mcp_stack.new_owner()


def session(stack, key, tmp_path):
    """An SDK client connected to `python -m goodeye.cli mcp` as a subprocess, as the key's project."""
    env = {
        "GOODEYE_URL": stack.url,
        "GOODEYE_CONFIG": str(tmp_path / "absent.json"),
        "GOODEYE_MAX_UPLOAD_BYTES": str(MCP_MAX_UPLOAD_BYTES),
    }
    if key:
        env["GOODEYE_API_KEY"] = key
    return Client(StdioServerParameters(command=sys.executable, args=["-m", "goodeye.cli", "mcp"], env=env, cwd=REPO))


def run_with_mcp(stack, key, tmp_path, scenario):
    """Run `scenario(client)` against a fresh MCP server process."""

    async def main():
        async with session(stack, key, tmp_path) as client:
            await scenario(client)

    anyio.run(main)


def ok(result):
    """The structured content of a successful tool result."""
    assert not result.is_error, result.content
    return result.structured_content


def tool_error(result):
    """The (code, message) of a tool error carrying the server's envelope."""
    assert result.is_error, result.structured_content
    error = result.structured_content["error"]
    assert error["message"]
    return error["code"]


def b64(data):
    return base64.b64encode(data).decode()


def test_tools_have_descriptions_and_schemas(mcp_stack, owner, tmp_path):
    async def scenario(client):
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == TOOLS
        for tool in listed.values():
            assert tool.description and tool.output_schema
            for name, prop in tool.input_schema["properties"].items():
                assert prop.get("description"), (tool.name, name)
        assert listed["upload_image"].input_schema["required"] == ["data"]
        assert str(MCP_MAX_UPLOAD_BYTES) in listed["upload_image"].input_schema["properties"]["data"]["description"]
        for name in ("get_image", "update_image", "delete_image", "sign_image_url"):
            assert listed[name].input_schema["required"] == ["image_id"]
        assert listed["replace_image"].input_schema["required"] == ["image_id", "data"]
        assert listed["delete_image"].annotations.destructive_hint is True
        assert listed["list_images"].annotations.read_only_hint is True
        assert set(listed["generate_image"].input_schema["properties"]) == {"prompt", "generator", "n", "aspect_ratio", "seed", "visibility", "ttl_seconds"}

    run_with_mcp(mcp_stack, owner.key, tmp_path, scenario)


def test_image_lifecycle_through_every_management_tool(mcp_stack, owner, tmp_path, http):
    data = factories.png((20, 10))

    async def scenario(client):
        record = ok(await client.call_tool("upload_image", {"data": b64(data), "visibility": "public", "ttl_seconds": 3600, "filename": "mcp.png"}))
        assert record["id"].startswith("img_") and record["filename"] == "mcp.png" and record["expires_at"]
        assert (record["width"], record["height"], record["size_bytes"]) == (20, 10, len(data))
        assert http.get(record["url"]).content == data
        second = ok(await client.call_tool("upload_image", {"data": b64(factories.gif())}))
        assert second["visibility"] == "private" and second["expires_at"] is None

        assert ok(await client.call_tool("get_image", {"image_id": record["id"]})) == record
        first_page = ok(await client.call_tool("list_images", {"limit": 1}))
        assert [r["id"] for r in first_page["data"]] == [second["id"]] and first_page["next_cursor"]
        next_page = ok(await client.call_tool("list_images", {"limit": 1, "cursor": first_page["next_cursor"]}))
        assert [r["id"] for r in next_page["data"]] == [record["id"]] and next_page["next_cursor"] is None
        public = ok(await client.call_tool("list_images", {"visibility": "public", "source": "upload"}))
        assert [r["id"] for r in public["data"]] == [record["id"]]
        assert ok(await client.call_tool("list_images", {"source": "generated"}))["data"] == []
        assert tool_error(await client.call_tool("list_images", {"cursor": "not-a-cursor"})) == "invalid_request"

        private = ok(await client.call_tool("update_image", {"image_id": record["id"], "visibility": "private", "permanent": True}))
        assert private["visibility"] == "private" and private["expires_at"] is None and private["url"] == record["url"]
        assert http.get(record["url"]).status_code == 401
        expiring = ok(await client.call_tool("update_image", {"image_id": record["id"], "ttl_seconds": 60}))
        assert expiring["expires_at"] and expiring["visibility"] == "private"
        both = await client.call_tool("update_image", {"image_id": record["id"], "ttl_seconds": 60, "permanent": True})
        assert tool_error(both) == "invalid_request"

        assert ok(await client.call_tool("delete_image", {"image_id": record["id"]})) == {"id": record["id"], "deleted": True}
        assert tool_error(await client.call_tool("get_image", {"image_id": record["id"]})) == "image_not_found"
        assert tool_error(await client.call_tool("delete_image", {"image_id": record["id"]})) == "image_not_found"
        assert tool_error(await client.call_tool("update_image", {"image_id": "img_nope", "visibility": "public"})) == "image_not_found"
        assert http.get(record["url"]).status_code == 404

        photo = factories.image_with_metadata("JPEG")
        stripped = ok(await client.call_tool("upload_image", {"data": b64(photo), "visibility": "public", "strip_metadata": True}))
        assert factories.SECRET not in http.get(stripped["url"]).content and stripped["size_bytes"] < len(photo)

    run_with_mcp(mcp_stack, owner.key, tmp_path, scenario)


def test_replace_and_sign_a_private_image(mcp_stack, owner, tmp_path, http):
    old_data, new_data = factories.png((20, 10)), factories.jpeg((30, 20))

    async def scenario(client):
        record = ok(await client.call_tool("upload_image", {"data": b64(old_data)}))
        signed = ok(await client.call_tool("sign_image_url", {"image_id": record["id"], "expires_in": 600, "w": 640, "fm": "webp"}))
        assert signed["url"].startswith(record["url"] + "?w=640&fm=webp&expires=") and signed["expires_at"]
        plain = ok(await client.call_tool("sign_image_url", {"image_id": record["id"]}))
        assert http.get(plain["url"]).content == old_data and http.get(record["url"]).status_code == 401

        replaced = ok(await client.call_tool("replace_image", {"image_id": record["id"], "data": b64(new_data)}))
        assert replaced["url"] == record["url"] and replaced["content_type"] == "image/jpeg"
        assert http.get(plain["url"]).content == new_data
        refused = await client.call_tool("replace_image", {"image_id": record["id"], "data": b64(b"plain text")})
        assert tool_error(refused) == "unsupported_image_type"
        assert tool_error(await client.call_tool("sign_image_url", {"image_id": "img_nope"})) == "image_not_found"

    run_with_mcp(mcp_stack, owner.key, tmp_path, scenario)


def test_bad_payloads_are_tool_errors_and_store_nothing(mcp_stack, owner, tmp_path):
    limit_b64 = base64.b64encode(b"\0" * MCP_MAX_UPLOAD_BYTES).decode()

    async def scenario(client):
        assert tool_error(await client.call_tool("upload_image", {"data": "this is not base64!"})) == "invalid_request"
        # Oversized and not base64 either: refused for its length, before any decoding.
        too_long = "!" * (len(limit_b64) + 4)
        result = await client.call_tool("upload_image", {"data": too_long})
        assert tool_error(result) == "image_too_large"
        assert tool_error(await client.call_tool("upload_image", {"data": b64(factories.png((200, 200), None) * 100)})) == "image_too_large"
        assert tool_error(await client.call_tool("upload_image", {"data": b64(b"<svg xmlns='http://www.w3.org/2000/svg'/>")})) == "unsupported_image_type"
        assert tool_error(await client.call_tool("upload_image", {"data": b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)})) == "invalid_image"
        # Arguments outside the input schema never reach the server.
        for arguments in ({"data": ""}, {"data": b64(factories.png()), "visibility": "secret"}, {"data": b64(factories.png()), "ttl_seconds": 0}, {}):
            assert (await client.call_tool("upload_image", arguments)).is_error, arguments
        assert ok(await client.call_tool("list_images", {}))["data"] == []

    run_with_mcp(mcp_stack, owner.key, tmp_path, scenario)


def test_credentials_errors_carry_the_slug(mcp_stack, tmp_path):
    async def anonymous(client):
        assert tool_error(await client.call_tool("list_images", {})) == "auth_required"
        assert tool_error(await client.call_tool("upload_image", {"data": b64(factories.png())})) == "auth_required"

    async def wrong_key(client):
        assert tool_error(await client.call_tool("get_image", {"image_id": "img_abc"})) == "invalid_api_key"

    run_with_mcp(mcp_stack, None, tmp_path, anonymous)
    run_with_mcp(mcp_stack, "good_live_" + "q" * 40, tmp_path, wrong_key)


def test_generate_image_hosts_outputs(mcp_stack, owner, tmp_path, http):
    async def scenario(client):
        generation = ok(await client.call_tool("generate_image", {"prompt": "a fox in snow", "n": 2, "aspect_ratio": "3:4", "seed": 3}))
        assert generation["generator"] == "builtin" and len(generation["hosted_images"]) == len(generation["image_urls"]) == 2
        for hosted in generation["hosted_images"]:
            record = ok(await client.call_tool("get_image", {"image_id": hosted["id"]}))
            assert record["source"] == "generated" and record["visibility"] == "private" and record["height"] > record["width"]
        again = ok(await client.call_tool("generate_image", {"prompt": "a fox in snow", "aspect_ratio": "3:4", "seed": 3}))
        first = ok(await client.call_tool("get_image", {"image_id": generation["hosted_images"][0]["id"]}))
        repeat = ok(await client.call_tool("get_image", {"image_id": again["hosted_images"][0]["id"]}))
        assert repeat["sha256"] == first["sha256"]
        listed = ok(await client.call_tool("list_images", {"source": "generated"}))
        assert len(listed["data"]) == 3
        usage = ok(await client.call_tool("get_usage", {}))
        assert usage == {"images": 3, "storage_bytes": sum(r["size_bytes"] for r in listed["data"]),
                         "max_images": None, "max_storage_bytes": None}
        assert tool_error(await client.call_tool("generate_image", {"prompt": "x", "generator": "nope"})) == "generator_not_found"
        assert (await client.call_tool("generate_image", {"prompt": ""})).is_error

    run_with_mcp(mcp_stack, owner.key, tmp_path, scenario)


def test_find_similar_images_by_id_and_by_data(mcp_stack, owner, tmp_path, http):
    picture = scene(31, size=(160, 120))
    copy = near_duplicates(picture)["JPEG quality 70"]
    records = [
        http.post(f"{mcp_stack.url}/v1/images", headers={"Authorization": f"Bearer {owner.key}"}, files={"file": ("p.png", data)}).json()
        for data in (picture, copy, scene(32, size=(160, 120)))
    ]

    async def scenario(client):
        by_id = ok(await client.call_tool("find_similar_images", {"image_id": records[0]["id"]}))
        assert [(match["id"], match["distance"] <= 8) for match in by_id["data"]] == [(records[1]["id"], True)]
        by_data = ok(await client.call_tool("find_similar_images", {"data": b64(copy), "max_distance": 8, "limit": 5}))
        assert {match["id"] for match in by_data["data"]} == {records[0]["id"], records[1]["id"]}
        assert tool_error(await client.call_tool("find_similar_images", {})) == "invalid_request"
        assert tool_error(await client.call_tool("find_similar_images", {"image_id": "img_nope"})) == "image_not_found"
        assert (await client.call_tool("find_similar_images", {"image_id": records[0]["id"], "max_distance": 17})).is_error

    run_with_mcp(mcp_stack, owner.key, tmp_path, scenario)
