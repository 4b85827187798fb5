"""exops imports GX with scipy.stats deferred (exops.quality.gx_import): it loads on first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_gx_imports_without_loading_scipy_stats_which_still_works_when_used() -> None:
    out = run(
        """
        import sys
        from exops.quality.gx_import import great_expectations
        gx = great_expectations()
        assert gx.expectations.UnexpectedRowsExpectation
        print(type(sys.modules["scipy.stats"]).__name__)
        from scipy import stats
        print(round(float(stats.entropy([0.5, 0.5], [0.9, 0.1])), 4))
        print(type(sys.modules["scipy.stats"]).__name__)
        """
    )
    assert out.splitlines() == ["_LazyModule", "0.5108", "module"]


def test_a_module_already_imported_is_left_as_it_is() -> None:
    out = run(
        """
        import scipy.stats
        from exops.quality.gx_import import defer, great_expectations
        print(defer("scipy.stats"), defer("exops_no_such_module.sub"))
        great_expectations()
        import sys
        print(type(sys.modules["scipy.stats"]).__name__)
        """
    )
    assert out.splitlines() == ["False False", "module"]
