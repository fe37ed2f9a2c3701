"""The registry calls every hook through pluggy: implementations that take no
arguments, hook wrappers, ordering marks and call monitoring all behave as pluggy
defines them; a name registered twice is an error naming both providers."""

import types

import pytest

import mcbench
from mcbench.errors import PluginError
from mcbench.registry import Registry, load_registry, make_plugin_manager


def _attack_class(registry, name):
    """A valid attack plugin class under a new name."""
    return type(name.title(), (registry.get("attack", "badnets").cls,), {"name": name})


def _module(name, **hooks):
    module = types.ModuleType(name)
    for attribute, function in hooks.items():
        setattr(module, attribute, function)
    return module


def _registering(name, cls, **marks):
    @mcbench.hookimpl(specname="mcbench_register_attacks", **marks)
    def hook(register):
        register(cls)

    return _module(name, hook=hook)


def test_a_hook_implementation_may_take_no_arguments():
    calls = []

    @mcbench.hookimpl
    def mcbench_register_attacks():
        calls.append("called")

    registry = load_registry(
        entry_points=False,
        extra=(_module("quiet", mcbench_register_attacks=mcbench_register_attacks),),
    )
    assert calls == ["called"]
    assert registry.names("attack") == []


def test_each_class_is_attributed_to_the_plugin_that_registered_it(registry):
    first = _registering("first", _attack_class(registry, "one"))
    second = _registering("second", _attack_class(registry, "two"))
    reg = load_registry(entry_points=False, extra=(first, second))
    assert {e.name: e.provider for e in reg.all("attack")} == {"one": "first", "two": "second"}
    assert {e.distribution for e in reg.all("attack")} == {"local"}


def test_a_hook_wrapper_wraps_the_registration(registry):
    seen = []

    @mcbench.hookimpl(wrapper=True, specname="mcbench_register_attacks")
    def around(register):
        seen.append("before")
        result = yield
        seen.append("after")
        return result

    wrapper = _module("wrapper", around=around)
    plugin = _registering("plain", _attack_class(registry, "one"))
    reg = load_registry(entry_points=False, extra=(wrapper, plugin))
    assert seen == ["before", "after"]
    assert reg.names("attack") == ["one"]
    assert reg.get("attack", "one").provider == "plain"


def test_registration_runs_in_pluggy_call_order(registry):
    order = []

    def recording(name, **marks):
        @mcbench.hookimpl(specname="mcbench_register_attacks", **marks)
        def hook(register):
            order.append(name)

        return _module(name, hook=hook)

    load_registry(
        entry_points=False,
        extra=(
            recording("late", trylast=True),
            recording("plain"),
            recording("early", tryfirst=True),
        ),
    )
    assert order == ["early", "plain", "late"]


def test_hook_calls_are_seen_by_call_monitoring(registry):
    pm = make_plugin_manager(
        entry_points=False, extra=(_registering("p", _attack_class(registry, "one")),)
    )
    called = []
    undo = pm.add_hookcall_monitoring(
        lambda hook_name, impls, kwargs: called.append(hook_name), lambda *a: None
    )
    try:
        Registry(pm)
    finally:
        undo()
    assert "mcbench_register_attacks" in called


def test_two_plugins_with_one_name_is_an_error_naming_both(registry):
    clash = type("Clash", (registry.get("attack", "badnets").cls,), {})
    with pytest.raises(PluginError) as info:
        load_registry(extra=(_registering("thirdparty", clash),))
    text = str(info.value)
    assert "two plugins register the attack 'badnets'" in text
    assert f"badnets (mcbench {mcbench.__version__})" in text and "thirdparty (local )" in text


def test_a_hook_registered_by_hand_that_raises_is_an_error_naming_it():
    @mcbench.hookimpl
    def mcbench_register_metrics(register):
        raise RuntimeError("no metrics today")

    with pytest.raises(PluginError) as info:
        load_registry(
            entry_points=False,
            extra=(_module("handmade", mcbench_register_metrics=mcbench_register_metrics),),
        )
    assert str(info.value) == (
        "plugin 'handmade': mcbench_register_metrics raised RuntimeError: no metrics today"
    )
