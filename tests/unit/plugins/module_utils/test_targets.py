"""Target parsing and validation: every accepted form, and every injection attempt rejected with the bad value named."""

from pathlib import Path

import pytest
import yaml

from ansible_collections.kubediag.egress.plugins.module_utils.probe.targets import (
    TargetError,
    parse_proxy_url,
    parse_targets,
    redact_userinfo,
    url_credentials,
    validate_host,
    validate_ip,
    validate_mtu_sizes,
    validate_timeout,
)

CASES = yaml.safe_load((Path(__file__).parent / "targets_cases" / "targets.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES["valid"], ids=lambda c: str(c["input"]))
def test_valid_target(case):
    (target,) = parse_targets([case["input"]])
    parsed = target.as_dict()
    for key, value in case["expect"].items():
        assert parsed[key] == value, f"{key}: expected {value!r}, got {parsed[key]!r}"


@pytest.mark.parametrize("case", CASES["invalid"], ids=lambda c: repr(c["input"]))
def test_invalid_target_names_the_bad_value(case):
    with pytest.raises(TargetError) as error:
        parse_targets([case["input"]])
    message = str(error.value)
    assert case["error"] in message
    assert message.startswith("targets[0]")


def test_duplicates_are_dropped_in_order():
    targets = parse_targets(["https://b.example.test/", "https://a.example.test/", "https://b.example.test/"])
    assert [t.host for t in targets] == ["b.example.test", "a.example.test"]


@pytest.mark.parametrize("value", [[], "https://a.example.test/", None, [f"https://h{i}.example.test/" for i in range(33)]])
def test_targets_must_be_a_bounded_list(value):
    with pytest.raises(TargetError, match="targets"):
        parse_targets(value)


def test_second_bad_target_is_named_by_index():
    with pytest.raises(TargetError, match=r"^targets\[1\]"):
        parse_targets(["https://ok.example.test/", "https://x;y/"])


@pytest.mark.parametrize(("value", "expected"), [("Example.TEST", "example.test"), ("[::1]", "::1"), ("10.0.0.001", None)])
def test_validate_host(value, expected):
    if expected is None:
        with pytest.raises(TargetError):
            validate_host(value)
    else:
        assert validate_host(value) == expected


@pytest.mark.parametrize(("value", "ok"), [("8.8.8.8", True), ("2001:db8::53", True), ("dns.google", False), ("8.8.8.8;id", False)])
def test_validate_ip(value, ok):
    if ok:
        assert validate_ip(value, "external_resolver") == value
    else:
        with pytest.raises(TargetError, match="external_resolver must be an IP address"):
            validate_ip(value, "external_resolver")


@pytest.mark.parametrize(("value", "expected"), [
    ("http://proxy.corp:3128", "proxy.corp:3128"), ("proxy.corp:8080", "proxy.corp:8080"), ("https://10.0.0.5:443/", "10.0.0.5:443"),
])
def test_proxy_urls(value, expected):
    assert parse_proxy_url(value, "HTTPS_PROXY").host_port == expected


@pytest.mark.parametrize("value", ["socks5://p:1080", "http://p:3128 ; id", "http://$(id):3128"])
def test_bad_proxy_urls(value):
    with pytest.raises(TargetError, match="HTTPS_PROXY"):
        parse_proxy_url(value, "HTTPS_PROXY")


def test_mtu_sizes_sorted_largest_first():
    assert validate_mtu_sizes([1280, 1500, 1400, 1500]) == [1500, 1400, 1280]


@pytest.mark.parametrize("value", [[], [1500, "1400"], [67], [True], list(range(1000, 1017))])
def test_bad_mtu_sizes(value):
    with pytest.raises(TargetError, match="mtu_sizes"):
        validate_mtu_sizes(value)


@pytest.mark.parametrize(("value", "ok"), [(1, True), (60, True), (0, False), (61, False), (True, False), ("5", False)])
def test_timeout(value, ok):
    if ok:
        assert validate_timeout(value) == value
    else:
        with pytest.raises(TargetError, match="timeout"):
            validate_timeout(value)


SECRET = "hunter2"  # noqa: S105 - a test value that must never show


@pytest.mark.parametrize("url", [
    f"https://bob:{SECRET}@api.example.test/", f"https://bob:{SECRET}$x@api.example.test/", f"https://bob:{SECRET}'@api.example.test/",
    f"https://bob:{SECRET}/p@api.example.test/", f"ftp://bob:{SECRET}@api.example.test/", f"https://bob:{SECRET}@[::1/",
    f"tcp://bob:{SECRET}@api.example.test:99999", f"https://bob:{SECRET}@api.example.test/a b",
])
def test_credentials_in_a_target_are_never_repeated(url):
    with pytest.raises(TargetError) as error:
        parse_targets([url])
    assert SECRET not in str(error.value) and "bob" not in str(error.value)
    assert "REDACTED@" in str(error.value)


@pytest.mark.parametrize("option", ["test_proxy", "echo_url"])
@pytest.mark.parametrize("url", [f"http://bob:{SECRET}@proxy.example.test:3128", f"bob:{SECRET}@proxy.example.test:3128",
                                 f"http://bob:{SECRET};@proxy.example.test:3128", f"gopher://bob:{SECRET}@proxy.example.test"])
def test_credentials_in_test_proxy_or_echo_url_are_never_repeated(option, url):
    from ansible_collections.kubediag.egress.plugins.module_utils.probe.runner import build_options

    with pytest.raises(TargetError) as error:
        build_options(**{option: url})
    assert SECRET not in str(error.value) and "bob" not in str(error.value)
    assert str(error.value).startswith(option)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://u:p@proxy:3128", "http://REDACTED@proxy:3128"), ("u:p@proxy:3128", "REDACTED@proxy:3128"),
    ("http://u:p/q#r@proxy:3128/", "http://REDACTED@proxy:3128/"), ("http://proxy:3128", "http://proxy:3128"), ("", ""),
])
def test_redact_userinfo(url, expected):
    assert redact_userinfo(url) == expected


@pytest.mark.parametrize(("url", "expected"), [
    ("http://bob:pa%40ss@proxy:3128", {"bob:pa%40ss", "bob:pa@ss", "pa%40ss", "pa@ss"}),
    ("https://ghp_token@proxy:3128", {"ghp_token"}), ("proxy:3128", set()), (None, set()), ({"host": "x"}, set()),
])
def test_url_credentials_are_the_secret_parts_only(url, expected):
    assert url_credentials(url) == expected
