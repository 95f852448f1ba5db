"""Every compiled entry point and its pure-Python twin, called with the same arbitrary arguments (hypothesis).

The structured inputs of the coverage-guided harness (``tests/fuzz/compiled_targets.py``) without libFuzzer:
hypothesis draws the bytes, a ``ByteProvider`` decodes them into buffers of any size, offset and stride, integers
at and past every C type's limits, NaN and infinities, tables of any shape that may alias one another, and each
call must give the same result, or the same exception type, in both implementations. Run in CI on every build
(and under the sanitizers by ``tests/sanitize/run_sanitized.sh``).
"""

from __future__ import annotations

from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import compiled_targets as targets

pytestmark = pytest.mark.skipif(not targets.COMPILED_AVAILABLE, reason="the compiled modules are not built")


@pytest.fixture(scope="module", autouse=True)
def _sockets() -> Iterator[None]:
    yield
    targets.close_sockets()


@pytest.mark.parametrize("target", targets.TARGETS, ids=[t.__name__.strip("_") for t in targets.TARGETS])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_compiled_and_twin_agree_on_arbitrary_arguments(target: object, data: bytes) -> None:
    target(targets.ByteProvider(data))  # type: ignore[operator]
