"""The `goodeye` client CLI (images, image-generators, login) against a live stack through nginx.

Most commands run in-process through click's CliRunner (fast, and the autouse
fixture checks every response against the OpenAPI document); the console script
itself runs as a subprocess where a real process matters: exit codes, pipes, a
terminal for the progress bar, the config file.
"""

import json
import os
import pty
import stat
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from goodeye.cli import main as cli_main
from tests import factories
from tests.conftest import free_port

GOODEYE = os.path.join(os.path.dirname(sys.executable), "goodeye")


@pytest.fixture()
def owner(cli_stack):
    return cli_stack.new_owner()


@pytest.fixture()
def cli(cli_stack, owner, tmp_path):
    """Run `goodeye ARGS` in-process as `owner`, with no saved config; returns click's Result."""

    def run(*args, key=owner.key, input=None, url=cli_stack.url):
        env = {"GOODEYE_URL": url, "GOODEYE_API_KEY": key, "GOODEYE_CONFIG": str(tmp_path / "absent.json")}
        return CliRunner().invoke(cli_main, [str(arg) for arg in args], env=env, input=input)

    return run


def as_json(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.fixture()
def png_file(tmp_path):
    path = tmp_path / "hero.png"
    path.write_bytes(factories.png((40, 30)))
    return path


def uploaded(cli, path, *args):
    return as_json(cli("images", "upload", path, "--json", *args))


# --- images upload ------------------------------------------------------------


def test_upload_prints_id_and_url(cli, png_file, http):
    result = cli("images", "upload", png_file)
    assert result.exit_code == 0, result.stderr
    image_id, url = result.stdout.strip().split("\t")
    assert image_id.startswith("img_") and "/v1/i/" in url
    # Private by default: anonymous gets 401, the record says so.
    assert http.get(url).status_code == 401
    assert as_json(cli("images", "get", image_id, "--json"))["visibility"] == "private"


def test_upload_json_with_every_option(cli, png_file, http):
    record = uploaded(cli, png_file, "--visibility", "public", "--ttl", "3600", "--alias", "@hero", "--filename", "cover.png")
    assert record["id"].startswith("img_") and record["visibility"] == "public"
    assert record["alias"] == "@hero" and record["filename"] == "cover.png" and record["expires_at"]
    served = http.get(record["url"])
    assert served.status_code == 200 and served.content == png_file.read_bytes()


def test_upload_strip_metadata(cli, tmp_path, http):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(factories.image_with_metadata("JPEG"))
    record = uploaded(cli, photo, "--visibility", "public", "--strip-metadata")
    served = http.get(record["url"]).content
    assert factories.SECRET not in served and record["size_bytes"] == len(served) < photo.stat().st_size
    kept = uploaded(cli, photo, "--visibility", "public")
    assert http.get(kept["url"]).content == photo.read_bytes()


def test_upload_refused_by_the_server_exits_1_with_slug(cli, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    result = cli("images", "upload", text)
    assert result.exit_code == 1
    assert "unsupported_image_type" in result.stderr and result.stdout == ""


def test_upload_of_a_missing_file_is_a_usage_error(cli, tmp_path):
    assert cli("images", "upload", tmp_path / "nope.png").exit_code == 2


# --- images list ----------------------------------------------------------------


def test_list_pages_cursor_all_and_filters(cli, png_file):
    ids = [uploaded(cli, png_file)["id"] for _ in range(3)]
    public = uploaded(cli, png_file, "--visibility", "public")["id"]
    newest_first = [public, *reversed(ids)]

    page = as_json(cli("images", "list", "--limit", 2, "--json"))
    assert [r["id"] for r in page["data"]] == newest_first[:2] and page["next_cursor"]
    rest = as_json(cli("images", "list", "--limit", 2, "--cursor", page["next_cursor"], "--json"))
    assert [r["id"] for r in rest["data"]] == newest_first[2:] and rest["next_cursor"] is None

    everything = as_json(cli("images", "list", "--limit", 1, "--all", "--json"))
    assert [r["id"] for r in everything["data"]] == newest_first and everything["next_cursor"] is None

    human = cli("images", "list", "--limit", 2)
    assert human.exit_code == 0
    lines = [line.split("\t") for line in human.stdout.splitlines()]
    assert [line[0] for line in lines] == newest_first[:2] and lines[0][2:4] == ["public", "never"] and lines[0][4].startswith("hero")
    assert "--cursor" in human.stderr

    only_public = as_json(cli("images", "list", "--visibility", "public", "--json"))
    assert [r["id"] for r in only_public["data"]] == [public]
    assert len(as_json(cli("images", "list", "--source", "upload", "--all", "--json"))["data"]) == 4
    assert as_json(cli("images", "list", "--source", "generated", "--json"))["data"] == []


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "101"], ["--source", "other"], ["--all", "--cursor", "x"]])
def test_list_usage_errors_exit_2(cli, args):
    assert cli("images", "list", *args).exit_code == 2


def test_list_with_a_cursor_the_server_never_issued_exits_1(cli):
    result = cli("images", "list", "--cursor", "bogus")
    assert result.exit_code == 1 and "invalid_request" in result.stderr


# --- get, update, share, unshare, set-ttl -----------------------------------------


def test_get_human_and_json(cli, png_file):
    record = uploaded(cli, png_file)
    human = cli("images", "get", record["id"])
    assert human.exit_code == 0
    fields = dict(line.split("\t", 1) for line in human.stdout.splitlines())
    assert fields["id"] == record["id"] and fields["url"] == record["url"] and fields["expires_at"] == ""
    assert as_json(cli("images", "get", record["id"], "--json")) == record


def test_get_prints_a_variants_url_and_refuses_bad_parameters(cli, png_file):
    record = uploaded(cli, png_file)
    printed = cli("images", "get", record["id"], "--variant", "fm=webp,w=640")
    assert printed.exit_code == 0 and printed.stdout.strip() == f"{record['url']}?w=640&fm=webp"
    refused = cli("images", "get", record["id"], "--variant", "w=641")
    assert refused.exit_code == 2 and "640, 750" in refused.stderr


def test_get_unknown_id_exits_4(cli):
    result = cli("images", "get", "img_doesnotexist")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: image_not_found: ")


def test_get_of_another_projects_image_exits_4(cli, cli_stack, png_file):
    record = uploaded(cli, png_file)
    stranger = cli_stack.new_owner()
    assert cli("images", "get", record["id"], key=stranger.key).exit_code == 4


def test_update_visibility_ttl_and_permanent(cli, png_file, http):
    record = uploaded(cli, png_file)
    updated = as_json(cli("images", "update", record["id"], "--visibility", "public", "--ttl", "600", "--json"))
    assert updated["visibility"] == "public" and updated["expires_at"] and updated["url"] == record["url"]
    assert http.get(record["url"]).status_code == 200
    human = cli("images", "update", record["id"], "--permanent")
    assert human.exit_code == 0
    assert human.stdout.strip().split("\t") == [record["id"], record["url"], "public", "never"]
    assert as_json(cli("images", "get", record["id"], "--json"))["expires_at"] is None


def test_update_ttl_with_permanent_is_a_usage_error(cli, png_file):
    record = uploaded(cli, png_file)
    assert cli("images", "update", record["id"], "--ttl", "5", "--permanent").exit_code == 2
    assert cli("images", "update", record["id"], "--ttl", "0").exit_code == 2
    assert cli("images", "update", record["id"], "--visibility", "secret").exit_code == 2


def test_share_unshare_set_ttl(cli, png_file, http):
    record = uploaded(cli, png_file)
    assert as_json(cli("images", "share", record["id"], "--json"))["visibility"] == "public"
    assert http.get(record["url"]).status_code == 200
    unshared = cli("images", "unshare", record["id"])
    assert unshared.exit_code == 0 and unshared.stdout.split("\t")[2] == "private"
    assert http.get(record["url"]).status_code == 401
    assert as_json(cli("images", "set-ttl", record["id"], "86400", "--json"))["expires_at"]
    assert as_json(cli("images", "set-ttl", record["id"], "permanent", "--json"))["expires_at"] is None
    for bad in ("0", "-5", "soon"):
        assert cli("images", "set-ttl", record["id"], bad).exit_code == 2
    assert cli("images", "share", "img_missing").exit_code == 4


# --- delete ---------------------------------------------------------------------------


def test_delete_asks_and_no_answer_is_no(cli, png_file):
    record = uploaded(cli, png_file)
    unanswered = cli("images", "delete", record["id"])
    assert unanswered.exit_code == 6 and "not confirmed" in unanswered.stderr
    declined = cli("images", "delete", record["id"], input="n\n")
    assert declined.exit_code == 6
    assert cli("images", "get", record["id"]).exit_code == 0


def test_delete_confirmed_or_yes(cli, png_file, http):
    first, second = uploaded(cli, png_file, "--visibility", "public"), uploaded(cli, png_file)
    confirmed = cli("images", "delete", first["id"], input="y\n")
    assert confirmed.exit_code == 0 and confirmed.stdout.strip() == f"deleted {first['id']}"
    assert http.get(first["url"]).status_code == 404
    assert as_json(cli("images", "delete", second["id"], "--yes", "--json")) == {"id": second["id"], "deleted": True}
    assert cli("images", "get", second["id"]).exit_code == 4
    again = cli("images", "delete", second["id"], "--yes")
    assert again.exit_code == 4 and "image_not_found" in again.stderr


# --- credentials, server, exit codes --------------------------------------------------


def test_replace_keeps_the_url_and_serves_the_new_file(cli, png_file, tmp_path, http):
    record = uploaded(cli, png_file, "--visibility", "public")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(factories.image_with_metadata("JPEG"))
    result = cli("images", "replace", record["id"], photo, "--strip-metadata")
    assert result.exit_code == 0, result.stderr
    image_id, url, content_type, sha256 = result.stdout.strip().split("\t")
    assert (image_id, url, content_type) == (record["id"], record["url"], "image/jpeg")
    served = http.get(url)
    assert served.headers["Content-Type"] == "image/jpeg" and factories.SECRET not in served.content
    replaced = as_json(cli("images", "replace", record["id"], png_file, "--json"))
    assert replaced["sha256"] == record["sha256"] and http.get(url).content == png_file.read_bytes()
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    refused = cli("images", "replace", record["id"], text)
    assert refused.exit_code == 1 and "unsupported_image_type" in refused.stderr


def test_sign_prints_a_url_anyone_can_use_until_it_expires(cli, png_file, http):
    record = uploaded(cli, png_file)
    result = cli("images", "sign", record["id"], "--expires-in", "600")
    assert result.exit_code == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith(record["url"] + "?expires=") and http.get(url).content == png_file.read_bytes()
    signed = as_json(cli("images", "sign", record["id"], "--variant", "w=640,fm=webp", "--json"))
    assert signed["url"].startswith(record["url"] + "?w=640&fm=webp&expires=") and signed["expires_at"]
    for bad in (["--variant", "w=big"], ["--variant", "q=5"], ["--variant", "w=1,w=2"], ["--expires-in", "0"], ["--expires-in", "604801"]):
        assert cli("images", "sign", record["id"], *bad).exit_code == 2, bad
    assert as_json(cli("images", "rotate-signing-key", "--json"))["rotated_at"]


def test_no_key_and_a_wrong_key_exit_3(cli):
    missing = cli("images", "list", key=None)
    assert missing.exit_code == 3 and "auth_required" in missing.stderr and "goodeye login" in missing.stderr
    wrong = cli("images", "list", key="good_live_" + "x" * 40)
    assert wrong.exit_code == 3 and "invalid_api_key" in wrong.stderr


def test_flags_override_the_environment(cli, cli_stack, owner):
    result = cli("images", "list", "--json", "--url", cli_stack.url, "--api-key", owner.key, key="good_live_wrong", url="http://127.0.0.1:9")
    assert as_json(result)["data"] == []


def test_unreachable_server_exits_5(cli):
    result = cli("images", "list", url=f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 5 and "connection_failed" in result.stderr


def console(args, env, **kwargs):
    """Run the real `goodeye` console script."""
    return subprocess.run([GOODEYE, *map(str, args)], env=env, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture()
def client_env(cli_stack, owner, tmp_path):
    """Environment for the console script: this stack and key, a private config path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODEYE_")}
    env.update(GOODEYE_URL=cli_stack.url, GOODEYE_API_KEY=owner.key, GOODEYE_CONFIG=str(tmp_path / "cfg" / "config.json"))
    return env


def test_console_script_exit_codes_and_streams(client_env, png_file):
    uploaded_ = console(["images", "upload", png_file], client_env, stdin=subprocess.DEVNULL)
    assert uploaded_.returncode == 0 and uploaded_.stderr == ""
    image_id = uploaded_.stdout.split("\t")[0]
    assert json.loads(console(["images", "get", image_id, "--json"], client_env).stdout)["id"] == image_id
    assert console(["images", "delete", image_id], client_env, stdin=subprocess.DEVNULL).returncode == 6
    assert console(["images", "get", "img_nothere"], client_env).returncode == 4
    assert console(["images", "list"], {**client_env, "GOODEYE_API_KEY": "good_live_nope"}).returncode == 3
    assert console(["images", "bogus"], client_env).returncode == 2
    assert console(["images", "delete", image_id, "--yes"], client_env).returncode == 0


# --- progress bar ---------------------------------------------------------------------


@pytest.fixture()
def large_png(tmp_path):
    """A PNG of noise over 1 MiB (noise does not compress)."""
    path = tmp_path / "noise.png"
    Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3)).save(path)
    assert path.stat().st_size > 1024 * 1024
    return path


def test_no_progress_bar_when_piped(client_env, large_png):
    result = console(["images", "upload", large_png], client_env)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("img_")


def through_a_terminal(argv, env, cwd=None):
    """Run the console script with stdout and stderr on a pseudo-terminal; (exit code, what it showed)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([GOODEYE, *map(str, argv)], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    return proc.wait(timeout=120), output.decode()


def test_progress_bar_on_a_terminal(client_env, large_png):
    code, text = through_a_terminal(["images", "upload", large_png], client_env)
    assert code == 0
    assert "uploading" in text and "100%" in text
    assert "img_" in text


# --- login and the config file -----------------------------------------------------


def test_login_writes_0600_and_later_commands_use_it(client_env, cli_stack, owner, png_file):
    env = {k: v for k, v in client_env.items() if k not in ("GOODEYE_URL", "GOODEYE_API_KEY")}
    path = client_env["GOODEYE_CONFIG"]
    result = console(["login", "--url", cli_stack.url, "--api-key", owner.key, "--json"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"url": cli_stack.url, "config": path, "verified": True}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert owner.key not in result.stdout + result.stderr
    with open(path) as handle:
        assert json.load(handle) == {"url": cli_stack.url, "api_key": owner.key}
    uploaded_ = console(["images", "upload", png_file], env)
    assert uploaded_.returncode == 0, uploaded_.stderr
    listed = json.loads(console(["images", "list", "--json"], env).stdout)
    assert [r["id"] for r in listed["data"]] == [uploaded_.stdout.split("\t")[0]]
    # The environment still wins over the saved file.
    assert console(["images", "list"], {**env, "GOODEYE_API_KEY": "good_live_nope"}).returncode == 3


def test_login_with_a_wrong_key_saves_nothing(client_env, cli_stack):
    path = client_env["GOODEYE_CONFIG"]
    result = console(["login", "--url", cli_stack.url, "--api-key", "good_live_" + "z" * 40], client_env)
    assert result.returncode == 3 and "invalid_api_key" in result.stderr
    assert not os.path.exists(path)


def test_login_reads_the_key_from_stdin_and_honours_xdg(cli_stack, owner, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOODEYE_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    result = console(["login", "--url", cli_stack.url], env, input=owner.key + "\n")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "xdg" / "goodeye" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["api_key"] == owner.key
    assert console(["images", "list", "--json"], env).returncode == 0


def test_a_broken_config_file_is_reported(client_env):
    path = client_env["GOODEYE_CONFIG"]
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("{not json")
    result = console(["images", "list"], {k: v for k, v in client_env.items() if k != "GOODEYE_API_KEY"})
    assert result.returncode == 1 and "invalid_config" in result.stderr


# --- image-generators (the generation endpoints) ------------------------------------


def test_generators_list(cli):
    page = as_json(cli("image-generators", "list", "--json"))
    builtin = next(g for g in page["data"] if g["id"] == "builtin")
    assert "1:1" in builtin["aspect_ratios"]
    human = cli("image-generators", "list")
    assert human.exit_code == 0 and any(line.split("\t")[0] == "builtin" for line in human.stdout.splitlines())


def test_generate_hosts_every_output(cli):
    generation = as_json(cli("image-generators", "generate", "--prompt", "a lighthouse at dusk", "--n", "2", "--aspect-ratio", "16:9", "--seed", "7", "--json"))
    assert generation["generator"] == "builtin" and len(generation["hosted_images"]) == 2
    for hosted in generation["hosted_images"]:
        record = as_json(cli("images", "get", hosted["id"], "--json"))
        assert record["source"] == "generated" and record["visibility"] == "private" and record["width"] > record["height"]
    human = cli("image-generators", "generate", "builtin", "--prompt", "a lighthouse at dusk", "--seed", "7")
    assert human.exit_code == 0
    image_id, url = human.stdout.strip().split("\t")
    assert image_id.startswith("img_") and url.startswith("http")
    assert len(as_json(cli("images", "list", "--source", "generated", "--json"))["data"]) == 3


def test_generate_anonymously_is_public_with_a_ttl(cli, http):
    generation = as_json(cli("image-generators", "generate", "--prompt", "a small red boat", "--json", key=None))
    hosted = generation["hosted_images"][0]
    assert hosted["visibility"] == "public" and hosted["expires_at"]
    assert http.get(hosted["url"]).status_code == 200


def test_generate_errors(cli):
    unknown = cli("image-generators", "generate", "no-such-generator", "--prompt", "x")
    assert unknown.exit_code == 4 and "generator_not_found" in unknown.stderr
    assert cli("image-generators", "generate").exit_code == 2  # --prompt is required
    assert cli("image-generators", "generate", "--prompt", "x", "--n", "0").exit_code == 2
    bad_ratio = cli("image-generators", "generate", "--prompt", "x", "--aspect-ratio", "7:5")
    assert bad_ratio.exit_code == 1 and "invalid_request" in bad_ratio.stderr
