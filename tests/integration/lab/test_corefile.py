"""The lab CoreDNS's Corefile reader (pure: no root, no namespace)."""

import pytest
from kdlab.build import DEFAULT_COREFILE
from kdlab.services.coredns import CorefileError, parse_corefile


def test_default_corefile_forwards_to_the_resolv_conf_nameservers(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example.test\nnameserver 169.254.169.253\nnameserver 192.0.2.8\n")
    config = parse_corefile(DEFAULT_COREFILE % resolv)
    assert config["errors"] and not config["log"]
    assert config["kubernetes_zones"] == ["cluster.local.", "in-addr.arpa.", "ip6.arpa."]
    assert config["forwards"] == [(".", [("169.254.169.253", 53), ("192.0.2.8", 53)])]


@pytest.mark.parametrize(("forward", "expected"), [
    ("forward . 192.0.2.99", [(".", [("192.0.2.99", 53)])]),
    ("forward . dns://192.0.2.8:5353 192.0.2.53", [(".", [("192.0.2.8", 5353), ("192.0.2.53", 53)])]),
    ("forward example.test. 192.0.2.53\n    forward . 192.0.2.8", [("example.test.", [("192.0.2.53", 53)]), (".", [("192.0.2.8", 53)])]),
])
def test_forward_targets(forward, expected):
    assert parse_corefile(f".:53 {{\n    log\n    {forward}\n}}\n")["forwards"] == expected


@pytest.mark.parametrize(("text", "message"), [
    (".:53 {\n    frobnicate\n}\n", "Unknown directive 'frobnicate'"),
    (".:53 {\n    forward .\n}\n", "forward needs a zone and at least one upstream"),
    (".:53 {\n    forward . not-an-ip\n}\n", "not an upstream address: 'not-an-ip'"),
    (".:53 {\n    forward . /nonexistent/resolv.conf\n}\n", "cannot read /nonexistent/resolv.conf"),
    (".:53 {\n    errors\n", "unbalanced braces"),
    ("errors\n", "expected a server block"),
])
def test_bad_corefiles_are_refused_with_coredns_like_messages(text, message):
    with pytest.raises(CorefileError, match=message):
        parse_corefile(text)
