"""The guard in conftest.py: a test that starts a Python process must be marked
``processes``, so that ``make unit-paths`` (``-m "not processes"``) leaves it out."""

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.mark.processes  # its inner, marked test starts a Python process
def test_an_unmarked_test_that_starts_python_fails_and_a_marked_one_passes(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    processes: starts processes\n")
    pytester.makepyfile(
        """
        import subprocess, sys
        import pytest

        @pytest.fixture(scope="module")
        def started():
            return subprocess.run([sys.executable, "-c", "print(1)"]).returncode

        def test_unmarked(started):
            pass

        @pytest.mark.processes
        def test_marked():
            assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0

        def test_other_programs_are_left_alone():
            assert subprocess.run(["true"]).returncode == 0
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_unmarked starts a Python process*mark it @pytest.mark.processes*"]
    )
