"""Cilium toFQDNs matchPattern semantics, and a matcher that stays fast on hostile patterns.

The table follows Cilium's policy language documentation (DNS based policies): `*` matches zero or more valid DNS
characters within one label and never a dot; `*.cilium.io` matches subdomains of cilium.io one level deep but not
cilium.io itself; `*` alone matches every name; `**.` in front of a label matches one or more subdomain labels.
"""

import time

import pytest

from ansible_collections.kubediag.egress.plugins.module_utils.cluster.netpol import _fqdn_pattern

DOCUMENTED = [
    ("*.cilium.io", "sub.cilium.io", True),
    ("*.cilium.io", "cilium.io", False),
    ("*.cilium.io", "a.b.cilium.io", False),
    ("sub*.cilium.io", "subdomain.cilium.io", True),
    ("sub*.cilium.io", "sub.cilium.io", True),
    ("sub*.cilium.io", "other.cilium.io", False),
    ("*cilium.io", "cilium.io", True),
    ("*cilium.io", "helloworldcilium.io", True),
    ("*cilium.io", "hello.cilium.io", False),
    ("*", "anything.example.com", True),
    ("**.cilium.io", "a.cilium.io", True),
    ("**.cilium.io", "a.b.c.cilium.io", True),
    ("**.cilium.io", "cilium.io", False),
    ("api.*.example.com", "api.eu.example.com", True),
    ("api.*.example.com", "api.eu.west.example.com", False),
    ("API.Example.COM", "api.example.com", True),
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "aXXbYY", False),
    ("*-svc", "my-svc", True),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), DOCUMENTED)
def test_match_pattern_semantics(pattern, name, expected):
    assert bool(_fqdn_pattern(pattern, "spec").fullmatch(name)) is expected


@pytest.mark.parametrize("stars", [9, 30])
def test_repeated_stars_do_not_backtrack(stars):
    pattern = _fqdn_pattern("a" + "*a" * stars + "b.example.com", "spec")
    name = "a" * 60 + ".example.com"  # never matches: the label has no b
    started = time.monotonic()
    assert not pattern.fullmatch(name)
    assert not _fqdn_pattern("*" * stars + "x", "spec").fullmatch("y" * 63)
    assert time.monotonic() - started < 0.1
