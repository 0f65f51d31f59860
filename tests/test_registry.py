import pytest

from gcahng.errors import InputError
from gcahng.registry import Registry


def test_register_get_and_list():
    reg = Registry("widget")

    @reg.register("b")
    class B:
        pass

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and reg.get("b") is B
    assert reg.names() == ["a", "b"]
    assert "a" in reg and "c" not in reg


def test_unknown_name_lists_registered():
    reg = Registry("widget")
    reg.register("alpha")(object)
    with pytest.raises(InputError, match=r"unknown widget 'beta'; registered: alpha"):
        reg.get("beta")


def test_duplicate_registration_needs_overwrite():
    reg = Registry("widget")
    reg.register("x")(int)
    with pytest.raises(InputError, match="already registered"):
        reg.register("x")(float)
    reg.register("x", overwrite=True)(float)
    assert reg.get("x") is float


def test_registered_holds_for_the_with_block_only():
    reg = Registry("widget")
    reg.register("x")(int)
    with reg.registered("y", str) as obj:
        assert obj is str and reg.get("y") is str
    assert reg.names() == ["x"]
    with pytest.raises(InputError, match="already registered"), reg.registered("x", float):
        pass
    with reg.registered("x", float, overwrite=True):
        assert reg.get("x") is float
    assert reg.get("x") is int  # the replaced object comes back


def test_restored_on_exit_undoes_registrations_also_on_error():
    reg = Registry("widget")
    reg.register("x")(int)
    with pytest.raises(RuntimeError), reg.restored_on_exit():
        reg.register("y")(str)
        reg.register("x", overwrite=True)(float)
        raise RuntimeError
    assert reg.names() == ["x"] and reg.get("x") is int


def test_the_check_runs_before_anything_is_added():
    def only_types(obj):
        if not isinstance(obj, type):
            raise InputError(f"not a class: {obj!r}")

    reg = Registry("widget", check=only_types)
    with pytest.raises(InputError, match="not a class: 3"):
        reg.register("three")(3)
    assert "three" not in reg
    assert reg.register("int")(int) is int
