"""MIGRATE_TEST_ORDER (tests/conftest.py): the suite reordered, each module's tests kept together."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import ORDER_VAR, _order, _reorder


@dataclass
class Item:
    nodeid: str


def items() -> list[Item]:
    return [Item(f"tests/{m}.py::t{i}") for m in ("a", "b", "c", "d") for i in range(5)]


def modules(ordered: list[Item]) -> list[str]:
    seen: list[str] = []
    for item in ordered:
        module = item.nodeid.split("::")[0]
        if not seen or seen[-1] != module:
            seen.append(module)
    return seen


def test_reverse_is_the_collection_order_backwards():
    ordered = items()
    _reorder(ordered, "reverse", None)
    assert ordered == items()[::-1]


def test_a_shuffle_keeps_every_test_and_each_module_together_and_replays_from_its_seed():
    first, again, other = items(), items(), items()
    _reorder(first, "shuffle", 7)
    _reorder(again, "shuffle", 7)
    _reorder(other, "shuffle", 8)
    assert sorted(i.nodeid for i in first) == sorted(i.nodeid for i in items())
    assert len(modules(first)) == 4  # no module split in two
    assert first == again and first != other and first != items()


def test_the_variable_is_checked(monkeypatch):
    monkeypatch.setenv(ORDER_VAR, "shuffle:42")
    assert _order() == ("shuffle", 42)
    monkeypatch.setenv(ORDER_VAR, "")
    assert _order() == ("", None)
    for bad in ("sideways", "reverse:3", "shuffle:x"):
        monkeypatch.setenv(ORDER_VAR, bad)
        with pytest.raises(pytest.UsageError):
            _order()


def test_by_default_the_longest_modules_go_first_the_rest_in_collection_order():
    ordered = [Item(f"tests/integration/{m}.py::t{i}") for m in ("test_a", "test_lag", "test_b", "test_kill_matrix")
               for i in range(2)]
    _reorder(ordered, "slow_first", None)
    assert modules(ordered) == ["tests/integration/test_kill_matrix.py", "tests/integration/test_lag.py",
                                "tests/integration/test_a.py", "tests/integration/test_b.py"]
    assert [i.nodeid for i in ordered[:2]] == ["tests/integration/test_kill_matrix.py::t0",
                                               "tests/integration/test_kill_matrix.py::t1"]
