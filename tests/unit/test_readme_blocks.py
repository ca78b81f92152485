"""The README's blocks are classified so the README test runs every command a user would copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import readme
from tests.conftest import ROOT

BLOCKS = readme.blocks(ROOT / "README.md")


def test_every_block_declares_what_it_is() -> None:
    assert [b.line for b in BLOCKS if not b.language] == []


def test_no_command_hides_in_a_block_that_is_not_run() -> None:
    hidden = [
        (b.line, line)
        for b in BLOCKS
        if not b.runs and b.directive != "quickstart"
        for line in b.text.splitlines()
        if readme.COMMAND.match(line)
    ]
    assert hidden == []


def test_an_output_block_follows_a_block_that_runs() -> None:
    for index, block in enumerate(BLOCKS):
        if block.directive == "output":
            assert index > 0
            assert BLOCKS[index - 1].runs, f"README.md:{block.line} shows the output of a block that is not run"


def test_directives_are_known() -> None:
    for block in BLOCKS:
        known = block.directive in ("", "quickstart", "output") or block.expected_exit() or block.serves()
        assert known, f"README.md:{block.line}: unknown directive {block.directive!r}"


def test_a_block_that_never_closes_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n```bash\ngit status\n")
    with pytest.raises(ValueError, match=r"page\.md:2: a fenced block that never closes"):
        readme.blocks(page)


def test_directives_and_lines(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- readme-test: exit 1 -->\n```bash\nfalse\n```\n\n```text\nout\n```\n")
    first, second = readme.blocks(page)
    assert (first.line, first.expected_exit(), first.runs, first.text) == (2, 1, True, "false\n")
    assert (second.line, second.runs, second.directive) == (6, False, "")


def test_output_lines_match_in_order_and_dots_skip() -> None:
    printed = "a\nb 1\nc\nd\n"
    assert readme.unmatched("a\n...\nc\n", printed) is None
    assert readme.unmatched("c\na\n", printed) == "a"
    assert readme.unmatched("b\n", printed) == "b"  # whole lines, not prefixes


def test_a_block_inside_a_list_item_is_a_block_too(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("- an item:\n\n  ```bash\n  git status\n  ```\n")
    (block,) = readme.blocks(page)
    assert (block.line, block.language, block.text, block.runs) == (3, "bash", "git status\n", True)
