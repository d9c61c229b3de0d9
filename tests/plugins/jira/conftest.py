from __future__ import annotations

import pytest

from .support import clear_caches


@pytest.fixture(autouse=True)
def _fresh_jira_caches():  # type: ignore[no-untyped-def]
    """The issue cache is process-wide: no test sees another's issues."""
    clear_caches()
    yield
    clear_caches()
