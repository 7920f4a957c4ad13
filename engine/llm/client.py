"""Model access over Chat Completions with function calling (any OpenAI-compatible server).

``ModelClient.complete`` sends one request and returns a ``ModelReply``: answered from the
replay file or the cache when it can, else from the provider with jittered exponential
backoff on 429 (``Retry-After`` honoured), 5xx, timeouts, connection errors and garbage
bodies. Retries are invisible to turn counting: one ``complete`` is one turn.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.llm.cache import ReplayLog, ResponseCache, request_key
from engine.llm.settings import EngineSettings


class ModelError(RuntimeError):
    """The provider could not give an answer (after retries, or a non-retryable error)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class ModelReply:
    """One answer: text and/or tool calls, token usage, and whether it came from the cache."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cached: bool = False
    refusal: str = ""
    attempts: int = 1

    def assistant_message(self) -> dict[str, Any]:
        # null content only beside tool calls: some servers refuse an assistant message with neither
        msg: dict[str, Any] = {"role": "assistant", "content": self.content or (None if self.tool_calls else "")}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return msg


def parse_body(body: Any) -> ModelReply:
    """A Chat Completions body → ``ModelReply``; anything else raises ``ValueError``."""
    if not isinstance(body, dict):
        raise ValueError("response body is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("response has no choices")
    msg = choices[0].get("message")
    if not isinstance(msg, dict):
        raise ValueError("response choice has no message")
    raw_calls = msg.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ValueError("tool_calls is not a list")
    calls: list[ToolCall] = []
    for i, tc in enumerate(raw_calls):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ValueError("tool call without a function name")
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = orjson.dumps(args).decode() if args is not None else "{}"
        calls.append(ToolCall(id=str(tc.get("id") or f"call_{i}"), name=fn["name"], arguments=args))
    raw_usage = body.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    content = msg.get("content")
    return ModelReply(
        content=content if isinstance(content, str) else "",
        tool_calls=calls,
        finish_reason=str(choices[0].get("finish_reason") or ""),
        tokens_in=_count(usage.get("prompt_tokens")),
        tokens_out=_count(usage.get("completion_tokens")),
        refusal=str(msg.get("refusal") or ""),
    )


def _count(value: Any) -> int:
    """A usage count (never negative: a budget cannot be paid back); a non-number is a garbage body."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        raise ValueError(f"usage count {str(value)[:40]!r} is not a number") from None


def _is_openai_host(base_url: str | None) -> bool:
    return base_url is None or "api.openai.com" in base_url


class ModelClient:
    """One ``AsyncOpenAI`` for the run, plus cache, replay and retries."""

    def __init__(self, settings: EngineSettings, *, sleep: Any = asyncio.sleep) -> None:
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:  # pragma: no cover - guarded by the CLI and make_reasoner
            raise ModelError('the LLM engine needs the openai package: pip install "pytest-halo[llm]"') from exc
        self.settings = settings
        self.base_url = settings.base_url
        self._client = AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.resolved_api_key() or "no-key",
            default_headers=settings.headers or None,
            max_retries=0,
            timeout=settings.request_timeout_s,
        )
        self.cache = ResponseCache(settings.resolved_cache_dir()) if settings.cache else None
        self.replay = ReplayLog(settings.replay) if settings.replay else None
        self._sleep = sleep
        self.deadline: float | None = None  # time.monotonic() past which no retry is waited for (the run's budget)
        self._rng = random.Random()

    async def close(self) -> None:
        await self._client.close()

    def build_request(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        tool_choice: Any = None,
        max_tokens: int | None = None,
        reasoning: bool = True,
    ) -> dict[str, Any]:
        s = self.settings
        req: dict[str, Any] = {"model": model, "messages": messages}
        if tools:
            req["tools"] = tools
            if not s.parallel_tool_calls:  # sent only to turn it off: some servers reject the unknown key
                req["parallel_tool_calls"] = False
            if tool_choice is not None:
                req["tool_choice"] = tool_choice
        if s.temperature is not None:
            req["temperature"] = s.temperature
        out = max_tokens or s.max_output_tokens
        if out:
            req["max_completion_tokens" if _is_openai_host(self.base_url) else "max_tokens"] = out
        if reasoning and s.reasoning_effort:
            req["reasoning_effort"] = s.reasoning_effort
        return req

    async def complete(self, request: dict[str, Any]) -> ModelReply:
        """Answer ``request`` from replay, cache or provider (in that order)."""
        if self.replay is not None and self.replay.replaying:
            try:
                reply = parse_body(self.replay.answer(request_key(request, None)))
            except (KeyError, ValueError) as exc:
                raise ModelError(str(exc).strip("'\"")) from None
            reply.cached = True
            return reply
        key = request_key(request, self.base_url, self.settings.headers)
        if self.cache is not None:
            body = self.cache.get(key)
            if body is not None:
                try:
                    reply = parse_body(body)
                    reply.cached = True
                    if self.replay is not None:
                        self.replay.record(request_key(request, None), body)
                    return reply
                except ValueError:
                    pass
        body, attempts = await self._with_retries(request)
        reply = parse_body(body)
        reply.attempts = attempts
        if self.cache is not None and not reply.refusal:  # a refusal may be retried: never pin it
            self.cache.put(key, body)
        if self.replay is not None:
            self.replay.record(request_key(request, None), body)
        return reply

    async def _with_retries(self, request: dict[str, Any]) -> tuple[dict[str, Any], int]:
        s = self.settings
        last = ""
        for attempt in range(s.max_retries + 1):
            try:
                return await self._send(request), attempt + 1
            except _Retryable as exc:
                last = str(exc)
                if attempt >= s.max_retries:
                    break
                delay = min(s.retry_max_s, s.retry_base_s * (2**attempt)) * (0.5 + self._rng.random() / 2)
                if exc.retry_after is not None:
                    delay = min(max(delay, exc.retry_after), max(s.retry_max_s, 0.0))
                if self.deadline is not None and time.monotonic() + delay > self.deadline:
                    raise ModelError(
                        f"{last} (gave up after {attempt + 1} attempts: the run's time budget ends first)"
                    ) from None
                await self._sleep(delay)
        raise ModelError(f"{last} (gave up after {s.max_retries + 1} attempts)")

    async def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        import openai

        try:
            raw = await self._client.chat.completions.with_raw_response.create(**request)
        except openai.RateLimitError as exc:
            raise _Retryable(f"rate limited (429): {_short(exc)}", _retry_after(exc.response)) from exc
        except openai.APIStatusError as exc:
            code = exc.status_code
            if code >= 500 or code in (408, 409):
                raise _Retryable(f"server error {code}: {_short(exc)}", _retry_after(exc.response)) from exc
            raise ModelError(f"provider refused the request ({code}): {_short(exc)}") from exc
        except openai.APITimeoutError as exc:
            raise _Retryable("request timed out") from exc
        except openai.APIConnectionError as exc:
            raise _Retryable(f"cannot reach the provider: {_short(exc)}") from exc
        text = raw.http_response.content
        try:
            body = orjson.loads(text)
            parse_body(body)
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise _Retryable(f"garbage response body ({len(text)} bytes): {exc}") from exc
        return body  # type: ignore[no-any-return]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
