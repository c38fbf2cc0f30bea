"""The plain rules behind links: share links made direct, numeric hosts, public addresses."""

from __future__ import annotations

import ipaddress

import pytest

from bot.errors import LinkNotAllowed, LinkPrivate
from bot.links import AddressPolicy, direct_url, host_address, is_public


@pytest.mark.parametrize(
    ("shared", "direct"),
    [
        (
            "https://drive.google.com/file/d/1AbC_d-9xYz/view?usp=sharing",
            "https://drive.google.com/uc?export=download&id=1AbC_d-9xYz",
        ),
        (
            "https://drive.google.com/open?id=1AbC_d-9xYz",
            "https://drive.google.com/uc?export=download&id=1AbC_d-9xYz",
        ),
        (
            "https://www.dropbox.com/s/abc123/talk.m4a?dl=0",
            "https://www.dropbox.com/s/abc123/talk.m4a?dl=1",
        ),
        (
            "https://www.dropbox.com/scl/fi/xyz/talk.mp3?rlkey=k&dl=0",
            "https://www.dropbox.com/scl/fi/xyz/talk.mp3?rlkey=k&dl=1",
        ),
        (
            "https://onedrive.live.com/redir?resid=ABC!123&authkey=!xyz",
            "https://onedrive.live.com/redir?resid=ABC!123&authkey=!xyz&download=1",
        ),
        ("https://example.com/files/talk.mp3", "https://example.com/files/talk.mp3"),
    ],
)
def test_share_links_become_direct_downloads(shared: str, direct: str) -> None:
    assert direct_url(shared) == direct


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_numeric_hosts_are_read_as_addresses(host: str, address: str) -> None:
    assert host_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "09.1.1.1", "1.2.3.4.5", "256.1.1.1"])
def test_names_are_not_addresses(host: str) -> None:
    assert host_address(host) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:8.8.8.8",  # IPv4-mapped: refused even when the IPv4 address is public
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    ],
)
def test_addresses_outside_the_public_internet_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_allowed_networks_open_only_themselves() -> None:
    policy = AddressPolicy(allowed=frozenset({ipaddress.ip_network("192.168.1.20/32")}))
    assert policy.allows(ipaddress.ip_address("192.168.1.20"))
    assert not policy.allows(ipaddress.ip_address("192.168.1.21"))


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.com/a.mp3", LinkNotAllowed),
        ("javascript://alert(1)", LinkNotAllowed),
        ("http:///nohost", LinkNotAllowed),
        ("https://example.com/" + "a" * 3000, LinkNotAllowed),
        ("http://0x7f.1/a.mp3", LinkPrivate),
        ("http://[::ffff:127.0.0.1]/a.mp3", LinkPrivate),
    ],
)
def test_check_url_refuses_before_any_connection(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        AddressPolicy().check_url(url)
