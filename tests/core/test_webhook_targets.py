"""core.webhook_targets: which webhook URLs and addresses the server refuses (SSRF)."""

import pytest

from core.webhook_targets import AllowList, TargetRefused, check_addresses, check_url

NONE = AllowList.parse([])


def _refused(call) -> str:
    with pytest.raises(TargetRefused) as caught:
        call()
    return str(caught.value)


def test_the_form_of_a_url():
    assert check_url("https://hooks.example.com/x", allow_http=False, allowed=NONE) == (
        "hooks.example.com",
        443,
    )
    assert check_url("http://example.com:8080/", allow_http=True, allowed=NONE) == (
        "example.com",
        8080,
    )
    assert "https" in _refused(
        lambda: check_url("http://example.com/", allow_http=False, allowed=NONE)
    )
    for bad in ("ftp://example.com/", "example.com/hook", "https://", "https://u:p@example.com/"):
        _refused(lambda bad=bad: check_url(bad, allow_http=True, allowed=NONE))


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1"],
)  # fmt: skip
def test_private_and_metadata_addresses_are_refused(address):
    host = f"[{address}]" if ":" in address else address
    _refused(lambda: check_url(f"https://{host}/hook", allow_http=False, allowed=NONE))
    named = lambda h, p: [address]  # noqa: E731 (a resolver answering that address)
    _refused(lambda: check_addresses("hooks.example.com", 443, NONE, named))


def test_a_name_is_checked_after_dns_and_every_address_counts():
    public = lambda h, p: ["93.184.216.34", "2606:2800:220:1::248"]  # noqa: E731
    assert check_addresses("example.com", 443, NONE, public) == public("", 0)
    rebinding = lambda h, p: ["93.184.216.34", "10.0.0.5"]  # noqa: E731
    assert "10.0.0.5" in _refused(lambda: check_addresses("example.com", 443, NONE, rebinding))

    def unknown(host, port):
        raise OSError("Name or service not known")

    assert "does not resolve" in _refused(
        lambda: check_addresses("nowhere.invalid", 443, NONE, unknown)
    )


def test_the_operator_allow_list():
    allowed = AllowList.parse(["127.0.0.0/8", "receiver.internal", " "])
    assert check_url("http://127.0.0.1:9000/", allow_http=False, allowed=allowed) == (
        "127.0.0.1",
        9000,
    )
    local = lambda h, p: ["127.0.0.1"]  # noqa: E731
    assert check_addresses("localhost", 9000, allowed, local) == ["127.0.0.1"]
    internal = lambda h, p: ["10.9.9.9"]  # noqa: E731
    assert check_addresses("receiver.internal", 443, allowed, internal) == ["10.9.9.9"]
    _refused(lambda: check_addresses("other.internal", 443, allowed, internal))
