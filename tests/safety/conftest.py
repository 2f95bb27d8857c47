"""Hypothesis profiles for the model test.

`ci` runs in the default suite: derandomized (the same examples every run, so a failure in CI
fails the same way on a laptop), no example database, and no shrinking (shrinking a stateful
failure here can take many minutes); print_blob prints the failing example's blob.
`ci-shrink` runs the same examples and shrinks the first failure: HYPOTHESIS_PROFILE=ci-shrink.
`long` explores with fresh random examples and keeps failures in the local example database:
HYPOTHESIS_PROFILE=long, or `pytest -m slow tests/safety`. A long run can be split over cores:
`long-part` is `long` with ARCHIVEKEEPER_MODEL_EXAMPLES examples, each process its own random ones.
"""

import os
import sys

from hypothesis import HealthCheck, Phase, settings

_COMMON = dict(deadline=None, print_blob=True, stateful_step_count=15,
               report_multiple_bugs=False,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=200, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate], **_COMMON)
settings.register_profile("ci-shrink", settings.get_profile("ci"),
                          phases=[Phase.explicit, Phase.generate, Phase.shrink])
settings.register_profile("long", max_examples=5000, **_COMMON)
settings.register_profile("long-part", settings.get_profile("long"),
                          max_examples=int(os.environ.get("ARCHIVEKEEPER_MODEL_EXAMPLES", 1000)))


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz tests' figures (cases made, times measured), one line per run."""
    fuzzing = sys.modules.get("safety.fuzzing")
    if fuzzing is not None and fuzzing.FIGURES:
        terminalreporter.section("fuzz figures")
        for line in fuzzing.FIGURES:
            terminalreporter.write_line(line)
