"""The CLI and MCP for daily use: several files and stdin, downloads, human TTLs, renames, open, completion.

Through the real `goodeye` console script (and the MCP server through the
SDK's stdio client) against a stack behind nginx.
"""

import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import requests
from PIL import Image

from tests import factories
from tests.test_cli_e2e import through_a_terminal
from tests.test_mcp_e2e import b64, ok, run_with_mcp, tool_error

GOODEYE = os.path.join(os.path.dirname(sys.executable), "goodeye")
DAY = 86400


@pytest.fixture()
def owner(cli_stack):
    return cli_stack.new_owner()


@pytest.fixture()
def run(cli_stack, owner, tmp_path):
    """Run the console script as `owner`; returns the CompletedProcess (text unless binary=True)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODEYE_")}
    env.update(GOODEYE_URL=cli_stack.url, GOODEYE_API_KEY=owner.key, GOODEYE_CONFIG=str(tmp_path / "absent.json"))

    def go(*args, stdin=subprocess.DEVNULL, binary=False, cwd=None, extra_env=None):
        return subprocess.run(
            [GOODEYE, *map(str, args)], env={**env, **(extra_env or {})}, stdin=stdin, capture_output=True,
            text=not binary, timeout=120, cwd=cwd,
        )

    return go


def records(run):
    """The owner's images, newest first."""
    result = run("images", "list", "--all", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["data"]


def seconds_until(iso_text):
    expires = datetime.fromisoformat(iso_text.replace("Z", "+00:00"))
    return (expires - datetime.now(timezone.utc)).total_seconds()


@pytest.fixture()
def files(tmp_path):
    """Two images, a file that is not one, a directory and a name that does not exist."""
    (tmp_path / "a.png").write_bytes(factories.png((20, 10), color=(200, 0, 0)))
    (tmp_path / "b.jpg").write_bytes(factories.jpeg((12, 12), color=(0, 0, 200)))
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "folder").mkdir()
    return tmp_path


# --- upload: several files, standard input ------------------------------------------


def test_several_files_upload_each_and_report_each_failure(run, files):
    result = run("images", "upload", files / "a.png", files / "missing.png", files / "b.jpg", files / "folder", files / "notes.png")
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[0][:4] for line in lines] == ["img_", "img_"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3
    assert "missing.png: not_a_file:" in errors[0] and "folder: not_a_file: is a directory" in errors[1]
    assert "notes.png: unsupported_image_type:" in errors[2]
    # Local refusals (2) and a server refusal (1) together: exit 1.
    assert result.returncode == 1
    assert sorted(r["filename"] for r in records(run)) == ["a.png", "b.jpg"]


def test_several_files_as_json_is_an_array_with_the_errors(run, files):
    result = run("images", "upload", files / "a.png", files / "missing.png", "--json")
    assert result.returncode == 2
    first, second = json.loads(result.stdout)
    assert first["filename"] == "a.png" and first["url"]
    assert second == {"file": str(files / "missing.png"), "error": {"code": "not_a_file", "message": "no such file or directory"}}


def test_one_missing_file_is_a_usage_error(run, files):
    result = run("images", "upload", files / "missing.png")
    assert result.returncode == 2 and "missing.png" in result.stderr
    assert records(run) == []


def test_standard_input_with_and_without_a_filename(run, files):
    with open(files / "a.png", "rb") as handle:
        named = run("images", "upload", "-", "--filename", "from-pipe.png", "--json", stdin=handle)
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)["filename"] == "from-pipe.png"
    with open(files / "b.jpg", "rb") as handle:
        unnamed = run("images", "upload", "-", "--json", stdin=handle)
    assert json.loads(unnamed.stdout)["filename"].endswith(".jpg")
    with open(files / "notes.png", "rb") as handle:
        refused = run("images", "upload", "-", stdin=handle)
    assert refused.returncode == 1 and "unsupported_image_type" in refused.stderr
    assert len(records(run)) == 2


@pytest.mark.parametrize("args", [["-", "-"], ["a.png", "b.jpg", "--alias", "@x"], ["a.png", "b.jpg", "--filename", "x.png"]])
def test_upload_usage_errors(run, files, args):
    result = run("images", "upload", *[files / a if a.endswith((".png", ".jpg")) else a for a in args])
    assert result.returncode == 2
    assert records(run) == []


# --- human TTLs ----------------------------------------------------------------------


@pytest.mark.parametrize(("ttl", "seconds"), [("3600", 3600), ("90m", 5400), ("12h", 12 * 3600), ("7d", 7 * DAY), ("2w", 14 * DAY), ("1y", 365 * DAY)])
def test_human_ttls(run, files, ttl, seconds):
    record = json.loads(run("images", "upload", files / "a.png", "--ttl", ttl, "--json").stdout)
    assert seconds - 60 < seconds_until(record["expires_at"]) <= seconds


@pytest.mark.parametrize("ttl", ["0", "-5", "7x", "11y", "1.5h", ""])
def test_bad_ttls_are_one_line_and_upload_nothing(run, files, ttl):
    result = run("images", "upload", files / "a.png", "--ttl", ttl)
    assert result.returncode == 2
    assert "TTL" in result.stderr or "ttl" in result.stderr
    assert records(run) == []


def test_ttl_on_update_set_ttl_and_generate(run, files, http):
    record = json.loads(run("images", "upload", files / "a.png", "--json").stdout)
    updated = json.loads(run("images", "update", record["id"], "--ttl", "2d", "--json").stdout)
    assert 2 * DAY - 60 < seconds_until(updated["expires_at"]) <= 2 * DAY
    cleared = json.loads(run("images", "update", record["id"], "--ttl", "permanent", "--json").stdout)
    assert cleared["expires_at"] is None
    assert json.loads(run("images", "set-ttl", record["id"], "45m", "--json").stdout)["expires_at"]
    assert json.loads(run("images", "set-ttl", record["id"], "permanent", "--json").stdout)["expires_at"] is None
    assert run("images", "set-ttl", record["id"], "11y").returncode == 2

    generation = json.loads(run("image-generators", "generate", "--prompt", "a lighthouse", "--visibility", "public", "--ttl", "1h", "--json").stdout)
    hosted = generation["hosted_images"][0]
    assert hosted["visibility"] == "public" and 3540 < seconds_until(hosted["expires_at"]) <= 3600
    assert http.get(hosted["url"]).status_code == 200


def test_anonymous_generation_cannot_choose_visibility(run):
    result = run("image-generators", "generate", "--prompt", "a lighthouse", "--visibility", "private", extra_env={"GOODEYE_API_KEY": ""})
    assert result.returncode == 1 and "invalid_request" in result.stderr


# --- update: alias and filename; list shows filenames ---------------------------------


def test_update_alias_filename_and_list_column(run, files, cli_stack, owner, http):
    first = json.loads(run("images", "upload", files / "a.png", "--visibility", "public", "--json").stdout)
    second = json.loads(run("images", "upload", files / "b.jpg", "--json").stdout)
    renamed = json.loads(run("images", "update", first["id"], "--filename", "hero.png", "--alias", "@hero", "--json").stdout)
    assert renamed["filename"] == "hero.png" and renamed["alias"] == "@hero" and renamed["url"] == first["url"]
    org, project = owner.project.split("/")
    assert http.get(f"{cli_stack.url}/cdn/{org}/{project}/img/hero.png").status_code == 200
    assert http.get(f"{cli_stack.url}/cdn/{org}/{project}/img/@hero").status_code == 200
    # A name another image holds gets a suffix, as at upload.
    clash = json.loads(run("images", "update", second["id"], "--filename", "hero.png", "--json").stdout)
    assert clash["filename"].startswith("hero-") and clash["filename"].endswith(".png")
    dropped = json.loads(run("images", "update", first["id"], "--no-alias", "--json").stdout)
    assert dropped["alias"] is None
    assert run("images", "update", first["id"], "--alias", "@a", "--no-alias").returncode == 2

    listed = run("images", "list").stdout.strip().splitlines()
    assert [line.split("\t")[-1] for line in listed] == [clash["filename"], "hero.png"]


# --- download ----------------------------------------------------------------------


def test_download_to_a_file_to_stdout_and_by_default_name(run, files, tmp_path):
    record = json.loads(run("images", "upload", files / "a.png", "--json").stdout)  # private
    target = tmp_path / "out" / "copy.png"
    target.parent.mkdir()
    result = run("images", "download", record["id"], "-o", target)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{target}\t{record['size_bytes']}"
    assert target.read_bytes() == (files / "a.png").read_bytes()

    piped = run("images", "download", record["id"], "-o", "-", binary=True)
    assert piped.returncode == 0 and piped.stdout == (files / "a.png").read_bytes()

    workdir = tmp_path / "here"
    workdir.mkdir()
    as_json = json.loads(run("images", "download", record["id"], "--json", cwd=workdir).stdout)
    assert as_json == {"id": record["id"], "path": "a.png", "size_bytes": record["size_bytes"]}
    assert (workdir / "a.png").read_bytes() == (files / "a.png").read_bytes()


def test_download_errors_leave_no_file(run, cli_stack, files, tmp_path):
    record = json.loads(run("images", "upload", files / "a.png", "--json").stdout)
    stranger = cli_stack.new_owner()
    target = tmp_path / "nothing.png"
    result = run("images", "download", record["id"], "-o", target, extra_env={"GOODEYE_API_KEY": stranger.key})
    assert result.returncode == 4 and "image_not_found" in result.stderr
    assert not target.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".goodeye")] == []
    assert run("images", "download", record["id"], "-o", "-", "--json").returncode == 2


def test_download_progress_bar_on_a_terminal_only(run, cli_stack, owner, tmp_path):
    big = tmp_path / "noise.png"
    Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3)).save(big)
    record = json.loads(run("images", "upload", big, "--json").stdout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODEYE_")}
    env.update(GOODEYE_URL=cli_stack.url, GOODEYE_API_KEY=owner.key, GOODEYE_CONFIG=str(tmp_path / "absent.json"))
    code, shown = through_a_terminal(["images", "download", record["id"], "-o", tmp_path / "copy.png"], env, tmp_path)
    assert code == 0 and "downloading" in shown and "100%" in shown
    assert (tmp_path / "copy.png").read_bytes() == big.read_bytes()
    piped = run("images", "download", record["id"], "-o", tmp_path / "again.png")
    assert piped.returncode == 0 and piped.stderr == ""
    # Image bytes never go to a terminal.
    code, shown = through_a_terminal(["images", "download", record["id"], "-o", "-"], env, tmp_path)
    assert code == 2 and "terminal" in shown


# --- open, completion, version -----------------------------------------------------------


def test_open_prints_the_url_and_opens_the_browser_only_when_asked(run, files, tmp_path):
    record = json.loads(run("images", "upload", files / "a.png", "--visibility", "public", "--json").stdout)
    # A stand-in for the system's opener records what it was asked to open.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened.txt"
    opener = bin_dir / "xdg-open"
    opener.write_text(f"#!/bin/sh\necho \"$1\" >> {opened}\n")
    opener.chmod(opener.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    plain = run("images", "open", record["id"], extra_env=env)
    assert plain.returncode == 0 and plain.stdout.strip() == record["url"] and not opened.exists()
    browsed = run("images", "open", record["id"], "--browser", extra_env=env)
    assert browsed.returncode == 0 and opened.read_text().strip() == record["url"]
    assert run("images", "open", "img_nothere").returncode == 4
    # A private image gets a signed URL: anyone holding it may open it, for a while.
    private = json.loads(run("images", "upload", files / "b.jpg", "--json").stdout)
    signed = run("images", "open", private["id"]).stdout.strip()
    assert "signature=" in signed and requests.get(signed).status_code == 200
    assert requests.get(private["url"]).status_code == 401
    assert run("images", "open", private["id"], "--expires-in", "8d").returncode == 2


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(run, shell):
    result = run("completion", shell)
    assert result.returncode == 0 and "_GOODEYE_COMPLETE" in result.stdout


def test_completion_completes_commands(run):
    result = run("images", extra_env={"_GOODEYE_COMPLETE": "bash_complete", "COMP_WORDS": "goodeye images dow", "COMP_CWORD": "2"})
    assert "download" in result.stdout


def test_version(run):
    result = run("--version")
    assert result.returncode == 0 and "version" in result.stdout


# --- MCP ------------------------------------------------------------------------------


def test_mcp_public_generation_in_one_call_and_names(cli_stack, owner, tmp_path, http):
    async def scenario(client):
        generation = ok(await client.call_tool("generate_image", {"prompt": "a red kite", "visibility": "public", "ttl_seconds": 600}))
        hosted = generation["hosted_images"][0]
        assert hosted["visibility"] == "public" and hosted["expires_at"]
        assert http.get(hosted["url"]).status_code == 200
        uploaded = ok(await client.call_tool("upload_image", {"data": b64(factories.png()), "alias": "@logo"}))
        assert uploaded["alias"] == "@logo"
        renamed = ok(await client.call_tool("update_image", {"image_id": uploaded["id"], "filename": "logo.png", "alias": "@brand"}))
        assert renamed["filename"] == "logo.png" and renamed["alias"] == "@brand"
        dropped = ok(await client.call_tool("update_image", {"image_id": uploaded["id"], "remove_alias": True}))
        assert dropped["alias"] is None
        both = await client.call_tool("update_image", {"image_id": uploaded["id"], "remove_alias": True, "alias": "@x"})
        assert tool_error(both) == "invalid_request"
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"visibility", "ttl_seconds"} <= set(tools["generate_image"].input_schema["properties"])
        assert tools["delete_image"].description.startswith("Use only when")

    run_with_mcp(cli_stack, owner.key, tmp_path, scenario)

