"""Markdown for untrusted text: no injected markup, links or notifications; still readable as plain text."""

from __future__ import annotations

import re

from engine.publish.markdown import ZWSP, md_block, md_cell, md_code, md_details, md_prose, md_text, md_title


def test_md_text_neutralises_markup_but_stays_readable() -> None:
    out = md_text("Tool `lookup_order` fails [x](javascript:alert(1)) ![i](http://e.vil/p.png) <img src=x> *b* | ~~s~~ $x$")
    assert "lookup_order" in out  # an underscore inside a word is not emphasis: left alone
    assert "\\[x\\]" in out and "\\!" not in out and "\\[i\\]" in out
    assert "\\<img" in out and "\\*b\\*" in out and "\\|" in out and "\\~\\~" in out and "\\$x\\$" in out
    assert "\\`lookup_order\\`" in out
    assert "<*>" in md_text("id <*> failed").replace("\\*", "*")  # placeholders readable
    assert "\n" not in md_text("two\nlines")


def test_mentions_and_references_do_not_notify() -> None:
    out = md_text("ping @octocat and @org/team about #12 and GH-7; mail a@b.com")
    assert "@octocat" not in out and "@" + ZWSP + "octocat" in out
    assert "@" + ZWSP + "org/team" in out
    assert "#12" not in out and "#" + ZWSP + "12" in out
    assert "GH-7" not in out
    assert "\\@octocat" not in out and "&#64;" not in out  # GitHub links those after rendering


def test_urls_become_code_and_entities_are_escaped() -> None:
    out = md_text("see https://evil.example/x?a=1, www.evil.example. &amp; &#64;user")
    assert "`https://evil.example/x?a=1`," in out and "`www.evil.example`." in out
    assert "\\&amp;" in out and "&#64;" not in out


def test_line_start_markers_are_escaped() -> None:
    assert md_text("# heading") == "\\# heading"
    assert md_text("> quote") == "\\> quote"
    assert md_text("- item") == "\\- item"
    assert md_text("1. item") == "1\\. item"


def test_md_text_cleans_secrets_and_controls() -> None:
    out = md_text("password=hunter2 \x1b[2J ghp_abcdefghijklmnopqrstuvwxyz0123")
    assert "hunter2" not in out and "\x1b" not in out and "ghp_" not in out


def test_md_code_cannot_be_closed() -> None:
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"
    assert md_code("") == "` `"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_code("@octocat") == "`@octocat`"  # GitHub never links inside code


def test_md_block_fence_is_longer_than_any_run_inside() -> None:
    block = md_block("before\n````\nafter\x1b[2J")
    fence = block.split("\n", 1)[0]
    assert fence == "`````text"
    assert block.endswith("\n`````") and "\x1b" not in block
    assert md_block("x", lang="py\n<script>").startswith("```pyscript\n")


def test_md_cell_keeps_a_table_intact() -> None:
    cell = md_cell("a | b\nc")
    row = f"| {cell} | {md_cell('')} |"
    assert len(re.findall(r"(?<!\\)\|", row)) == 3


def test_md_details_escapes_summary_html() -> None:
    out = md_details("p <b>bold</b>", "body")
    assert out.startswith("<details><summary>p &lt;b&gt;bold&lt;/b&gt;</summary>")
    assert out.endswith("</details>")


def test_md_prose_keeps_markdown_but_disarms_it() -> None:
    answer = (
        "## Answer\n"
        "The tool `lookup_order` fails for @octocat, see #12 and [click](http://evil.example) <img src=x onerror=y>\n"
        "- item with `<code> @x` and $5 and &amp;\n"
        "```python\nprint('<b>@x</b>')\n```\n"
        "| a | b |\n"
        "```\nunclosed fence swallowing the rest"
    )
    out = md_prose(answer)
    lines = out.splitlines()
    assert lines[0] == "## Answer" and lines[2].startswith("- item")
    assert "@" + ZWSP + "octocat" in out and "#" + ZWSP + "12" in out
    assert "\\[click\\](`http://evil.example`)" in out and "\\<img" in out
    assert "`<code> @x`" in out  # code spans untouched
    assert "\\$5" in out and "\\&amp;" in out
    assert "print('<b>@x</b>')" in out  # fenced code untouched
    assert lines[-1] == "```" and lines[-2] == "unclosed fence swallowing the rest"  # the open fence is closed
    assert "\x1b" not in md_prose("a\x1b[2Jb") and "ghp_" not in md_prose("ghp_abcdefghijklmnopqrstuvwxyz0123")


def test_md_title_keeps_code_spans() -> None:
    assert md_title("Tool `lookup_order` fails: a|b *x*") == "Tool `lookup_order` fails: a\\|b \\*x\\*"
    assert md_title("`a|b` x", in_table=True) == "`a\\|b` x"
    assert md_title("# `x`") == "\\# `x`"
    assert md_title("odd ` tick") == "odd \\` tick"


def test_redacted_placeholder_stays_readable_unless_it_could_link() -> None:
    assert md_text("password=[REDACTED] x") == "password=[REDACTED] x"
    assert md_text("[REDACTED](http://e.vil)") == "\\[REDACTED\\](`http://e.vil`)"
    assert md_text("[REDACTED]: http://e.vil").startswith("\\[REDACTED\\]:")


def test_md_prose_demotes_headings() -> None:
    out = md_prose("# Title\n## Sub\n##### deep\n#hashtag", min_heading=4)
    assert out.splitlines() == ["#### Title", "#### Sub", "##### deep", "#hashtag"]
