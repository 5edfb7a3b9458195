"""The fixture site's signature and cookie checks are total: hostile text is refused, never a 500.

CI once saw a forged X-Bogus whose truncated percent-escape decoded to U+FFFD; the check
passed it to ``hmac.compare_digest`` as ``str`` and the site answered 500 instead of the
real site's empty 200. The class is "any client-supplied text reaching a comparison", so
every validator is driven with arbitrary text here, valid signatures must still pass.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fixtures.signing import (
    SiteSecrets,
    a_bogus,
    a_bogus_valid,
    ac_signature,
    ac_signature_valid,
    make_ac_nonce,
    make_ttwid,
    same_text,
    ttwid_valid,
    waf_answered,
    x_bogus,
    x_bogus_valid,
)

SECRETS = SiteSecrets.generate()
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130 Safari/537.36"
#: Any code point, lone surrogates included, plus percent-escapes that decode to anything.
hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None, exclude_categories=())),
    st.lists(st.integers(0, 255)).map(lambda bs: "".join(f"%{b:02X}" for b in bs)),
)


@given(given_=hostile_text, expected=st.text())
def test_same_text_is_total_and_exact(given_: str, expected: str) -> None:
    assert same_text(given_, expected) is (bool(given_) and given_ == expected)


@given(value=hostile_text, query=st.text(max_size=40))
def test_trailing_signatures_refuse_hostile_values(value: str, query: str) -> None:
    prefix = f"aid=1&q={query}"
    # The value is refused unless it is exactly the right signature (it never is, by chance).
    assert not a_bogus_valid(SECRETS.ab_key, f"{prefix}&a_bogus={value}", UA)
    assert not x_bogus_valid(SECRETS.xb_key, f"{prefix}&X-Bogus={value}", UA)


@given(value=hostile_text, user_agent=hostile_text)
def test_cookie_checks_refuse_hostile_values(value: str, user_agent: str) -> None:
    nonce = make_ac_nonce()
    assert ac_signature_valid(SECRETS.ac_key, nonce, value, user_agent) is (
        bool(value) and value == ac_signature(SECRETS.ac_key, nonce, user_agent)
    )
    assert ttwid_valid(SECRETS.server_key, value) is False
    assert ttwid_valid(SECRETS.server_key, f"1%7Cid%7C1%7C{value}") is False
    assert waf_answered(SECRETS.server_key, value) is None


def test_genuine_values_still_pass() -> None:
    prefix = "aid=6383&sec_user_id=MS4w"
    nonce = make_ac_nonce()
    assert a_bogus_valid(SECRETS.ab_key, f"{prefix}&a_bogus={a_bogus(SECRETS.ab_key, prefix, UA)}", UA)
    assert x_bogus_valid(SECRETS.xb_key, f"{prefix}&X-Bogus={x_bogus(SECRETS.xb_key, prefix, UA)}", UA)
    assert ac_signature_valid(SECRETS.ac_key, nonce, ac_signature(SECRETS.ac_key, nonce, UA), UA)
    assert ttwid_valid(SECRETS.server_key, make_ttwid(SECRETS.server_key))
