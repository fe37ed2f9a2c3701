"""Damaged records in front of every command that reads a folder of them (leaderboard,
compare on either side, plot, site): exit code 2 and one line `error: FILE: ...` naming the
damaged file, never a traceback, a crash or a hang; with --skip-invalid the damaged record
is left out with one warning line and the rest is still shown. Explicit cases per kind of
damage, then a property test that damages published records at random."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import tempfile
import zlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcbench.cli import cli

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
HANG_S = 60  # far more than any command here takes: reaching it means it blocked


def published(cell_id: str) -> dict:
    """A published record, as its file holds it (schema 1)."""
    (file,) = LEADERBOARDS.glob(f"*/records/{cell_id}.json")
    return json.loads(file.read_text(encoding="utf-8"))


def schema_2(raw: dict) -> dict:
    """The same record as this mcbench writes it (schema 2: every metric's plot axis and
    correlations, the attack's report figures)."""
    from mcbench.results.record_reader import from_json

    return {**from_json(copy.deepcopy(raw)), "schema": 2}


BACKDOOR_PATH = "41007b3c9c3add48"  # backdoor-repair, path/bezier, budget 2500
BACKDOOR_SINGLE = "01559c9f131e14c1"  # backdoor-repair, finetune, budget 2500
INJECTION_PATH = "1c45e1984cba1931"  # injection-repair, bitflip, path/bezier (tamper report)
EVASION_PATH = "a1f9f52864a91881"  # evasion-path, path/bezier (Hessian notes)


def templates() -> dict[str, dict]:
    """The records damaged below: one of each kind, and two as schema 2."""
    raw = {cell_id: published(cell_id) for cell_id in (BACKDOOR_PATH, BACKDOOR_SINGLE)}
    raw |= {c: published(c) for c in (INJECTION_PATH, EVASION_PATH)}
    return {
        **{f"{c}/1": r for c, r in raw.items()},
        f"{INJECTION_PATH}/2": schema_2(raw[INJECTION_PATH]),
        f"{EVASION_PATH}/2": schema_2(raw[EVASION_PATH]),
    }


TEMPLATES = templates()


def text(record: dict) -> bytes:
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()


def write(folder: Path, records: list[dict]) -> Path:
    (folder / "records").mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / "records" / f"{r['cell_id']}.json").write_bytes(text(r))
    return folder


class Hang(Exception):
    """A command ran past HANG_S."""


@contextlib.contextmanager
def time_limit(seconds: float = HANG_S):
    """Raise Hang inside whatever runs for longer than SECONDS (a blocking open included)."""

    def expire(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def invoke(args: list[str]):
    with time_limit():
        return CliRunner().invoke(cli, [str(a) for a in args])


def broken(result, file: Path) -> list[str]:
    """How RESULT breaks the contract for a refused FILE (empty when it does not)."""
    problems = _crashed(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    if result.exit_code != 2:
        problems.append(f"exit code {result.exit_code}, not 2")
    if len(errors) != 1 or str(file) not in errors[0]:
        problems.append(f"not one error line naming {file}: {errors}")
    return problems


def _crashed(result) -> list[str]:
    problems = []
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"raised {type(result.exception).__name__}: {result.exception}")
    if "Traceback" in result.output:
        problems.append("printed a traceback")
    return problems


def accepted(result) -> list[str]:
    problems = _crashed(result)
    if result.exit_code != 0:
        problems.append(f"exit code {result.exit_code}, not 0: {result.output[-500:]}")
    if any(line.startswith("error: ") for line in result.stderr.splitlines()):
        problems.append("printed an error line")
    return problems


def refused(result, file: Path) -> str:
    """The one error line of RESULT, which must have refused FILE."""
    problems = broken(result, file)
    assert not problems, (problems, result.output)
    return next(line for line in result.stderr.splitlines() if line.startswith("error: "))


def skipped(result, file: Path) -> None:
    """RESULT left FILE out with one warning line naming it, and went on."""
    problems = accepted(result)
    assert not problems, (problems, result.output)
    warnings = [line for line in result.stderr.splitlines() if str(file) in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), result.stderr


# --- the commands, each over a folder holding a damaged record --------------------------


@dataclass
class Setup:
    """A command's arguments and the records folder in which the damage goes."""

    args: list
    records: Path


def leaderboard(tmp: Path) -> Setup:
    folder = write(tmp / "results", [TEMPLATES[f"{c}/1"] for c in (BACKDOOR_PATH, EVASION_PATH)])
    return Setup(["leaderboard", folder], folder / "records")


def compare_yours(tmp: Path) -> Setup:
    yours = write(tmp / "yours", [TEMPLATES[f"{BACKDOOR_SINGLE}/1"]])
    theirs = write(tmp / "theirs", [TEMPLATES[f"{c}/1"] for c in (BACKDOOR_PATH, EVASION_PATH)])
    return Setup(["leaderboard", "compare", yours, theirs], yours / "records")


def compare_published(tmp: Path) -> Setup:
    setup = compare_yours(tmp)
    return Setup(setup.args, setup.args[3] / "records")


def plot(tmp: Path) -> Setup:
    folder = write(tmp / "results", [TEMPLATES[f"{c}/1"] for c in (BACKDOOR_PATH,)])
    return Setup(["plot", folder, "--out", tmp / "plots"], folder / "records")


def site(tmp: Path) -> Setup:
    root = tmp / "leaderboards"
    write(root / "table", [TEMPLATES[f"{c}/1"] for c in (BACKDOOR_PATH, BACKDOOR_SINGLE)])
    return Setup(["leaderboard", "site", root, "--out", tmp / "site"], root / "table" / "records")


COMMANDS = {
    "leaderboard": leaderboard,
    "compare-yours": compare_yours,
    "compare-published": compare_published,
    "plot": plot,
    "site": site,
}
FOLDERS = pytest.mark.parametrize("command", COMMANDS)


def with_skip(args: list) -> list:
    return [*args, "--skip-invalid"]


def edited(change) -> dict:
    """The evasion record (a path of 5 points) with CHANGE applied to it."""
    record = copy.deepcopy(TEMPLATES[f"{EVASION_PATH}/1"])
    change(record)
    return record


DAMAGE = {
    "wrong type": (lambda: text(edited(lambda r: r["config"].update(budget="5000"))), "budget"),
    "missing key": (lambda: text(edited(lambda r: r["path"][2].pop("t"))), "path[2].t"),
    "missing field": (lambda: text(edited(lambda r: r["config"].pop("track"))), "track"),
    "string for a mapping": (
        lambda: text(edited(lambda r: r.update(endpoints="A and B"))),
        "endpoints",
    ),
    "string for a plugin": (
        lambda: text(edited(lambda r: r["config"].update(dataset="cifar10"))),
        "config.dataset",
    ),
    "list for the metric info": (
        lambda: text(edited(lambda r: r.update(metric_info=["loss"]))),
        "metric_info",
    ),
    "duplicated key": (
        lambda: text(edited(lambda r: None)).replace(
            b'"budget": 5000', b'"budget": 5000, "budget": 1'
        ),
        "repeated",
    ),
    "not UTF-8": (lambda: text(edited(lambda r: None)).replace(b"bezier", b"b\xe9zier"), "UTF-8"),
    "truncated": (lambda: text(edited(lambda r: None))[:700], "not a valid record"),
    "misnamed": (lambda: text(edited(lambda r: r.update(cell_id="0000000000000000"))), "name"),
}


@FOLDERS
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_record_is_refused_naming_its_file(tmp_path, command, damage):
    setup = COMMANDS[command](tmp_path)
    make, expected = DAMAGE[damage]
    file = setup.records / f"{EVASION_PATH}.json"
    file.write_bytes(make())
    line = refused(invoke(setup.args), file)
    assert expected in line


@FOLDERS
def test_skip_invalid_leaves_the_damaged_record_out_and_builds_the_rest(tmp_path, command):
    setup = COMMANDS[command](tmp_path)
    damaged = setup.records / "ffffffffffffffff.json"
    damaged.write_bytes(b'{"schema": 2, "cell_id": "ffffffffffffffff", "status": "ok"')
    also = setup.records / "eeeeeeeeeeeeeeee.json"
    also.write_bytes(text(edited(lambda r: r.update(cell_id="eeeeeeeeeeeeeeee", path={}))))
    refused(invoke(setup.args), also)  # the first in file-name order
    result = invoke(with_skip(setup.args))
    skipped(result, damaged)
    skipped(result, also)
    if command == "leaderboard":
        assert "| backdoor-repair" in result.stdout and "| evasion-path" in result.stdout
    elif command.startswith("compare"):
        assert "| yours" in result.stdout and "| published" in result.stdout
    elif command == "plot":
        assert any(line.endswith(".png") for line in result.stdout.splitlines())
    else:
        page = (tmp_path / "site" / "index.html").read_text()
        assert "backdoor-repair" in page
        assert not (tmp_path / "site" / "table" / "records" / damaged.name).exists()


@FOLDERS
def test_schema_1_and_schema_2_records_are_read_side_by_side(tmp_path, command):
    setup = COMMANDS[command](tmp_path)
    newer = {**TEMPLATES[f"{EVASION_PATH}/2"], "cell_id": "abcdefabcdefabcd"}
    (setup.records / "abcdefabcdefabcd.json").write_bytes(text(newer))
    older = {**TEMPLATES[f"{BACKDOOR_PATH}/1"], "cell_id": "0123401234012340"}
    older["config"] = {**older["config"], "seed": 1}
    (setup.records / "0123401234012340.json").write_bytes(text(older))
    result = invoke(setup.args)
    assert not accepted(result), accepted(result)
    if command == "leaderboard":
        assert "| evasion-path" in result.stdout and "| backdoor-repair" in result.stdout


@FOLDERS
def test_a_fifo_named_like_a_record_does_not_block(tmp_path, command):
    setup = COMMANDS[command](tmp_path)
    fifo = setup.records / "x.json"
    os.mkfifo(fifo)
    line = refused(invoke(setup.args), fifo)
    assert "FIFO" in line
    skipped(invoke(with_skip(setup.args)), fifo)


@FOLDERS
def test_a_folder_named_like_a_record_is_refused(tmp_path, command):
    setup = COMMANDS[command](tmp_path)
    (setup.records / "d.json").mkdir()
    assert "is a directory" in refused(invoke(setup.args), setup.records / "d.json")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["leaderboard", "{file}"], "a results folder"),
        (["leaderboard", "compare", "{file}", "leaderboards"], "a results folder"),
        (["leaderboard", "compare", "leaderboards", "{file}"], "a published leaderboard folder"),
        (["leaderboard", "site", "{file}"], "a folder of leaderboards"),
        (["leaderboard", "site", "leaderboards", "--out", "{file}"], "a folder for the page"),
        (["plot", "{file}"], "a results folder"),
        (["run", "benchmarks.yaml", "--results", "{file}", "--dry-run"], "a results folder"),
    ],
    ids=["leaderboard", "compare-results", "compare-published", "site", "site-out", "plot", "run"],
)
def test_a_file_given_for_a_folder_is_one_line(tmp_path, args, expected):
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    result = invoke([a.format(file=file) for a in args])
    assert refused(result, file) == f"error: {file}: is a file; expected {expected}"
    assert file.read_text() == "x"


def test_site_never_follows_a_link_out_of_the_published_folder(tmp_path):
    setup = site(tmp_path)
    table = setup.records.parent
    secret = write(tmp_path / "secret", [TEMPLATES[f"{EVASION_PATH}/1"]])
    (secret / "key.png").write_bytes(b"secret bytes")
    (secret / "notes.md").write_text("# Secret\n\nnot to be published\n")
    (table / "plots").mkdir()
    (table / "plots" / "fine.png").write_bytes(b"\x89PNG fine")
    (table / "plots" / "key.png").symlink_to(secret / "key.png")
    (table / "plots" / "all").symlink_to(secret, target_is_directory=True)
    (table / "plots" / "inside.png").symlink_to(table / "plots" / "fine.png")
    os.mkfifo(table / "plots" / "pipe.png")
    (table / "README.md").symlink_to(secret / "notes.md")
    (setup.records / f"{EVASION_PATH}.json").symlink_to(secret / "records" / f"{EVASION_PATH}.json")
    (tmp_path / "leaderboards" / "linked").symlink_to(secret, target_is_directory=True)

    result = invoke(setup.args)
    assert not accepted(result), accepted(result)
    out = tmp_path / "site"
    copied = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert "table/plots/fine.png" in copied and "table/plots/inside.png" in copied
    for name in ("key.png", "pipe.png", "all"):
        assert f"table/plots/{name}" not in copied
    assert f"table/records/{EVASION_PATH}.json" not in copied
    assert "table/README.md" not in copied and not (out / "linked").exists()
    assert not [p for p in out.rglob("*") if p.is_symlink()]
    page = (out / "index.html").read_text()
    assert "secret" not in page.lower() and "evasion-path" not in page
    assert "fine.png" in page and "key.png" not in page
    warned = "\n".join(line for line in result.stderr.splitlines() if line.startswith("warning"))
    for name in ("key.png", "pipe.png", "all", "README.md", f"{EVASION_PATH}.json", "linked"):
        assert name in warned, (name, result.stderr)


def test_an_unreadable_readme_is_refused_naming_it(tmp_path):
    setup = site(tmp_path)
    readme = setup.records.parent / "README.md"
    readme.write_bytes(b"# Table\n\n\xff\xfe\n")
    assert "UTF-8" in refused(invoke(setup.args), readme)


# --- the property: random damage to published records -------------------------------------


@dataclass
class Case:
    template: str
    how: str  # the kind of damage
    name: str  # the file name the damaged record ends up under
    data: bytes
    plot: bool  # run `mcbench plot` too (it is slower)


def kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


NUMBERS = st.integers(min_value=-(10**20), max_value=10**20) | st.floats()
STRINGS = st.text(max_size=8) | st.sampled_from(["", "-", "../../x", "/etc/passwd", "a\nb", "ok"])
SCALARS = st.none() | st.booleans() | NUMBERS | STRINGS
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
BY_KIND = {
    "null": st.none(),
    "boolean": st.booleans(),
    "number": NUMBERS,
    "string": STRINGS,
    "array": st.lists(JSON_VALUES, max_size=3),
    "object": st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3),
}
NAMES = st.text(
    alphabet=st.sampled_from("abcdef0123456789ABCXYZ-_. éß中"), min_size=1, max_size=20
).filter(lambda name: name not in (".", ".."))


def walk(draw, root) -> list:
    """A key path into ROOT to a random depth: each step picks a child at random and may
    stop there."""
    node, path = root, []
    while isinstance(node, (dict, list)) and node:
        children = sorted(node) if isinstance(node, dict) else range(len(node))
        child = draw(st.sampled_from(list(children)))
        path.append(child)
        node = node[child]
        if not isinstance(node, (dict, list)) or not node or draw(st.booleans()):
            break
    return path


def at(root, path: list):
    for part in path:
        root = root[part]
    return root


def dumps(value, target=None, duplicate=None) -> str:
    """VALUE as JSON; the object TARGET with the member DUPLICATE (key, value) added, a key
    it already has."""
    if isinstance(value, dict):
        members = [f"{json.dumps(k)}: {dumps(v, target, duplicate)}" for k, v in value.items()]
        if value is target:
            members.append(f"{json.dumps(duplicate[0])}: {json.dumps(duplicate[1])}")
        return "{" + ", ".join(members) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps(v, target, duplicate) for v in value) + "]"
    return json.dumps(value)


@st.composite
def cases(draw, plot_share: int = 20) -> Case:
    """A published record damaged one way: a key deleted at a random depth, a value
    replaced by one of another JSON type (or another of the same type), the file cut
    short, bytes inserted, a key repeated, or the file renamed."""
    template = draw(st.sampled_from(sorted(TEMPLATES)))
    record = copy.deepcopy(TEMPLATES[template])
    name = f"{record['cell_id']}.json"
    how = draw(
        st.sampled_from(["delete", "retype", "revalue", "truncate", "insert", "repeat", "rename"])
    )
    data = text(record)
    if how in ("delete", "retype", "revalue"):
        path = walk(draw, record)
        parent, last = at(record, path[:-1]), path[-1]
        if how == "delete":
            del parent[last]
        elif how == "retype":
            other = draw(st.sampled_from([k for k in BY_KIND if k != kind(parent[last])]))
            parent[last] = draw(BY_KIND[other])
        else:
            parent[last] = draw(JSON_VALUES)
        data = text(record)
    elif how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "insert":
        where = draw(st.integers(0, len(data)))
        data = data[:where] + draw(st.binary(min_size=1, max_size=6)) + data[where:]
    elif how == "repeat":
        path = walk(draw, record)
        holder = record
        for depth in range(len(path), -1, -1):  # the innermost object on the path
            holder = at(record, path[:depth])
            if isinstance(holder, dict) and holder:
                break
        key = draw(st.sampled_from(sorted(holder)))
        again = draw(st.just(holder[key]) | JSON_VALUES)
        data = dumps(record, holder, (key, again)).encode()
    else:
        others = [f"{TEMPLATES[t]['cell_id']}.json" for t in TEMPLATES]
        name = draw(
            st.sampled_from([*others, "x.txt", name.upper(), name + ".bak", ".json", name])
            | NAMES.map(lambda s: s + ".json")
            | NAMES
        )
    # plot about one case in PLOT_SHARE, picked by the damage itself rather than drawn (the
    # generator favours small numbers, so a drawn choice would plot far more often)
    return Case(template, how, name, data, zlib.crc32(name.encode() + data) % plot_share == 0)


def beside(template: str, few: bool) -> list[dict]:
    """The good records a damaged one is read with: every other kind, or (FEW, for the
    slower plot) one record of a single model, which draws no figure of its own."""
    own = template.split("/")[0]
    kinds = (
        (BACKDOOR_SINGLE, BACKDOOR_PATH) if few else (BACKDOOR_PATH, EVASION_PATH, BACKDOOR_SINGLE)
    )
    return [TEMPLATES[f"{c}/1"] for c in kinds if c != own][: 1 if few else 3]


def still_a_record(file: Path) -> bool:
    """Whether the damage left a record that the tables can read (the reader's verdict)."""
    from mcbench.errors import ConfigError
    from mcbench.results.record_reader import read_record

    if not file.name.endswith(".json"):
        return True  # not read at all: the folder holds only the good records
    try:
        read_record(file, need="tables")
    except ConfigError:
        return False
    return True


def run_case(case: Case, valid=still_a_record) -> list[str]:
    """Run leaderboard (and plot, for CASE.plot) over the damaged record beside good ones;
    each way the contract is broken, as text. VALID judges the damaged file."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp) / "results", beside(case.template, few=case.plot))
        file = folder / "records" / case.name
        file.write_bytes(case.data)
        good = valid(file)
        commands = [["leaderboard", folder]]
        if case.plot:
            commands.append(["plot", folder, "--out", Path(tmp) / "plots"])
        problems = []
        for args in commands:
            result = invoke(args)
            problems += [
                f"{args[0]}: {p}" for p in (accepted(result) if good else broken(result, file))
            ]
        return problems


PROPERTY = settings(
    max_examples=200,
    deadline=timedelta(seconds=30),
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(case=cases())
def test_random_damage_is_refused_naming_the_file_or_read(case):
    problems = run_case(case)
    assert not problems, (case.template, case.how, case.name, problems)
