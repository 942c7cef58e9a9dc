"""service.security: API keys and owners."""

import pytest

from service.errors import ApiError
from service.security import ANONYMOUS, authenticate, owner_of_key


def test_no_keys_means_anonymous():
    assert authenticate(None, []) == ANONYMOUS
    assert authenticate("Bearer anything", []) == ANONYMOUS


def test_owner_is_a_stable_digest_of_the_key():
    owner = authenticate("Bearer k2", ["k1", "k2"])
    assert owner == owner_of_key("k2") == authenticate("bearer  k2 ", ["k1", "k2"])
    assert "k2" not in owner.removeprefix("key-")
    assert owner != owner_of_key("k1")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Bearer k3", "invalid_api_key"),
        ("Token k1", "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
    ],
)
def test_refusals(header, code):
    with pytest.raises(ApiError) as caught:
        authenticate(header, ["k1"])
    assert caught.value.status_code == 401
    assert caught.value.code == code
    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}
