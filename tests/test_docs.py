"""The documentation's code runs: every Python block of the pages below, in order, in one namespace per page."""

from __future__ import annotations

import re
import sys
import types

import pytest

from tests.conftest import REPO

FAMILIES = ["temporal", "geometric", "photometric", "filtering", "ultrasound", "wrappers"]
PAGES = ["docs/custom-transforms.md", *(f"docs/transforms/{f}.md" for f in FAMILIES), "README.md"]


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(page: str) -> None:
    text = (REPO / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, page
    module = types.ModuleType("docs_page")  # a real module: dataclasses look their module up
    sys.modules[module.__name__] = module
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"{page} block {i}", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_page_shows_pictures_that_exist(family: str) -> None:
    """Each family page has a before/after picture, and every picture it names is in docs/img/."""
    text = (REPO / "docs" / "transforms" / f"{family}.md").read_text()
    pictures = re.findall(r"\]\(\.\./img/([\w-]+\.png)\)", text)
    assert pictures, family
    for name in pictures:
        assert (REPO / "docs" / "img" / name).is_file(), name
