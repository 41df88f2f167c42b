"""README's Python snippets run as they are, each on its own (a newcomer copies one at a time),
and print what the README shows after them.

Each ```python block is followed by a ```text block (at most one line of prose between): the
output, compared with doctest's checker (whitespace normalised; ``...`` stands for any text, used
where a value is rounding noise, such as a gradient check's errors).
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")
# a python block, then (after at most one line of prose) its output: no fence may come between
PAIRS = re.findall(r"```python\n((?:(?!```).)*)```\n\n(?:[^\n]*\n\n)?```text\n((?:(?!```).)*)```",
                   TEXT, re.S)
N_SNIPPETS = TEXT.count("```python\n")
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_every_snippet_shows_its_output():
    assert N_SNIPPETS >= 3
    assert len(PAIRS) == N_SNIPPETS, "a ```python block in README.md lacks its ```text output block"


@pytest.mark.parametrize("code, shown", PAIRS, ids=[f"snippet{i}" for i in range(len(PAIRS))])
def test_snippet_prints_what_the_readme_shows(code, shown, capsys):
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert _CHECKER.check_output(shown, printed, _FLAGS), (
        f"README shows:\n{shown}\nthe snippet printed:\n{printed}")


def test_the_readme_pictures_are_drawn_by_the_script_it_names():
    script = README.parent / "docs" / "make_figures.sh"
    assert "bash docs/make_figures.sh" in TEXT
    body = script.read_text(encoding="utf-8")
    for picture in re.findall(r"\]\((docs/[^)]+\.png)\)", TEXT):  # every picture README shows
        drawn = (f"-o {picture}", f'-o "${picture}"')  # -o docs/X.png, or -o "$docs/X.png"
        assert any(d in body for d in drawn), f"{picture} is not drawn by docs/make_figures.sh"
