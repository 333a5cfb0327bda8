"""The app's log lines: one line per request whatever the path holds, in JSON or text."""

import json
import logging

import pytest

from goodeye import logs


@pytest.fixture()
def captured():
    """The formatted lines the request logger writes, with each formatter."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger(logs.REQUEST_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)


HOSTILE_PATH = '/v1/i/x\n{"request_id": "forged"}\r\x1b[31m'


def test_a_hostile_path_stays_on_one_json_line_and_forges_no_field(captured):
    logs.log_request("0" * 32, "GET", HOSTILE_PATH, 404, 1.234, "serve")
    line = logs.JsonFormatter().format(captured[0])
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "0" * 32 and entry["path"] == HOSTILE_PATH
    assert (entry["status"], entry["duration_ms"], entry["family"], entry["logger"]) == (404, 1.23, "serve", "goodeye.request")


def test_a_hostile_path_stays_on_one_text_line(captured):
    logs.log_request("f" * 32, "GET", HOSTILE_PATH, 404, 1.0, "serve")
    line = logs.TextFormatter().format(captured[0])
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert f'request_id="{"f" * 32}"' in line and " INFO goodeye.request: GET " in line


@pytest.mark.parametrize("log_format,formatter", [("json", "JsonFormatter"), ("text", "TextFormatter")])
def test_the_logging_config_names_the_formatter_and_silences_gunicorns_access_log(log_format, formatter):
    config = logs.logging_config(log_format)
    assert config["formatters"]["goodeye"]["()"] == f"goodeye.logs.{formatter}"
    assert config["loggers"]["gunicorn.access"]["handlers"] == []
