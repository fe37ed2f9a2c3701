"""Check a value read from JSON against a type annotation, compiled once per type.

``checker(tp, flags)`` turns an annotation (TypedDicts with ``total``, ``Required`` and
``NotRequired``; ``list``, ``dict``, ``Literal``, unions and ``Optional``; ``bool``, ``int``,
``float``, ``str``, ``None``, ``object``) into a function that raises ``Bad`` at the first
part of a value that does not fit: where it is (a key path such as ``path[2].t``), what it
holds and what was expected. Constraints ride along as ``Annotated`` markers (``Finite``,
``AtLeast``, ``Matches``, ``MinLen``, ``MaxDepth``); ``Expect`` says what the message calls
the expected value; ``Needed``, ``MayLack`` and ``NonNull`` change whether a TypedDict's
field may be absent or null; ``When`` applies markers only when a flag is given (a reader
that needs more of a value than another); ``ExtraItems`` types the keys a TypedDict does
not declare (left unchecked without it).

Nothing here knows what is checked: it is standard library only, and any layer may use it.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

MAX_INT = 2**53  # integers beyond this lose their value once read as a double

Check = Callable[[object], None]
"""A compiled check: returns when its value fits, raises ``Bad`` otherwise."""


class Bad(Exception):
    """A part of a value that does not fit: where (a key path), what it is and what was
    expected. The compiled checks add the keys on the way out (innermost first), so that
    no key path is built for a value that fits."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.message = message
        self.tail = where  # the innermost part of the key path, as the check raising it saw it
        self.keys: list[str | int] = []  # the keys around it, innermost first
        self.prefix = ""  # where the value checked sits

    @property
    def where(self) -> str:
        where = self.prefix
        for key in reversed(self.keys):
            where = at(where, key)
        return at(where, self.tail) if self.tail else where


def at(where: str, key: str | int) -> str:
    """The key path of KEY inside WHERE: ``path[2].loss``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def shown(value: object) -> str:
    """A value as an error message shows it: its JSON, on one line, cut short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
        kind = "the number"
    elif isinstance(value, str):
        text, kind = json.dumps(value), "the string"
    elif isinstance(value, list):
        return f"a list of {len(value)}" if value else "an empty list"
    elif isinstance(value, dict):
        return "an object" if value else "an empty object"
    else:
        return f"a {type(value).__name__}"
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"


def bad(where: str, value: object, expected: str) -> Bad:
    return Bad(where, f"{shown(value)} (expected {expected})")


# --- the markers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What an error message says was expected of the value."""

    text: str


@dataclass(frozen=True)
class Finite:
    """A number that is neither infinite nor NaN."""


@dataclass(frozen=True)
class AtLeast:
    """An integer of at least MINIMUM."""

    minimum: int


@dataclass(frozen=True)
class Matches:
    """A string that PATTERN matches in full; EXPECTED says what such a string is."""

    pattern: re.Pattern[str]
    expected: str


@dataclass(frozen=True)
class MinLen:
    """A string or list of at least LENGTH items."""

    length: int


@dataclass(frozen=True)
class MaxDepth:
    """Containers nested at most LEVELS deep inside the value (free-form settings are
    compared and printed recursively)."""

    levels: int


@dataclass(frozen=True)
class Needed:
    """A TypedDict's field that must be there; WHY is what the message says was expected
    (by default, the field's own expected value)."""

    why: str | None = None


@dataclass(frozen=True)
class MayLack:
    """A TypedDict's field that is always written, yet that a value read may lack (one
    written before the field, by hand, or of a kind that has none)."""


@dataclass(frozen=True)
class NonNull:
    """An optional value that must not be null."""


@dataclass(frozen=True, init=False)
class When:
    """Markers that apply only when FLAG is given to ``checker`` (OTHERWISE when not)."""

    flag: str
    then: tuple[object, ...]
    otherwise: tuple[object, ...]

    def __init__(self, flag: str, *then: object, otherwise: Iterable[object] = ()):
        object.__setattr__(self, "flag", flag)
        object.__setattr__(self, "then", then)
        object.__setattr__(self, "otherwise", tuple(otherwise))


@dataclass(frozen=True)
class ExtraItems:
    """The type of every value of a TypedDict under a key it does not declare."""

    type: object


# --- reading an annotation ---------------------------------------------------------------


def markers(tp: object, flags: frozenset[str] = frozenset()) -> tuple[object, list[object]]:
    """(the bare type, its markers with every ``When`` resolved by FLAGS)."""
    found: list[object] = []
    while get_origin(tp) in (Annotated, Required, NotRequired):
        if get_origin(tp) is Annotated:
            found = [*tp.__metadata__, *found]  # type: ignore[attr-defined]
            tp = tp.__origin__  # type: ignore[attr-defined]
        else:
            (tp,) = get_args(tp)
    flat: list[object] = []
    pending = list(found)
    while pending:
        marker = pending.pop(0)
        if isinstance(marker, When):
            pending[:0] = marker.then if marker.flag in flags else marker.otherwise
        else:
            flat.append(marker)
    return tp, flat


def _first(found: list[object], kind: type) -> Any:
    return next((m for m in found if isinstance(m, kind)), None)


def fields(tp: object) -> dict[str, object]:
    """A TypedDict's fields and their annotations, markers included."""
    return get_type_hints(tp, include_extras=True)


def describe(tp: object) -> str:
    """What a value of TP is, in words: its ``Expect`` if it has one."""
    bare, found = markers(tp)
    expect = _first(found, Expect)
    if expect is not None:
        return str(expect.text)
    return _default_text(bare)


def _default_text(tp: object) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is type(None):
        return "null"
    if origin is Literal:
        names = [json.dumps(a) for a in args]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    if origin in (Union, types.UnionType):
        texts = [describe(a) for a in args if a is not type(None)]
        text = ", ".join(texts[:-1]) + " or " + texts[-1] if len(texts) > 1 else texts[0]
        return f"{text}, or null" if type(None) in args else text
    if origin is list:
        return "a list"
    if origin is dict or is_typeddict(tp):
        return "an object"
    return "any value"


# --- compiling a check -------------------------------------------------------------------
#
# Every compiled check carries two hints for the loops over many values (the points of a
# path, the scores of a point): ``fast``, the Python types whose every value fits, and
# ``finite``, whether any finite float fits. A loop skips the call for such values, and a
# check may assume it is never called with them.

NoneType = type(None)


def _hinted(check: Check, fast: Iterable[type] = (), finite: bool = False) -> Check:
    check.fast = frozenset(fast)  # type: ignore[attr-defined]
    check.finite = finite  # type: ignore[attr-defined]
    return check


def _skips(check: Check) -> tuple[frozenset[type], bool]:
    return check.fast, check.finite  # type: ignore[attr-defined]


@cache
def checker(tp: object, flags: frozenset[str] = frozenset()) -> Check:
    """The check of a value against TP, with the ``When`` markers of FLAGS in force. Each
    distinct (type, flags) is compiled once."""
    inner = _compile(tp, flags)
    fast, finite = _skips(inner)

    def check(value: object) -> None:
        t = type(value)
        if t in fast or (finite and t is float and value - value == 0.0):  # type: ignore[operator]
            return
        inner(value)

    return check


def check(value: object, tp: object, where: str = "", flags: Iterable[str] = ()) -> None:
    """Raise ``Bad`` (its ``where`` under WHERE) for the first part of VALUE that does not
    fit TP."""
    try:
        checker(tp, frozenset(flags))(value)
    except Bad as e:
        e.prefix = where
        raise


def _compile(tp: object, flags: frozenset[str]) -> Check:
    bare, found = markers(tp, flags)
    expected = describe(tp) if _first(found, Expect) else _default_text(bare)
    if _first(found, NonNull) is not None:
        bare, inner = markers(_without_none(bare), flags)
        found = [*found, *inner]
    base = _compile_bare(bare, found, flags, expected)
    depth = _first(found, MaxDepth)
    if depth is None:
        return base
    levels = depth.levels

    def check_depth(value: object) -> None:
        base(value)
        if not _within(value, levels):
            raise Bad("", f"nested more than {levels} levels deep (expected plain settings)")

    return _hinted(check_depth)


def _without_none(tp: object) -> object:
    args = get_args(tp)
    if get_origin(tp) in (Union, types.UnionType) and NoneType in args:
        rest = tuple(a for a in args if a is not NoneType)
        return rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
    return tp


def _compile_bare(tp: object, found: list[object], flags: frozenset[str], expected: str) -> Check:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any or tp is object:
        return _accept
    if tp is NoneType or tp is bool:
        return _hinted(_refuse(expected), (tp,))  # type: ignore[arg-type]
    if tp is int:
        least = _first(found, AtLeast)
        return _integer(-MAX_INT if least is None else least.minimum, expected)
    if tp is float:
        return _number(_first(found, Finite) is not None, expected)
    if tp is str:
        return _string(found, expected)
    if origin is Literal:
        return _predicate(lambda v: any(v == a and type(v) is type(a) for a in args), expected)
    if origin in (Union, types.UnionType):
        return _union(args, flags, expected)
    if origin is list:
        return _list(args[0] if args else object, found, flags, expected)
    if origin is dict:
        return _mapping(args[1] if args else object, flags, expected)
    if is_typeddict(tp):
        return _typed_dict(tp, found, flags, expected)
    raise TypeError(f"no check for the annotation {tp!r}")


def _accept(value: object) -> None:
    return None


_hinted(_accept, (NoneType, bool, int, float, str, list, dict))


def _refuse(expected: str) -> Check:
    """The check of a type whose every value is skipped by its ``fast`` hint."""

    def check(value: object) -> None:
        raise bad("", value, expected)

    return check


def _predicate(test: Callable[[Any], bool], expected: str) -> Check:
    def check(value: object) -> None:
        if not test(value):
            raise bad("", value, expected)

    return _hinted(check)


def _integer(minimum: int, expected: str) -> Check:
    def check(value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("", value, expected)
        if not minimum <= value <= MAX_INT:
            raise bad("", value, expected)

    return _hinted(check)


def _number(finite: bool, expected: str) -> Check:
    """A float, or an integer that a double holds exactly; FINITE: neither infinite nor
    NaN. Any float is skipped by the hints (a finite one, when FINITE)."""

    def check(value: object) -> None:
        if type(value) is float or isinstance(value, bool) or not isinstance(value, int):
            raise bad("", value, expected)
        if abs(value) > MAX_INT:
            raise bad("", value, expected)

    return _hinted(check, () if finite else (float,), finite)


def _string(found: list[object], expected: str) -> Check:
    pattern = _first(found, Matches)
    least = _first(found, MinLen)
    length = 0 if least is None else least.length
    fullmatch = None if pattern is None else pattern.pattern.fullmatch
    matched = "" if pattern is None else pattern.expected

    def check(value: object) -> None:
        if type(value) is not str:
            raise bad("", value, expected)
        if len(value) < length:
            raise bad("", value, expected)
        if fullmatch is not None and fullmatch(value) is None:
            raise bad("", value, matched)

    return _hinted(check, (str,) if length == 0 and pattern is None else ())


def _union(args: tuple[object, ...], flags: frozenset[str], expected: str) -> Check:
    rest = [a for a in args if a is not NoneType]
    if len(rest) == 1:
        # X | None: X's own checks, with the union's words when the value is not an X
        inner = _compile(Annotated[rest[0], Expect(expected)], flags)
        fast, finite = _skips(inner)
        return _hinted(inner, fast | {NoneType}, finite)
    tagged = _tagged(rest, flags, expected)
    if tagged is not None and len(rest) == len(args):
        return tagged
    options = [_compile(a, flags) for a in args]

    def any_of(value: object) -> None:
        for option in options:
            try:
                option(value)
            except Bad:
                continue
            return
        raise bad("", value, expected)

    return _hinted(any_of)


def _tagged(options: list[object], flags: frozenset[str], expected: str) -> Check | None:
    """TypedDicts told apart by one field of a literal value (``{"rule": "fixed", ...}``):
    the check of the one the tag names, or None when OPTIONS are not such."""
    if not all(is_typeddict(markers(o)[0]) for o in options):
        return None
    hints = [fields(markers(o)[0]) for o in options]
    for key in hints[0]:
        tags = [get_args(markers(h.get(key))[0]) for h in hints]
        literal = [get_origin(markers(h.get(key))[0]) is Literal for h in hints]
        if all(literal) and all(len(t) == 1 for t in tags):
            by_tag = {t[0]: _compile(o, flags) for t, o in zip(tags, options)}
            return _by_tag(key, by_tag, expected)
    return None


def _by_tag(key: str, by_tag: dict[object, Check], expected: str) -> Check:
    words = _default_text(Literal[tuple(by_tag)])  # type: ignore[misc]

    def tagged(value: object) -> None:
        if type(value) is not dict:
            raise bad("", value, expected)
        option = by_tag.get(value.get(key))
        if option is None:
            error = bad("", value.get(key), words)
            error.keys.append(key)
            raise error
        option(value)

    return _hinted(tagged)


def _list(item: object, found: list[object], flags: frozenset[str], expected: str) -> Check:
    least = _first(found, MinLen)
    length = 0 if least is None else least.length
    inner = _compile(item, flags)
    fast, finite = _skips(inner)

    def check(value: object) -> None:
        if type(value) is not list or len(value) < length:
            raise bad("", value, expected)
        for i, v in enumerate(value):
            t = type(v)
            if t in fast or (finite and t is float and v - v == 0.0):
                continue
            try:
                inner(v)
            except Bad as e:
                e.keys.append(i)
                raise

    return _hinted(check)


def _mapping(item: object, flags: frozenset[str], expected: str) -> Check:
    inner = _compile(item, flags)
    fast, finite = _skips(inner)
    free = inner is _accept

    def check(value: object) -> None:
        if type(value) is not dict:
            raise bad("", value, expected)
        if free:
            return
        for k, v in value.items():
            t = type(v)
            if t in fast or (finite and t is float and v - v == 0.0):
                continue
            try:
                inner(v)
            except Bad as e:
                e.keys.append(k)
                raise

    return _hinted(check)


_ABSENT = object()


def _typed_dict(tp: Any, found: list[object], flags: frozenset[str], expected: str) -> Check:
    required_keys = tp.__required_keys__
    declared = []
    for key, annotation in fields(tp).items():
        _, own = markers(annotation, flags)
        needed = _first(own, Needed)
        written = _written(annotation, key in required_keys)
        required = needed is not None or (written and _first(own, MayLack) is None)
        why = needed.why if needed is not None and needed.why else describe(annotation)
        inner = _compile(annotation, flags)
        fast, finite = _skips(inner)
        missing = f"missing (expected {why})" if required else None
        declared.append((key, inner, fast, finite, missing))
    names = frozenset(key for key, *_ in declared)
    extra = _first(found, ExtraItems)
    extra_check = _accept if extra is None else _compile(extra.type, flags)
    extra_fast, extra_finite = _skips(extra_check)
    free = extra_check is _accept

    def check(value: object) -> None:
        if type(value) is not dict:
            raise bad("", value, expected)
        for key, inner, fast, finite, missing in declared:
            v = value.get(key, _ABSENT)
            if v is _ABSENT:
                if missing is not None:
                    raise Bad(key, missing)
                continue
            t = type(v)
            if t in fast or (finite and t is float and v - v == 0.0):  # type: ignore[operator]
                continue
            try:
                inner(v)
            except Bad as e:
                e.keys.append(key)
                raise
        if free:
            return
        for k, v in value.items():
            t = type(v)
            if t in extra_fast or (extra_finite and t is float and v - v == 0.0) or k in names:
                continue
            try:
                extra_check(v)
            except Bad as e:
                e.keys.append(k)
                raise

    return _hinted(check)


def _written(annotation: object, default: bool) -> bool:
    """Whether a TypedDict's field is required (``Required``, ``NotRequired``, or by its
    class's ``total``; string annotations hide the first two from the class itself)."""
    while get_origin(annotation) is Annotated:
        annotation = annotation.__origin__  # type: ignore[attr-defined]
    if get_origin(annotation) is NotRequired:
        return False
    return get_origin(annotation) is Required or default


def _within(value: object, levels: int) -> bool:
    """Whether VALUE nests containers at most LEVELS deep."""
    if levels >= 2 and _shallow(value):
        return True
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > levels:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return True


def _shallow(value: object) -> bool:
    """Whether no item of VALUE nests a container in a container (most settings: numbers,
    strings, lists of numbers), so that no walk is needed."""
    if type(value) is dict:
        items: Iterable[object] = value.values()
    elif type(value) is list:
        items = value
    else:
        return True
    for item in items:
        t = type(item)
        if t is dict:
            item = item.values()  # type: ignore[attr-defined]
        elif t is not list:
            continue
        for inner in item:  # type: ignore[attr-defined]
            if type(inner) is dict or type(inner) is list:
                return False
    return True
