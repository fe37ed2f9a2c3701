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
not declare (left unchecked without it). Each check first runs a predicate generated from
the same annotation as Python source, with no call per field, that says only whether the
value fits (see "the fast path" below); the closures say where and why it does not.

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
    cast,
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
    fits = _fits(tp, flags)

    def check(value: object) -> None:
        if fits(value):
            return
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
        return _hinted(_refuse(expected), (tp,))
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


def _tag(options: list[object]) -> tuple[str, dict[object, object]] | None:
    """TypedDicts told apart by one field of a literal value (``{"rule": "fixed", ...}``):
    (that field, each tag's option), or None when OPTIONS are not such."""
    if not all(is_typeddict(markers(o)[0]) for o in options):
        return None
    hints = [fields(markers(o)[0]) for o in options]
    for key in hints[0]:
        tags = [get_args(markers(h.get(key))[0]) for h in hints]
        literal = [get_origin(markers(h.get(key))[0]) is Literal for h in hints]
        if all(literal) and all(len(t) == 1 for t in tags):
            return key, {t[0]: o for t, o in zip(tags, options)}
    return None


def _tagged(options: list[object], flags: frozenset[str], expected: str) -> Check | None:
    """The check of the option that a tagged union's tag names, or None when OPTIONS are
    not such (``_tag``)."""
    tag = _tag(options)
    if tag is None:
        return None
    key, by_tag = tag
    return _by_tag(key, {t: _compile(o, flags) for t, o in by_tag.items()}, expected)


def _by_tag(key: str, by_tag: dict[object, Check], expected: str) -> Check:
    words = _default_text(Literal[tuple(by_tag)])

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
        _check_items(enumerate(value), inner, fast, finite)

    return _hinted(check)


def _check_items(
    items: Iterable[tuple[str | int, Any]], inner: Check, fast: frozenset[type], finite: bool
) -> None:
    """INNER on every value of a list's or a mapping's (key, value) ITEMS, but those of a
    type it accepts whatever they hold (FAST, and finite floats when FINITE); a refusal
    names the key."""
    for k, v in items:
        t = type(v)
        if t in fast or (finite and t is float and v - v == 0.0):
            continue
        try:
            inner(v)
        except Bad as e:
            e.keys.append(k)
            raise


def _mapping(item: object, flags: frozenset[str], expected: str) -> Check:
    inner = _compile(item, flags)
    fast, finite = _skips(inner)
    free = inner is _accept

    def check(value: object) -> None:
        if type(value) is not dict:
            raise bad("", value, expected)
        if free:
            return
        _check_items(value.items(), inner, fast, finite)

    return _hinted(check)


_ABSENT = object()


def declared(tp: Any, flags: frozenset[str]) -> list[tuple[str, object, str | None]]:
    """A TypedDict's fields with the ``When`` markers of FLAGS in force: (key, annotation,
    the message when it is missing, or None where it may be)."""
    required_keys = tp.__required_keys__
    declared: list[tuple[str, object, str | None]] = []
    for key, annotation in fields(tp).items():
        _, own = markers(annotation, flags)
        needed = _first(own, Needed)
        written = _written(annotation, key in required_keys)
        required = needed is not None or (written and _first(own, MayLack) is None)
        why = needed.why if needed is not None and needed.why else describe(annotation)
        declared.append((key, annotation, f"missing (expected {why})" if required else None))
    return declared


def _typed_dict(tp: Any, found: list[object], flags: frozenset[str], expected: str) -> Check:
    checks = []
    for key, annotation, missing in declared(tp, flags):
        inner = _compile(annotation, flags)
        fast, finite = _skips(inner)
        checks.append((key, inner, fast, finite, missing))
    names = frozenset(key for key, *_ in checks)
    extra = _first(found, ExtraItems)
    extra_check = _accept if extra is None else _compile(extra.type, flags)
    extra_fast, extra_finite = _skips(extra_check)
    free = extra_check is _accept

    def check(value: object) -> None:
        if type(value) is not dict:
            raise bad("", value, expected)
        for key, inner, fast, finite, missing in checks:
            v = value.get(key, _ABSENT)
            if v is _ABSENT:
                if missing is not None:
                    raise Bad(key, missing)
                continue
            t = type(v)
            if t in fast or (finite and t is float and v - v == 0.0):
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


# --- the fast path: one generated predicate per type -------------------------------------
#
# The checks above say where a value does not fit and why, one closure per part of the type.
# Most values fit; for them ``checker`` first runs a predicate generated as Python source
# from the same annotation: one function with every part inlined (no call per field or per
# point) that only says whether the value fits. It is sound, not complete: where it says
# True the checks above would return; where it says False (a value that does not fit, or a
# case it leaves to them) they run and say why. So the checks above remain the one
# definition of what fits and of every message.

Fits = Callable[[object], bool]


def _fits(tp: object, flags: frozenset[str]) -> Fits:
    """The predicate of ``checker(tp, flags)``'s fast path."""
    source = _Source(flags)
    body = source.block(tp, "v0", 1)
    text = "def fits(v0):\n" + "".join(f"{line}\n" for line in body) + "    return True\n"
    namespace = dict(source.constants)
    exec(compile(text, f"<fits {_default_text(markers(tp)[0])}>", "exec"), namespace)
    fits = cast(Fits, namespace["fits"])
    fits.source = text  # type: ignore[attr-defined]  # to read what was generated
    return fits


class _Source:
    """The source of a predicate: lines that fall through when the value in a variable fits
    and ``return False`` when it does not (or when the case is left to the checks)."""

    def __init__(self, flags: frozenset[str]):
        self.flags = flags
        self.constants: dict[str, object] = {
            "_ABSENT": _ABSENT,
            "_within": _within,
            "_shallow": _shallow,
        }
        self.names = 0

    def var(self) -> str:
        self.names += 1
        return f"v{self.names}"

    def constant(self, value: object) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def block(self, tp: object, var: str, indent: int) -> list[str]:
        """What ``_compile(tp)`` accepts, with its ``fast`` and ``finite`` hints."""
        bare, found = markers(tp, self.flags)
        if _first(found, NonNull) is not None:
            bare, inner = markers(_without_none(bare), self.flags)
            found = [*found, *inner]
        depth = _first(found, MaxDepth)
        if depth is None:
            return self.bare(bare, found, var, indent)
        # check_depth calls its base with no hints: the same only for a base that has none
        origin = get_origin(bare)
        hintless = bare in (Any, object, int, str) or origin in (list, dict, Literal)
        if not (hintless or is_typeddict(bare)):
            return [_pad(indent) + "return False"]
        test = f"_within({var}, {depth.levels})"
        if depth.levels >= 2:  # as _within begins, without its call for most settings
            test = f"(_shallow({var}) or {test})"
        return [*self.bare(bare, found, var, indent), *_unless(f"{test}", indent)]

    def bare(self, tp: object, found: list[object], var: str, indent: int) -> list[str]:
        origin, args = get_origin(tp), get_args(tp)
        if tp is Any or tp is object:
            return []
        if tp is NoneType:
            return _unless(f"{var} is None", indent)
        if tp is bool:
            return _unless(f"type({var}) is bool", indent)
        if tp is int:
            least = _first(found, AtLeast)
            low = -MAX_INT if least is None else least.minimum
            return _unless(f"type({var}) is int and {low} <= {var} <= {MAX_INT}", indent)
        if tp is float:
            number = f"type({var}) is float"
            if _first(found, Finite) is not None:
                number = f"({number} and {var} - {var} == 0.0)"
            integer = f"(type({var}) is int and {-MAX_INT} <= {var} <= {MAX_INT})"
            return _unless(f"{number} or {integer}", indent)
        if tp is str:
            test = f"type({var}) is str"
            least = _first(found, MinLen)
            if least is not None and least.length > 0:
                test += f" and len({var}) >= {least.length}"
            pattern = _first(found, Matches)
            if pattern is not None:
                test += f" and {self.constant(pattern.pattern.fullmatch)}({var}) is not None"
            return _unless(test, indent)
        if origin is Literal:
            if all(type(a) is str for a in args):
                test = f"type({var}) is str and {var} in {self.constant(frozenset(args))}"
            else:
                options = self.constant(args)
                test = f"any({var} == a and type({var}) is type(a) for a in {options})"
            return _unless(test, indent)
        if origin in (Union, types.UnionType):
            return self.union(args, var, indent)
        if origin is list:
            least = _first(found, MinLen)
            test = f"type({var}) is list"
            if least is not None and least.length > 0:
                test += f" and len({var}) >= {least.length}"
            item = self.var()
            inner = self.block(args[0] if args else object, item, indent + 1)
            loop = [f"{_pad(indent)}for {item} in {var}:", *inner] if inner else []
            return [*_unless(test, indent), *loop]
        if origin is dict:
            item = self.var()
            inner = self.block(args[1] if args else object, item, indent + 1)
            loop = [f"{_pad(indent)}for {item} in {var}.values():", *inner] if inner else []
            return [*_unless(f"type({var}) is dict", indent), *loop]
        if is_typeddict(tp):
            return self.typed_dict(tp, found, var, indent)
        return [_pad(indent) + "return False"]

    def union(self, args: tuple[object, ...], var: str, indent: int) -> list[str]:
        pad = _pad(indent)
        rest = [a for a in args if a is not NoneType]
        if len(rest) == 1:  # X | None: None, or what X's checks accept
            inner = self.block(rest[0], var, indent + 1)
            return [f"{pad}if {var} is not None:", *inner] if inner else []
        tag = _tag(rest) if len(rest) == len(args) else None
        if tag is None:
            return [f"{pad}return False"]  # any of several: left to the checks
        key, by_tag = tag
        value = self.var()
        lines = [*_unless(f"type({var}) is dict", indent), f"{pad}{value} = {var}.get({key!r})"]
        for i, (name, option) in enumerate(by_tag.items()):
            test = f"type({value}) is {self.constant(type(name))} and {value} == {name!r}"
            lines.append(f"{pad}{'if' if i == 0 else 'elif'} {test}:")
            lines.extend(self.block(option, var, indent + 1) or [f"{pad}    pass"])
        return [*lines, f"{pad}else:", f"{pad}    return False"]

    def typed_dict(self, tp: object, found: list[object], var: str, indent: int) -> list[str]:
        pad = _pad(indent)
        lines = _unless(f"type({var}) is dict", indent)
        own = declared(tp, self.flags)
        for key, annotation, missing in own:
            value = self.var()
            inner = self.block(annotation, value, indent + (missing is None))
            if missing is not None and not inner:
                lines += _unless(f"{key!r} in {var}", indent)
            elif missing is not None:
                lines += [
                    f"{pad}{value} = {var}.get({key!r}, _ABSENT)",
                    *_unless(f"{value} is not _ABSENT", indent),
                    *inner,
                ]
            elif inner:
                lines += [
                    f"{pad}{value} = {var}.get({key!r}, _ABSENT)",
                    f"{pad}if {value} is not _ABSENT:",
                    *inner,
                ]
        extra = _first(found, ExtraItems)
        if extra is not None:
            key, value = self.var(), self.var()
            inner = self.block(extra.type, value, indent + 2)
            if inner:
                names = self.constant(frozenset(name for name, *_ in own))
                lines += [
                    f"{pad}for {key}, {value} in {var}.items():",
                    *self.skip(_compile(extra.type, self.flags), value, indent + 1),
                    f"{pad}    if {key} not in {names}:",
                    *inner,
                ]
        return lines

    def skip(self, check: Check, var: str, indent: int) -> list[str]:
        """In a loop, first the values that CHECK's hints skip (most scores): as the
        checks skip them before they look at the key."""
        fast, finite = _skips(check)
        tests = [f"type({var}) is {self.constant(t)}" for t in fast]
        if finite:
            tests.append(f"(type({var}) is float and {var} - {var} == 0.0)")
        pad = _pad(indent)
        return [f"{pad}if {' or '.join(tests)}:", f"{pad}    continue"] if tests else []


def _pad(indent: int) -> str:
    return "    " * indent


def _unless(test: str, indent: int) -> list[str]:
    """The lines that return False unless TEST holds."""
    return [f"{_pad(indent)}if not ({test}):", f"{_pad(indent)}    return False"]
