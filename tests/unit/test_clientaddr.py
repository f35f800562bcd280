"""The caller's address: X-Forwarded-For counts only when a configured proxy sent it."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.platform.api.clientaddr import parse_networks, resolve

PROXIES = parse_networks("10.0.0.5, 172.16.0.0/12")


def test_a_forged_forwarded_for_from_a_client_is_ignored():
    assert resolve("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"


def test_without_trusted_proxies_the_peer_is_the_caller():
    assert resolve("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


def test_a_trusted_proxy_names_the_caller():
    assert resolve("10.0.0.5", ["198.51.100.1"], PROXIES) == "198.51.100.1"


def test_the_right_most_untrusted_hop_is_the_caller_not_what_the_client_prepended():
    # the client sent "X-Forwarded-For: 1.2.3.4"; the proxies appended the real address and their own
    assert resolve("10.0.0.5", ["1.2.3.4, 198.51.100.1, 172.16.3.3"], PROXIES) == "198.51.100.1"


def test_garbage_after_a_trusted_proxy_leaves_the_proxy():
    assert resolve("10.0.0.5", ["not-an-address"], PROXIES) == "10.0.0.5"


def test_a_malformed_proxy_setting_is_an_error():
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/33")


@given(st.ip_addresses(v=4).map(str), st.lists(st.ip_addresses().map(str), max_size=4))
def test_a_client_outside_the_proxies_is_counted_by_its_own_address_whatever_it_sends(peer, forged):
    if any(ipaddress.ip_address(peer) in network for network in PROXIES):
        return
    assert resolve(peer, [", ".join(forged)], PROXIES) == peer
