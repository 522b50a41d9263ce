"""Pure parts of the server: strategic merge, JSON patch, merge patch, label and field selectors."""

import os

import pytest
import yaml
from kdlab.apiserver import patch, selectors

with open(os.path.join(os.path.dirname(__file__), "data", "patch_cases.yml"), encoding="utf-8") as handle:
    STRATEGIC_CASES = yaml.safe_load(handle)


@pytest.mark.parametrize("case", STRATEGIC_CASES, ids=[c["name"] for c in STRATEGIC_CASES])
def test_strategic_merge(case):
    assert patch.strategic_merge(case["document"], case["patch"]) == case["expected"]


@pytest.mark.parametrize(("operations", "expected"), [
    ([{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3], "b": {"c": "d"}}),
    ([{"op": "remove", "path": "/b/c"}], {"a": [1, 2], "b": {}}),
    ([{"op": "replace", "path": "/a/0", "value": 9}], {"a": [9, 2], "b": {"c": "d"}}),
    ([{"op": "move", "from": "/b/c", "path": "/e"}], {"a": [1, 2], "b": {}, "e": "d"}),
    ([{"op": "copy", "from": "/b", "path": "/f"}], {"a": [1, 2], "b": {"c": "d"}, "f": {"c": "d"}}),
    ([{"op": "test", "path": "/b/c", "value": "d"}, {"op": "add", "path": "/b/x~1y", "value": 1}], {"a": [1, 2], "b": {"c": "d", "x/y": 1}}),
])
def test_json_patch(operations, expected):
    assert patch.json_patch({"a": [1, 2], "b": {"c": "d"}}, operations) == expected


@pytest.mark.parametrize("operations", [
    [{"op": "remove", "path": "/missing"}],
    [{"op": "test", "path": "/b/c", "value": "other"}],
    [{"op": "add", "path": "no-slash", "value": 1}],
    {"op": "add"},
])
def test_json_patch_errors(operations):
    with pytest.raises(patch.PatchError):
        patch.json_patch({"a": [1, 2], "b": {"c": "d"}}, operations)


def test_merge_patch_replaces_lists_and_deletes_nulls():
    assert patch.merge_patch({"a": [1], "b": {"c": 1, "d": 2}}, {"a": [2], "b": {"c": None}}) == {"a": [2], "b": {"d": 2}}


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("tier notin (a,b)", {}, True),
    ("app", {"app": ""}, True),
    ("!app", {"app": "x"}, False),
    ("app=web,tier in (a),!canary", {"app": "web", "tier": "a"}, True),
])
def test_label_selectors(selector, labels, matches):
    assert selectors.matches_labels(selectors.parse_label_selector(selector), labels) is matches


@pytest.mark.parametrize("selector", ["app=(x", "a b c", "app in x"])
def test_bad_label_selectors(selector):
    with pytest.raises(selectors.SelectorError):
        selectors.parse_label_selector(selector)


def test_structured_selector_with_expressions():
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}
    assert selectors.matches_label_selector_object(selector, {"app": "web", "tier": "front"})
    assert not selectors.matches_label_selector_object(selector, {"app": "web", "tier": "db"})
    assert selectors.matches_label_selector_object({}, {"anything": "x"})
