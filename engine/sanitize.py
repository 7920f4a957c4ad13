"""Make trace text safe to publish: secrets redacted, control characters and terminal escapes stripped.

Traces carry whatever the agent saw — API keys pasted in prompts, bearer headers in tool
arguments, credentials in connection strings, private keys read from disk — and whatever an
attacker put there (escape sequences that clear a terminal, bidi overrides that hide text).
Every publisher (findings.json, report.md, junit.xml, the terminal, GitHub) applies ``clean``.

Secret shapes come from detect-secrets' plugins (their ``denylist`` rules), plus the shapes those
rules miss (see ``rules``), plus the values of this process's environment variables named like
``*KEY*``/``*TOKEN*``/``*SECRET*``/``*PASSWORD*`` that look like secrets. Rules run on RE2 (linear
time on long untrusted text; the few with lookaround on ``re``), and one RE2 set pass first tells
which rules can match at all — none, in the common case. Redaction runs on titles, keys and
capped excerpts, never per span.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import re2

REDACTED = "[REDACTED]"
ENV_NAME_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
ENV_MIN_LEN = 8
_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")

Check = Callable[[str], bool]


@dataclass(frozen=True)
class _Rule:
    """One secret shape: the pattern, which group is the secret (0: all of it), an optional validity check."""

    name: str
    pattern: Any  # re.Pattern or an RE2 pattern (same finditer/sub API)
    group: int = 0
    check: Check | None = None


def _re2_options() -> Any:
    opts = re2.Options()
    opts.log_errors = False  # a pattern RE2 refuses falls back to ``re`` quietly, not on the user's stderr
    return opts


_RE2_OPTIONS = _re2_options()


def _compile(source: str, ignore_case: bool = False) -> Any:
    """RE2 when it takes the pattern (no lookaround, no backreference), else ``re``."""
    flags = "(?i)" if ignore_case else ""
    if not any(x in source for x in _LOOKAROUND) and not re.search(r"\\[1-9]", source):
        try:
            return re2.compile(flags + source, _RE2_OPTIONS)
        except re2.error:
            pass
    return re.compile(flags + source)


def _plugin_rules(plugin: type, groups: dict[int, int] | None = None) -> list[_Rule]:
    """detect-secrets' denylist patterns of ``plugin`` (``groups``: pattern index → the secret's group)."""
    out = []
    for i, pat in enumerate(plugin.denylist):  # type: ignore[attr-defined]
        # GitLab's trailing guard goes (the greedy class already ends there); RE2 repeats at most 1000 times
        source = pat.pattern.replace("(?!\\w)", "")
        source = re.sub(r"\{(\d+),\d{4,}\}", r"{\1,}", source)
        out.append(_Rule(plugin.__name__, _compile(source, bool(pat.flags & re.I)), (groups or {}).get(i, 0)))
    return out


def _is_basic_credential(value: str) -> bool:
    """``Basic`` credentials are base64 of ``user:password``; prose after the word "Basic" is not."""
    try:
        return b":" in base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


def _not_placeholder(value: str) -> bool:
    """Template placeholders (``<*>``) and already-redacted values stay as they are."""
    v = value.strip()
    return bool(v) and REDACTED[:-1] not in v and not (v.startswith("<") and v.endswith(">"))


@cache
def rules() -> list[_Rule]:
    """Every rule, in the order they apply: built on first use, so importing this module stays cheap.

    detect-secrets (and the ``requests`` it imports) costs ~0.1 s to import and compiling the rules
    ~40 ms: a pytest run without ``--halo`` never pays it, a run with it pays once.
    """
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.keyword import DENYLIST as KEYWORD_DENYLIST
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    pem_markers = "|".join(re.escape(p.pattern) for p in PrivateKeyDetector.denylist)
    # secret-ish words from detect-secrets' keyword plugin, plus the ones it leaves out (token, auth, credentials)
    keywords = "|".join([k.replace("_?", "[_-]?") for k in KEYWORD_DENYLIST] + [r"token\b", r"auth\b", r"credentials?\b"])
    assign = r"""["']?\s*(?:=|:=|=>|:)\s*"""
    value = r"""(?:"([^"\n]{1,512})"|'([^'\n]{1,512})'|([^\s"',;&)}\]<>]{1,512}))"""

    own: list[_Rule] = [
        # PEM blocks (detect-secrets flags the header line only); a block cut short runs to the end of the text
        _Rule(
            "pem_block",
            _compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)"),
        ),
        _Rule("private_key_marker", _compile(rf"(?:{pem_markers})[\s\S]*")),
        # user:password@ in URLs, the user possibly empty (redis://:pw@host)
        _Rule("url_password", _compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]*:([^\s@/]+)@", ignore_case=True), 1),
        # the value of an Authorization header, whatever its scheme
        _Rule(
            "authorization",
            _compile(r"""\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:basic|bearer|token|digest)\s+)?([^\s"',;]{6,})""",
                     ignore_case=True),
            1,
        ),
        _Rule("basic_credential", _compile(r"\bBasic\s+([A-Za-z0-9+/]{6,}={0,2})"), 1, _is_basic_credential),
        _Rule("bearer", _compile(r"\bbearer\s+([A-Za-z0-9._~+/=-]{8,})", ignore_case=True), 1),
        # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-api03-) keys; detect-secrets wants OpenAI's legacy marker
        _Rule("sk_key", _compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
        # GitHub tokens of any length and fine-grained PATs (detect-secrets: exactly 36 characters, no github_pat_)
        _Rule("github", _compile(r"\b(?:gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{22,})")),
        # Slack tokens without digits (detect-secrets requires a digit group)
        _Rule("slack", _compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-[A-Za-z0-9-]{10,}")),
        _Rule("google_api_key", _compile(r"\bAIza[0-9A-Za-z_-]{35}")),
        _Rule("google_oauth", _compile(r"\bya29\.[0-9A-Za-z_-]{20,}")),
        _Rule("jwt", _compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*)?")),
        # AWS secret access keys next to their name, quoted or not (detect-secrets requires quotes)
        _Rule(
            "aws_secret",
            _compile(r"""aws[\w.-]{0,20}?(?:secret|key)[\w.-]{0,20}["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})""", ignore_case=True),
            1,
        ),
        # password=…, "secret": "…", token: … (after the specific shapes, so their names survive)
        _Rule(
            "keyword",
            _compile(rf"[\w.-]*?(?:{keywords})[\w-]*{assign}{value}", ignore_case=True),
            -1,
            _not_placeholder,
        ),
    ]

    from_plugins: list[_Rule] = [
        *_plugin_rules(AWSKeyDetector, {1: 1}),
        *_plugin_rules(GitHubTokenDetector),
        *_plugin_rules(OpenAIDetector),
        *_plugin_rules(SlackDetector),
        *_plugin_rules(StripeDetector),
        *_plugin_rules(SendGridDetector),
        *_plugin_rules(PypiTokenDetector),
        *_plugin_rules(GitLabTokenDetector),
        *_plugin_rules(DiscordBotTokenDetector),
        *_plugin_rules(TwilioKeyDetector),
        *_plugin_rules(MailchimpDetector),
        *_plugin_rules(AzureStorageKeyDetector),
        *_plugin_rules(SquareOAuthDetector),
        *_plugin_rules(BasicAuthDetector, {0: 1}),
        *_plugin_rules(NpmDetector, {0: 1}),
    ]

    return own[:-1] + from_plugins + own[-1:]


def _set_source(rule: _Rule) -> str:
    """The rule as RE2 set member: flags inline, lookaround dropped (a superset is fine for a pre-check)."""
    src = re.sub(r"\(\?<?[=!][^()]*\)", "", rule.pattern.pattern)
    if isinstance(rule.pattern, re.Pattern) and rule.pattern.flags & re.I and not src.startswith("(?i)"):
        src = "(?i)" + src
    return src


def _rule_set(rules: list[_Rule]) -> Any:
    """One linear RE2 pass telling which rules can match, so the others never run."""
    rs = re2.Set.SearchSet(_RE2_OPTIONS)
    for r in rules:
        rs.Add(_set_source(r))
    rs.Compile()
    return rs


@cache
def _compiled() -> tuple[Any, list[tuple[Any, Callable[[Any], str]]]]:
    """The RE2 set over every rule and each rule's (pattern, replacement)."""
    all_rules = rules()
    return _rule_set(all_rules), [(r.pattern, _replace(r)) for r in all_rules]


def _replace(rule: _Rule) -> Callable[[Any], str]:
    def sub(m: Any) -> str:
        whole = m.group(0)
        if rule.group == 0:
            return whole if rule.check and not rule.check(whole) else REDACTED
        if rule.group > 0:
            g = rule.group
        else:  # the first group that took part (alternative quoting styles)
            g = next((i for i in range(1, (m.lastindex or 0) + 1) if m.group(i) is not None), 0)
            if not g:
                return whole
        value = m.group(g)
        if not value or (rule.check and not rule.check(value)):
            return whole
        start, end = m.start(g) - m.start(0), m.end(g) - m.start(0)
        return whole[:start] + REDACTED + whole[end:]

    return sub


def env_secrets(environ: Iterable[tuple[str, str]] | None = None) -> list[str]:
    """Values of environment variables named like a secret (``*KEY*``, ``*TOKEN*``...), longest first."""
    items = os.environ.items() if environ is None else environ
    vals = {v for k, v in items if _secret_name(k) and _secret_value(v)}
    return sorted(vals, key=lambda v: (-len(v), v))


_CHAR_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"), re.compile(r"[^A-Za-z0-9\s]"))
_NOT_SECRET_VALUE = re.compile(r"^(?:[/~.]|[A-Za-z]:\\|[a-z][a-z0-9+.-]*://[^@\s]*$)")


def _secret_value(v: str) -> bool:
    """Whether a secret-named variable's value looks like a secret, not a word, path or plain URL.

    A plain word (``PIP_KEYRING_PROVIDER=subprocess``) or a path would otherwise be redacted from
    error messages on some machines and not others — and a key's id would change with the machine.
    """
    if len(v) < ENV_MIN_LEN or REDACTED[:-1] in v or not v.strip() or _NOT_SECRET_VALUE.match(v):
        return False
    return len(v) >= 24 or sum(1 for c in _CHAR_CLASSES if c.search(v)) >= 2


def _secret_name(name: str) -> bool:
    upper = name.upper()
    return any(h in upper for h in ENV_NAME_HINTS)


class _EnvSecrets:
    """``env_secrets()`` of the live environment, re-read only when it may have changed.

    Decoding the whole environment costs ~35 µs; checking the variable count and the current values
    of the secret-named variables costs ~1 µs and sees every ``setenv``/``delenv`` that matters.
    """

    def __init__(self) -> None:
        self._stamp: tuple[object, ...] | None = None
        self._names: tuple[str, ...] = ()
        self.values: list[str] = []

    def current(self) -> list[str]:
        get = os.environ.get
        stamp = (len(os.environ), *(get(n) for n in self._names))
        if stamp != self._stamp:
            self._names = tuple(sorted(k for k in os.environ if _secret_name(k)))
            self.values = env_secrets()
            self._stamp = (len(os.environ), *(get(n) for n in self._names))
        return self.values


_ENV = _EnvSecrets()


_SURROGATES = re.compile("[\ud800-\udfff]")


def redact(text: object) -> str:
    """Return ``text`` with every known secret shape and secret environment value replaced by ``[REDACTED]``.

    Idempotent, so text redacted when a mode's key was built can be redacted again on the way out.
    """
    if text is None:
        return ""
    s = str(text)
    if not s:
        return s
    for value in _ENV.current():
        if value in s:
            s = s.replace(value, REDACTED)
    if not s.isascii():
        s = _SURROGATES.sub("\ufffd", s)  # RE2 reads UTF-8; a lone surrogate cannot be encoded
    rule_set, subs = _compiled()
    hits = rule_set.Match(s)
    if not hits:
        return s
    for i in sorted(hits):
        pattern, sub = subs[i]
        s = pattern.sub(sub, s)
    return s


_CONTROL_CHARS = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
# CSI / OSC / DCS-APC-PM-SOS sequences, two-character escapes, C0/C1 controls (tab and newline stay),
# bidi marks, overrides and isolates, line/paragraph separators, lone surrogates
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
    "|" + _CONTROL_CHARS
)
_ANY_CONTROL = re.compile(_CONTROL_CHARS)  # one character class: a cheap test before the alternation


def strip_control(text: object) -> str:
    """Drop terminal escape sequences, control characters and bidi overrides (tab and newline stay)."""
    if text is None:
        return ""
    s = str(text)
    if _ANY_CONTROL.search(s) is None:
        return s
    return _CONTROL.sub("", s.replace("\r\n", "\n"))


def clean(text: object) -> str:
    """What every publisher applies to trace text: control characters stripped, then secrets redacted.

    Stripping first means a secret split by an injected control character is still found.
    """
    return redact(strip_control(text))


KEY_SEPARATOR = "\x1f"


def clean_key(text: object) -> str:
    """``clean`` for a failure-mode key: the unit separators detectors join key parts with stay."""
    s = "" if text is None else str(text)
    return KEY_SEPARATOR.join(clean(part) for part in s.split(KEY_SEPARATOR))


def clean_line(text: object) -> str:
    """``clean`` on one line: whitespace runs (newlines included) become single spaces."""
    return " ".join(clean(text).split())


def excerpt(text: object, limit: int) -> str:
    """``clean``, then cap to ``limit`` characters (cleaning first so a cap never splits a secret open)."""
    if text is None:
        return ""
    s = str(text)
    if len(s) > 4 * limit + 512:  # never redact megabytes to keep a few hundred characters
        s = s[: 4 * limit + 512]
    out = clean(s)
    if len(out) > limit:
        out = out[: max(limit - 1, 0)].rstrip() + "…"
    return out
