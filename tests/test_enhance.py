"""Prompt enhancement: rule-based templates and an OpenAI-compatible chat model behind a real HTTP server."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from goodeye.config import load_settings
from goodeye.errors import InvalidRequest
from goodeye.generation.enhance import (
    TEMPLATE_NAMES,
    TEMPLATES,
    ChatEnhancer,
    apply_template,
    chat_enhancer_from_settings,
    enhance_prompt,
)

# -- templates -----------------------------------------------------------------


def test_template_names():
    assert TEMPLATE_NAMES == ("general", "photorealistic", "illustration", "minimalist", "sticker", "product", "comic")
    assert set(TEMPLATES) == set(TEMPLATE_NAMES)


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_each_template_wraps_the_prompt_in_its_style(template):
    enhanced = enhance_prompt("  a red   fox in the snow ", template)
    lead, styles = TEMPLATES[template]
    assert "red fox in the snow" in enhanced
    assert enhanced != "a red fox in the snow"
    assert "  " not in enhanced
    for style in styles:
        assert style in enhanced
    if lead:
        assert enhanced.lower().startswith(lead.lower() + " a red fox")


def test_templates_differ_from_each_other():
    results = {enhance_prompt("a lighthouse", template) for template in TEMPLATE_NAMES}
    assert len(results) == len(TEMPLATE_NAMES)


def test_template_phrases_already_in_the_prompt_are_not_repeated():
    enhanced = enhance_prompt("A comic book panel of a robot, vivid colors.", "comic")
    assert enhanced.lower().count("comic book panel of") == 1
    assert enhanced.count("vivid colors") == 1
    assert "bold ink lines" in enhanced
    assert not enhanced.endswith(".")


def test_auto_enhance_off_returns_the_prompt_whitespace_normalised():
    assert enhance_prompt("  a  cat\n\tin a hat  ", "photorealistic", auto_enhance=False) == "a cat in a hat"


def test_template_names_are_case_insensitive():
    assert enhance_prompt("a robot", " Comic ") == enhance_prompt("a robot", "comic")


@pytest.mark.parametrize("auto_enhance", [True, False])
def test_unknown_template_is_an_invalid_request_listing_the_valid_ones(auto_enhance):
    with pytest.raises(InvalidRequest) as caught:
        enhance_prompt("a cat", "watercolour", auto_enhance=auto_enhance)
    assert caught.value.status == 400
    assert caught.value.code == "VALIDATION_ERROR"
    assert "watercolour" in caught.value.message
    for name in TEMPLATE_NAMES:
        assert name in caught.value.message


def test_empty_prompt_stays_empty():
    assert enhance_prompt("   ", "sticker") == ""


# -- chat model ------------------------------------------------------------------


class ChatServer:
    """An OpenAI-compatible chat completions endpoint on 127.0.0.1, in one of a few modes."""

    def __init__(self):
        self.mode = "ok"
        self.answer = "A fox with a rust-red coat trotting through fresh snow at dawn, warm rim light"
        self.requests = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(self.rfile.read(length) or b"null")}
                )
                if server.mode == "slow":
                    server.release.wait(10)
                if server.mode == "error":
                    self._send(500, b'{"error": {"message": "model overloaded"}}')
                elif server.mode == "garbage":
                    self._send(200, b"<html>not json</html>")
                elif server.mode == "empty":
                    self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": "  "}}]}).encode())
                else:
                    content = f'"{server.answer}"'
                    message = {"role": "assistant", "content": content}
                    answer = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}
                    self._send(200, json.dumps(answer).encode())

            def _send(self, status, body):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (the timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


def test_chat_enhancer_returns_the_models_rewrite(chat_server):
    chat = ChatEnhancer(chat_server.base_url + "/", "sk-test", "tiny-chat", timeout=5)
    result = enhance_prompt("a  fox in snow", "illustration", chat=chat)
    assert result == chat_server.answer
    [request] = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"]["model"] == "tiny-chat"
    messages = request["body"]["messages"]
    assert messages[-1] == {"role": "user", "content": "a fox in snow"}
    assert "clean linework" in messages[0]["content"]


def test_chat_enhancer_sends_no_authorization_without_a_key(chat_server):
    ChatEnhancer(chat_server.base_url, "", "tiny-chat", timeout=5).enhance("a fox")
    assert "Authorization" not in chat_server.requests[0]["headers"]


def test_auto_enhance_off_does_not_call_the_chat_model(chat_server):
    chat = ChatEnhancer(chat_server.base_url, "sk-test", "tiny-chat", timeout=5)
    assert enhance_prompt(" a fox ", "comic", auto_enhance=False, chat=chat) == "a fox"
    assert chat_server.requests == []


@pytest.mark.parametrize("mode", ["error", "garbage", "empty", "slow"])
def test_chat_failures_fall_back_to_the_template(chat_server, caplog, mode):
    chat_server.mode = mode
    chat = ChatEnhancer(chat_server.base_url, "sk-test", "tiny-chat", timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="goodeye.generation.enhance"):
        result = enhance_prompt("a fox in snow", "sticker", chat=chat)
    assert result == apply_template("a fox in snow", "sticker")
    assert len(chat_server.requests) == 1
    assert any("tiny-chat" in record.getMessage() for record in caplog.records)
    assert "sk-test" not in caplog.text


def test_unreachable_chat_model_falls_back_to_the_template(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused.
    chat = ChatEnhancer(f"http://127.0.0.1:{port}/v1", "sk-test", "tiny-chat", timeout=2)
    with caplog.at_level(logging.WARNING, logger="goodeye.generation.enhance"):
        assert chat.enhance("a fox", "product") == apply_template("a fox", "product")
    assert caplog.records


def test_chat_enhancer_comes_from_settings_only_when_a_chat_model_is_configured():
    assert chat_enhancer_from_settings(load_settings({})) is None
    assert chat_enhancer_from_settings(load_settings({"GOODEYE_OPENAI_CHAT_MODEL": "tiny-chat"})) is None
    settings = load_settings(
        {
            "GOODEYE_OPENAI_BASE_URL": "http://models.internal/v1",
            "GOODEYE_OPENAI_API_KEY": "sk-test",
            "GOODEYE_OPENAI_CHAT_MODEL": "tiny-chat",
        }
    )
    chat = chat_enhancer_from_settings(settings)
    assert (chat.base_url, chat.api_key, chat.model) == ("http://models.internal/v1", "sk-test", "tiny-chat")
    assert 0 < chat.timeout <= 15
