"""Model access over HTTP: retries (429 with Retry-After, 5xx storms), garbage bodies, cache and replay."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from scripted_server import Raw, http_error, text

from engine.llm.client import ModelClient, ModelError


def _complete(settings, prompt="hello"):
    async def go():
        client = ModelClient(settings)
        try:
            return await client.complete(client.build_request(settings.model, [{"role": "user", "content": prompt}]))
        finally:
            await client.close()

    return asyncio.run(go())


def test_429_then_success_honours_retry_after(scripted, make_settings):
    def script(req, n):
        if n == 0:
            return http_error(429, "slow down", {"Retry-After": "0.2"})
        return text("ok")

    srv = scripted(script)
    t0 = time.monotonic()
    reply = _complete(make_settings(srv, retry_max_s=1.0))
    assert reply.content == "ok" and not reply.cached and reply.attempts == 2
    assert len(srv.requests) == 2
    assert time.monotonic() - t0 >= 0.2  # waited at least what Retry-After asked


def test_500_storm_gives_up_after_max_retries(scripted, make_settings):
    srv = scripted(lambda req, n: http_error(500, "boom"))
    with pytest.raises(ModelError, match="server error 500.*gave up after 4 attempts"):
        _complete(make_settings(srv, max_retries=3))
    assert len(srv.requests) == 4


def test_500s_then_success(scripted, make_settings):
    srv = scripted(lambda req, n: http_error(503) if n < 2 else text("fine"))
    assert _complete(make_settings(srv)).content == "fine"
    assert len(srv.requests) == 3


def test_garbage_body_is_retried_then_reported(scripted, make_settings):
    srv = scripted(lambda req, n: Raw(200, b"<html>proxy error</html>\x00\xff", {"Content-Type": "application/json"}))
    with pytest.raises(ModelError, match="garbage response body"):
        _complete(make_settings(srv, max_retries=1))
    assert len(srv.requests) == 2


def test_garbage_then_good_body(scripted, make_settings):
    srv = scripted(lambda req, n: Raw(200, b'{"choices": "nope"}') if n == 0 else text("good"))
    assert _complete(make_settings(srv)).content == "good"


@pytest.mark.parametrize("body", [
    b'{"choices": [{"message": {"content": "x", "tool_calls": 5}}]}',
    b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": [1], "completion_tokens": 2}}',
    b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}',
])
def test_garbage_inside_a_well_formed_body_is_retried(scripted, make_settings, body):
    srv = scripted(lambda req, n: Raw(200, body) if n == 0 else text("good"))
    assert _complete(make_settings(srv)).content == "good"
    assert len(srv.requests) == 2


def test_negative_usage_cannot_pay_the_budget_back(scripted, make_settings):
    body = b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -5000, "completion_tokens": 3}}'
    srv = scripted(lambda req, n: Raw(200, body))
    reply = _complete(make_settings(srv))
    assert (reply.tokens_in, reply.tokens_out) == (0, 3)


def test_client_error_is_not_retried(scripted, make_settings):
    srv = scripted(lambda req, n: http_error(400, "bad model"))
    with pytest.raises(ModelError, match=r"refused the request \(400\)"):
        _complete(make_settings(srv))
    assert len(srv.requests) == 1


def test_connection_refused_is_a_model_error(make_settings):
    with pytest.raises(ModelError, match="cannot reach the provider"):
        _complete(make_settings(None, max_retries=1))


def test_retries_stop_at_the_runs_deadline(scripted, make_settings):
    srv = scripted(lambda req, n: http_error(503, "overloaded"))
    settings = make_settings(srv, max_retries=8, retry_base_s=0.5, retry_max_s=5.0)  # all 8 waits: over 13 s
    waits: list[tuple[float, float]] = []  # (when, how long) of every wait between attempts
    deadline = 0.0

    async def recorded_sleep(delay: float) -> None:
        waits.append((time.monotonic(), delay))
        await asyncio.sleep(delay)

    async def go():
        nonlocal deadline
        client = ModelClient(settings, sleep=recorded_sleep)
        client.deadline = deadline = time.monotonic() + 1.0
        try:
            return await client.complete(client.build_request(settings.model, [{"role": "user", "content": "x"}]))
        finally:
            await client.close()

    started = time.monotonic()
    with pytest.raises(ModelError, match="time budget ends first"):
        asyncio.run(go())
    assert 1 <= len(srv.requests) < 9 and len(waits) == len(srv.requests) - 1
    assert all(when + delay <= deadline + 0.25 for when, delay in waits), (deadline, waits)  # no wait outlives it
    assert time.monotonic() - started < 10.0


def test_cache_answers_a_repeat_without_a_request(scripted, make_settings):
    srv = scripted(lambda req, n: text(f"answer {n}"))
    settings = make_settings(srv)
    first = _complete(settings)
    second = _complete(settings)
    assert (first.content, first.cached) == ("answer 0", False)
    assert (second.content, second.cached) == ("answer 0", True)
    assert len(srv.requests) == 1
    _complete(settings, prompt="something else")  # a different request is a miss
    assert len(srv.requests) == 2


def test_failures_are_not_cached(scripted, make_settings):
    srv = scripted(lambda req, n: http_error(500) if n < 4 else text("late"))
    settings = make_settings(srv, max_retries=3)
    with pytest.raises(ModelError):
        _complete(settings)
    assert _complete(settings).content == "late"


def test_cache_key_covers_base_url(scripted, make_settings):
    a = scripted(lambda req, n: text("from a"))
    b = scripted(lambda req, n: text("from b"))
    assert _complete(make_settings(a)).content == "from a"
    assert _complete(make_settings(b)).content == "from b"


def test_cache_key_covers_routing_headers(scripted, make_settings):
    srv = scripted(lambda req, n: text(f"answer {n}"))
    route_a = make_settings(srv, headers={"X-Route": "provider-a"})
    assert _complete(route_a).content == "answer 0"
    assert _complete(route_a).cached  # same headers: a hit
    other = _complete(make_settings(srv, headers={"X-Route": "provider-b"}))  # another route: a miss
    assert (other.content, other.cached) == ("answer 1", False) and len(srv.requests) == 2
    secret = "sk-routing-header-value-123456"
    _complete(make_settings(srv, headers={"X-Route": secret}))
    files = [p for p in make_settings(srv).resolved_cache_dir().rglob("*") if p.is_file()]
    assert len(files) == 3 and not any(secret in str(p) or secret in p.read_text() for p in files)


def test_record_then_replay_without_a_server(scripted, make_settings, tmp_path):
    srv = scripted(lambda req, n: text("recorded"))
    log = tmp_path / "replay.jsonl"
    assert _complete(make_settings(srv, replay=log, cache=False)).content == "recorded"
    assert log.read_text().count("\n") == 1
    replayed = _complete(make_settings(None, replay=log, cache=False))  # no server at all
    assert replayed.content == "recorded" and replayed.cached
    with pytest.raises(ModelError, match="not in the replay file"):
        _complete(make_settings(None, replay=log, cache=False), prompt="never recorded")


def test_a_corrupt_replay_body_is_a_model_error(scripted, make_settings, tmp_path):
    srv = scripted(lambda req, n: text("recorded"))
    log = tmp_path / "replay.jsonl"
    _complete(make_settings(srv, replay=log, cache=False))
    log.write_text(log.read_text().replace('"choices"', '"chosen"'))
    with pytest.raises(ModelError, match="response has no choices"):
        _complete(make_settings(None, replay=log, cache=False))


def test_headers_and_api_key_reach_the_server(scripted, make_settings):
    srv = scripted(lambda req, n: text("ok"))
    _complete(make_settings(srv, headers={"X-Team": "halo"}, temperature=0.1, max_output_tokens=50,
                            reasoning_effort="low"))
    req = srv.requests[0]
    assert req["temperature"] == 0.1 and req["max_tokens"] == 50 and req["reasoning_effort"] == "low"
    assert srv.headers[0]["x-team"] == "halo"
    assert srv.headers[0]["authorization"] == "Bearer test-key"


def test_timeout_is_retried(scripted, make_settings):
    answer_the_first = threading.Event()

    def script(req, n):
        if n == 0:
            answer_the_first.wait(30)  # outlives the client's timeout
        return text("after a timeout")

    srv = scripted(script)
    try:
        assert _complete(make_settings(srv, request_timeout_s=1.0)).content == "after a timeout"
    finally:
        answer_the_first.set()
    assert len(srv.requests) == 2


def test_parallel_tool_calls_sent_only_to_turn_it_off(scripted, make_settings):
    srv = scripted(lambda req, n: text("ok"))
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

    async def go(settings):
        client = ModelClient(settings)
        try:
            await client.complete(client.build_request("m", [{"role": "user", "content": "x"}], tools))
        finally:
            await client.close()

    asyncio.run(go(make_settings(srv, cache=False)))
    asyncio.run(go(make_settings(srv, cache=False, parallel_tool_calls=False)))
    assert "parallel_tool_calls" not in srv.requests[0] and srv.requests[1]["parallel_tool_calls"] is False
