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
