"""The documentation's code runs: every Python block of the pages below, in order, in one namespace per page."""

from __future__ import annotations

import re
import sys
import types

import pytest

from tests.conftest import REPO

PAGES = ["docs/custom-transforms.md", "docs/catalogue.md", "README.md"]


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
