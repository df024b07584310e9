"""Secrets out of log lines: URL shapes, registered secrets, whole records with tracebacks."""

from __future__ import annotations

import io
import logging

import pytest

from waystation.redact import install, redact, register_secret


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("mqtt://st-a-gw:pa55word@host:8883", "mqtt://st-a-gw:***@host:8883"),
        ("http://admin:p%40ss@127.0.0.1:8086/write", "http://admin:***@127.0.0.1:8086/write"),
        ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-123",
         "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"),
        ("POST /robot/send?access_token=t0k&timestamp=1&sign=s1g%3D HTTP/1.1",
         "POST /robot/send?access_token=***&timestamp=1&sign=*** HTTP/1.1"),
        ("cannot reach https://open.feishu.cn/open-apis/bot/v2/hook/0a1b-2c3d: timeout",
         "cannot reach https://open.feishu.cn/open-apis/bot/v2/hook/***: timeout"),
        ("/query?db=w&u=admin&p=secret&q=SELECT", "/query?db=w&u=admin&p=***&q=SELECT"),
        ("mqtt://st-a-gw@host:1883 and http://host:8086/ping", "mqtt://st-a-gw@host:1883 and http://host:8086/ping"),
    ],
)  # fmt: skip
def test_url_shapes(line: str, masked: str) -> None:
    assert redact(line) == masked


def test_registered_secrets_are_masked_anywhere_in_every_form() -> None:
    register_secret("s3cret/with space")
    register_secret("abc")  # too short to mask without masking words
    assert redact(
        "token s3cret/with space, quoted s3cret%2Fwith%20space, plus s3cret%2Fwith+space"
    ) == ("token ***, quoted ***, plus ***")
    assert redact("abc") == "abc"


def _fail(message: str) -> None:
    raise ValueError(message)


def test_installed_on_a_handler_masks_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test_redact")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    install(logger)
    install(logger)  # once is enough; twice changes nothing
    try:
        try:
            _fail("http://u:hunter22@h/x?token=t0ken")
        except ValueError:
            logger.exception("failed on %s", "https://h/open-apis/bot/v2/hook/t0k3n")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "hunter22" not in out
    assert "t0ken" not in out
    assert "t0k3n" not in out
    assert "ValueError: http://u:***@h/x?token=***" in out
