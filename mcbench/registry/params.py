"""Plugin parameters: described from dataclass fields, checked against YAML values."""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Literal,
    Protocol,
    TypeGuard,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from mcbench.errors import shown, suggest

if TYPE_CHECKING:
    from mcbench.kinds.base import Plugin


class _Named(Protocol):
    """What ``build`` instantiates: a plugin class or a settings section, both dataclasses
    with a ``name``."""

    name: ClassVar[str]


N = TypeVar("N", bound=_Named)

INT_LIMIT = 2**63
"""Integer parameters lie in (-INT_LIMIT, INT_LIMIT): what torch and numpy hold as int64.
Larger ones are typos (or attempts) and would overflow far from the YAML line."""
INT_RANGE = "between -2**63 and 2**63"


@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    default: Any
    help: str
    nonfinite: bool = False  # NaN and infinities are values of it (field metadata "nonfinite")
    omit_at_default: bool = False
    """Left out of cache keys and records while it holds its default (field metadata
    "omit_at_default"): a parameter added to a released plugin, so that the results
    computed before it existed keep their keys."""

    @property
    def type_name(self) -> str:
        return type_name(self.type)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # evaluating the annotations is most of describe()'s cost, and cell identities call it
    # thousands of times per run; a class's annotations do not change
    return typing.get_type_hints(cls)


def describe(cls: type) -> list[Param]:
    """The parameters of a plugin class: its init dataclass fields, in order."""
    hints = _type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        params.append(
            Param(
                f.name,
                hints.get(f.name, Any),
                default,
                f.metadata.get("help", ""),
                bool(f.metadata.get("nonfinite", False)),
                bool(f.metadata.get("omit_at_default", False)),
            )
        )
    return params


def is_plugin_type(tp: Any) -> TypeGuard[type[Plugin]]:
    """A parameter whose value is itself a plugin (e.g. the attack a metric runs)."""
    return isinstance(tp, type) and isinstance(getattr(tp, "kind", None), str)


def plugin_type(tp: Any) -> type[Plugin] | None:
    """The plugin base of a parameter typed ``Base`` or ``Base | None``; None otherwise."""
    if is_plugin_type(tp):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        bases = [a for a in get_args(tp) if a is not type(None)]
        if len(bases) == 1 and is_plugin_type(bases[0]):
            return bases[0]
    return None


def type_name(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if tp is type(None):
        return "null"
    if is_plugin_type(tp):
        return f"{tp.kind} ({tp.__name__}): a name or {{name: ..., <parameter>: ...}}"
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (tuple, list):
        inner = type_name(args[0]) if args else "any"
        return f"list of {inner}"
    if origin is dict or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


class ParamTypeError(ValueError):
    pass


REFUSED = (ValueError, TypeError, ArithmeticError)
"""What a plugin's ``__post_init__`` raises for values it refuses (ArithmeticError: a
value too large to compute with, e.g. converted to a float)."""


Resolve = Callable[["type[Plugin]", str], "type[Plugin]"]
"""(plugin base class, name) -> the registered plugin class of that name, or KeyError."""


def coerce(value: Any, tp: Any, resolve: Resolve | None = None, *, finite: bool = True) -> Any:
    """Check a YAML value against an annotation; return it in the annotated form
    (lists become tuples, ints become floats where a float is expected). A plugin named
    in the value (``{name: pgd, steps: 3}``) is found with ``resolve``, which a value of a
    plugin type needs (e.g. ``load_registry().resolve``)."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if is_plugin_type(tp):
        if isinstance(value, tp):
            return value
        return _plugin_from_plain(value, tp, resolve or _unresolvable)
    if origin is Literal:
        if value in args:
            return value
        raise ParamTypeError(
            f"expected one of {', '.join(repr(a) for a in args)}, got {shown(value)}"
        )
    if origin in (Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return coerce(value, option, resolve, finite=finite)
            except ParamTypeError as e:
                errors.append(str(e))
        if value is not None and len(args) == 2 and type(None) in args:
            # ``X | None`` given something that is not null: what X says is wrong with it
            message = errors[1 - args.index(type(None))]
            if ", got " in message:
                raise ParamTypeError(message.replace(", got ", " or null, got ", 1))
            raise ParamTypeError(f"{message} (or null)")
        raise ParamTypeError(f"expected {type_name(tp)}, got {shown(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise ParamTypeError(f"expected null, got {shown(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ParamTypeError(f"expected true or false, got {shown(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT_LIMIT < value < INT_LIMIT:
                raise ParamTypeError(f"expected an integer {INT_RANGE}, got {shown(value)}")
            return value
        raise ParamTypeError(f"expected an integer, got {shown(value)}")
    if tp is float:
        return _finite_float(value) if finite else _float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ParamTypeError(f"expected a string, got {shown(value)}")
    if origin in (tuple, list):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ParamTypeError(f"expected a list, got {shown(value)}")
        inner = args[0] if args else Any
        items = []
        for i, v in enumerate(value):
            try:
                items.append(coerce(v, inner, resolve, finite=finite))
            except ParamTypeError as e:
                raise ParamTypeError(f"item {i}: {e}") from None
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            _check_plain(value)
            return dict(value)
        raise ParamTypeError(f"expected a mapping, got {shown(value)}")
    raise ParamTypeError(f"unsupported parameter type {tp!r}")


def _float(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ParamTypeError(f"expected a number, got {shown(value)}")
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _finite_float(value: Any) -> float:
    """A float parameter's value: a number that is finite as a float. NaN passes every
    ``x < low`` range check a plugin makes, and infinities make sizes and steps that
    never end, so neither is a value of a parameter unless its field's metadata says
    ``nonfinite: True``."""
    number = _float(value)
    if not math.isfinite(number):
        raise ParamTypeError(f"expected a finite number, got {shown(value)}")
    return number


def _check_plain(value: Any, at: str = "") -> None:
    """A free-form mapping parameter (e.g. timm's ``kwargs``) holds what hashes into a
    cache key and passes on as keyword arguments: text keys; text, finite numbers,
    true/false, null, lists and mappings as values."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParamTypeError(f"{at}{shown(key)}: expected text keys, got {shown(key)}")
            _check_plain(item, f"{at}{key}: ")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{at}[{i}]: ")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ParamTypeError(f"{at}expected a finite number, got {shown(value)}")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -INT_LIMIT < value < INT_LIMIT:
            raise ParamTypeError(f"{at}expected an integer {INT_RANGE}, got {shown(value)}")
    elif value is not None and not isinstance(value, (str, bool)):
        raise ParamTypeError(
            f"{at}expected text, a number, true/false, null, a list or a mapping, "
            f"got {shown(value)}"
        )


def build(cls: type[N], values: dict[str, Any], resolve: Resolve | None = None) -> N:
    """Instantiate ``cls`` from YAML values. Raises UnknownParam or BadParam carrying the
    offending key (None when the plugin rejected the combination; "outer.inner" inside a
    parameter that is itself a plugin) so callers can locate it."""
    params = {p.name: p for p in describe(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in params:
            raise UnknownParam(
                key,
                f"unknown parameter {shown(key)} for {cls.name!r}"
                f"{suggest(key, params)}; parameters: "
                f"{', '.join(params) or '(none)'}",
            )
        base = plugin_type(params[key].type)
        if base is not None and resolve is not None and value is not None:
            kwargs[key] = _nested(key, value, base, resolve)
            continue
        try:
            kwargs[key] = coerce(value, params[key].type, finite=not params[key].nonfinite)
        except ParamTypeError as e:
            raise BadParam(key, str(e)) from None
    if resolve is not None:
        for name, p in params.items():
            base = plugin_type(p.type)
            if name not in kwargs and base is not None and isinstance(p.default, base):
                kwargs[name] = _default_plugin(name, p.default, base, resolve)
    missing = [n for n, p in params.items() if p.default is dataclasses.MISSING and n not in kwargs]
    if missing:
        raise BadParam(missing[0], f"missing required parameter {missing[0]!r}")
    try:
        return cls(**kwargs)
    except REFUSED as e:
        raise BadParam(_culprit(cls, kwargs), f"{cls.name}: {e}") from None


def _nested(key: str, value: Any, base: type[Plugin], resolve: Resolve) -> Plugin:
    if isinstance(value, str):
        name, inner = value, {}
    elif isinstance(value, dict) and isinstance(value.get("name"), str):
        name, inner = value["name"], {k: v for k, v in value.items() if k != "name"}
    else:
        raise BadParam(
            key, f"expected a {base.kind} name or a mapping with 'name', got {shown(value)}"
        )
    try:
        cls = resolve(base, name)
    except KeyError as e:
        raise BadParam((key, "name") if isinstance(value, dict) else key, e.args[0]) from None
    try:
        return build(cls, inner, resolve)
    except (UnknownParam, BadParam) as e:
        raise type(e)((key, *e.path), str(e)) from None


def _default_plugin(key: str, default: Plugin, base: type[Plugin], resolve: Resolve) -> Plugin:
    """A parameter's default plugin (e.g. a metric's default attack, pgd) as the registry
    provides it by name: an error if no plugin has that name (e.g. it is blocked), the
    other class with its own defaults if that name is now another plugin's. With the
    registered class it is the default itself, so the parameters stay as declared."""
    try:
        cls = resolve(base, default.name)
    except KeyError as e:
        raise BadParam(key, f"the default {default.name!r} is not available: {e.args[0]}") from None
    if cls is type(default):
        return default
    try:
        return build(cls, {}, resolve)
    except (UnknownParam, BadParam) as e:
        raise type(e)((key, *e.path), str(e)) from None


def _plugin_from_plain(value: Any, base: type[Plugin], resolve: Resolve) -> Plugin:
    """Rebuild a nested plugin from its plain form (a name, or {name, parameters})."""
    try:
        return _nested("", value, base, resolve)
    except (UnknownParam, BadParam) as e:
        raise ParamTypeError(str(e)) from None


def _unresolvable(base: type[Plugin], name: str) -> type[Plugin]:
    raise TypeError(f"coerce() needs resolve to find the {base.kind} {name!r}")


def _culprit(cls: type[_Named], kwargs: dict[str, Any]) -> str | None:
    """The one key that is rejected on its own (over the defaults), to point at its line;
    None when only a combination of values is rejected."""
    for key, value in kwargs.items():
        try:
            cls(**{key: value})
        except REFUSED:
            return key
    return None


class _ParamError(ValueError):
    """Carries where the offending value sits: ``path``, the keys from the plugin's
    parameters down (as the YAML spells them, so not always text), and ``key``, the same
    joined with dots ("attack.steps"); both empty when no single key is to blame."""

    def __init__(self, key: object, message: str) -> None:
        super().__init__(message)
        parts = key if isinstance(key, tuple) else (key,)
        self.path = tuple(p for p in parts if p not in ("", None))
        self.key = ".".join(str(p) for p in self.path) or None


class UnknownParam(_ParamError):
    pass


class BadParam(_ParamError):
    pass


def to_plain(instance: object) -> dict[str, Any]:
    """A plugin instance's parameters as plain JSON-able values (for hashing/records)."""
    out = {}
    for p in describe(type(instance)):
        value = getattr(instance, p.name)
        if p.omit_at_default and value == p.default:
            continue
        if is_plugin_type(type(value)):
            value = {"name": value.name, **to_plain(value)}
        out[p.name] = list(value) if isinstance(value, tuple) else value
    return out
