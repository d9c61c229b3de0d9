from __future__ import annotations

import pytest
import responses


@pytest.fixture
def api():  # type: ignore[no-untyped-def]
    """Bitrix24's REST API as the test says it answers (``responses``): a call
    the test did not expect fails instead of leaving the machine."""
    with responses.mock as mock:
        yield mock
