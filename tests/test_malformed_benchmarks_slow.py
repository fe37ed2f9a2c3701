"""The malformed-benchmark properties of tests/test_malformed_benchmarks.py at length:
thousands of damaged files each, with more damage stacked on each file, and `mcbench run
--dry-run` as well as `mcbench validate`. A fresh random sample on every run (run with
``pytest -m slow``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.test_malformed_benchmarks import (
    CASE_SECONDS,
    _warm,  # noqa: F401 - loads the plugins first
    check_file,
    damaged,
    structural,
)

pytestmark = pytest.mark.slow

LONG = settings(
    deadline=int(CASE_SECONDS * 1000),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(LONG, max_examples=3000)
@given(damaged(max_text_ops=3, max_tree_ops=3))
def test_damaged_files_get_one_error_line(data):
    assert check_file(data) == []


@settings(LONG, max_examples=3000)
@given(structural(max_ops=5))
def test_files_with_odd_values_get_one_error_line(data):
    assert check_file(data) == []


@settings(LONG, max_examples=500)
@given(damaged(max_text_ops=2, max_tree_ops=3))
def test_run_refuses_damaged_files_before_writing(data):
    # the results folder would be created beside the file: nothing may appear there
    assert check_file(data, ("run", "--dry-run", "--results", "results")) == []
