"""The README stays true to the code: its commands and its configuration table."""

import os
import re

from goodeye.config import settings_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md")) as handle:
        return handle.read()


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", readme(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["scripts/serve", "scripts/test"]
    for command in commands:
        assert os.access(os.path.join(ROOT, command), os.X_OK)


def test_every_setting_is_documented_with_its_default():
    text = readme()
    for env, default, _doc in settings_table():
        row = re.search(rf"^\| `{env}` \| ([^|]+) \|", text, re.M)
        assert row, f"{env} is missing from the README's configuration table"
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        assert row.group(1).strip() == (f"`{shown}`" if shown else "(empty)"), env
