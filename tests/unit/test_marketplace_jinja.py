"""module_utils/marketplace_jinja.py: the Jinja and Ansible filters the role filter plugins reproduce, compared with
the real ones (Jinja's truncate/int/float/unique, Ansible's bool) over the inputs the templates gave them."""
from __future__ import annotations

import random
import string

import jinja2
import pytest
from ansible.plugins.filter.core import to_bool

from devtools.modules import load_utils

mj = load_utils("marketplace_jinja")
ENV = jinja2.Environment(autoescape=False)  # noqa: S701 - renders test strings, not HTML


def _render(template, **values):
    return ENV.from_string(template).render(**values)


@pytest.mark.parametrize("killwords", [False, True])
def test_truncate_is_jinjas_on_random_text(killwords):
    rng = random.Random(11)
    for _ in range(3000):
        text = "".join(rng.choice(string.ascii_letters + "  ") for _ in range(rng.randint(0, 80)))
        length = rng.randint(3, 60)
        end = rng.choice(["...", "", "~"])
        expected = _render("{{ t | truncate(n, k, e) }}", t=text, n=length, k=killwords, e=end)
        assert mj.truncate(text, length, killwords, end) == expected, (text, length, end)


@pytest.mark.parametrize("value", [3, "3", "2.7", "-4", 2.9, None, "x", "", True, False, [], "1e3"])
def test_to_int_and_to_float_are_jinjas(value):
    assert mj.to_int(value) == int(_render("{{ v | int }}", v=value))
    assert mj.to_float(value) == float(_render("{{ v | float }}", v=value))


@pytest.mark.parametrize("value", ["yes", "No", " true ", "on", "1", "0", "", 1, 0, 1.0, True, False, None, "t", "y"])
def test_to_bool_is_ansibles(value):
    assert mj.to_bool(value) == to_bool(value)


def test_unique_keeps_order_and_takes_unhashable_items():
    assert mj.unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert mj.unique([{"a": 1}, {"a": 1}, [1], [1]]) == [{"a": 1}, [1]]
    assert mj.text(None) == "None" and mj.text((1, 2)) == "(1, 2)"
