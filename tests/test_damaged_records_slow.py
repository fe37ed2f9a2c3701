"""The damaged-records property of tests/test_damaged_records.py over thousands of generated
cases (random, not the fixed sequence of the fast suite), and the same damage in front of
`leaderboard compare` (either side) and `leaderboard site`. Run with
``pytest -m slow tests/test_damaged_records_slow.py``."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_damaged_records import (
    BACKDOOR_PATH,
    BACKDOOR_SINGLE,
    EVASION_PATH,
    TEMPLATES,
    Case,
    _crashed,
    broken,
    cases,
    invoke,
    run_case,
    still_a_record,
    write,
)

pytestmark = pytest.mark.slow


def many(examples: int):
    return settings(
        max_examples=examples,
        deadline=timedelta(seconds=30),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@many(3000)
@given(case=cases())
def test_random_damage_many_times(case):
    problems = run_case(case)
    assert not problems, (case.template, case.how, case.name, problems)


def at_most_one_error(result) -> list[str]:
    """For a record that still reads: a ranking, or a refusal of one line (your row may now
    follow another protocol than the published rows); never a crash."""
    problems = _crashed(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    if result.exit_code not in (0, 2):
        problems.append(f"exit code {result.exit_code}")
    if (result.exit_code == 2) != (len(errors) == 1) or len(errors) > 1:
        problems.append(f"exit code {result.exit_code} with error lines {errors}")
    return problems


@many(1000)
@given(case=cases(), side=st.sampled_from(["yours", "published"]))
def test_random_damage_on_either_side_of_compare(case, side):
    with tempfile.TemporaryDirectory() as tmp:
        yours = write(Path(tmp) / "yours", [TEMPLATES[f"{BACKDOOR_SINGLE}/1"]])
        theirs = write(
            Path(tmp) / "theirs", [TEMPLATES[f"{c}/1"] for c in (BACKDOOR_PATH, EVASION_PATH)]
        )
        file = (yours if side == "yours" else theirs) / "records" / case.name
        file.write_bytes(case.data)
        result = invoke(["leaderboard", "compare", yours, theirs])
        problems = at_most_one_error(result) if still_a_record(file) else broken(result, file)
    assert not problems, (case.template, case.how, case.name, side, problems)


@many(500)
@given(case=cases())
def test_random_damage_in_a_published_table_of_the_site(case: Case):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "leaderboards"
        write(root / "table", [TEMPLATES[f"{BACKDOOR_SINGLE}/1"]])
        file = root / "table" / "records" / case.name
        file.write_bytes(case.data)
        result = invoke(["leaderboard", "site", root, "--out", Path(tmp) / "site"])
        if still_a_record(file):
            problems = _crashed(result) + ([] if result.exit_code == 0 else [result.output])
        else:
            problems = broken(result, file)
    assert not problems, (case.template, case.how, case.name, problems)
