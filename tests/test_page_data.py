"""Finding hydration JSON in page HTML: every layout variant we know of, and absence."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from scraper.errors import LayoutChanged
from scraper.page_data import (
    douyin_render_data,
    douyin_router_data,
    glued_json,
    tiktok_page_data,
    tiktok_sigi_state,
    tiktok_universal_data,
)

UNIVERSAL = (
    '{"__DEFAULT_SCOPE__":{"webapp.video-detail":{"statusCode":0,'
    '"itemInfo":{"itemStruct":{"id":"1","video":{"playAddr":"https:\\u002F\\u002Fv16.example\\u002Fv"}}}}}}'
)
PLAIN = "<html><head><title>TikTok - Make Your Day</title></head><body><div id=app></div></body></html>"


# --------------------------------------------------------------------------- TikTok


@pytest.mark.parametrize(
    "opening",
    [
        '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">',
        '<script type="application/json" id="__UNIVERSAL_DATA_FOR_REHYDRATION__">',
        "<script id='__UNIVERSAL_DATA_FOR_REHYDRATION__' type='application/json'>",
        '<SCRIPT nonce="x" id="__UNIVERSAL_DATA_FOR_REHYDRATION__">',
    ],
)
def test_universal_data_any_attribute_order(opening: str) -> None:
    other = '<script id="api-domains" type="application/json">{"a":1}</script>'
    html = f"<body>{other}{opening}{UNIVERSAL}</script></body>"
    data = tiktok_universal_data(html)
    assert data is not None
    scope = data["__DEFAULT_SCOPE__"]
    play = scope["webapp.video-detail"]["itemInfo"]["itemStruct"]["video"]["playAddr"]
    assert play == "https://v16.example/v"  # \u002F escapes decoded


def test_universal_data_absent() -> None:
    assert tiktok_universal_data(PLAIN) is None
    # a longer id that merely starts with the name is not the script
    assert tiktok_universal_data('<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__X">{}</script>') is None


def test_universal_data_broken_json_is_a_layout_change() -> None:
    html = '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__">{"__DEFAULT_SCOPE__":</script>'
    with pytest.raises(LayoutChanged, match="not valid JSON"):
        tiktok_universal_data(html)
    with pytest.raises(LayoutChanged, match="not a JSON object"):
        tiktok_universal_data('<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__">[1, 2]</script>')


def test_sigi_state_json_script() -> None:
    html = '<script id="SIGI_STATE" type="application/json">{"ItemModule":{"7":{"id":"7"}}}</script>'
    assert tiktok_sigi_state(html) == {"ItemModule": {"7": {"id": "7"}}}


def test_sigi_persisted_data_script() -> None:
    html = (
        '<script id="sigi-persisted-data">window[\'SIGI_STATE\']={"VideoPage":{"statusCode":0}};'
        "window['SIGI_RETRY']={\"x\":1}</script>"
    )
    assert tiktok_sigi_state(html) == {"VideoPage": {"statusCode": 0}}


def test_sigi_state_absent() -> None:
    assert tiktok_sigi_state(PLAIN) is None


def test_page_data_merges_every_tiktok_script_into_one_scope() -> None:
    """Readers look in one place: api-data and SIGI_STATE keys join the rehydration scope."""
    universal = (
        '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__">{"__DEFAULT_SCOPE__":{"webapp.a-b":{}}}</script>'
    )
    api = '<script id="api-data" type="application/json">{"videoDetail":{"statusCode":0}}</script>'
    sigi = '<script id="SIGI_STATE" type="application/json">{"ItemModule":{}}</script>'
    merged = tiktok_page_data(universal + api + sigi)
    assert merged == {
        "__DEFAULT_SCOPE__": {"webapp.a-b": {}, "videoDetail": {"statusCode": 0}, "ItemModule": {}}
    }
    assert tiktok_page_data(sigi) == {"__DEFAULT_SCOPE__": {"ItemModule": {}}}  # a SIGI-only page
    assert tiktok_page_data(universal) == {"__DEFAULT_SCOPE__": {"webapp.a-b": {}}}
    assert tiktok_page_data(PLAIN) is None


# --------------------------------------------------------------------------- Douyin _ROUTER_DATA

ROUTER = {
    "loaderData": {
        "video_layout": None,
        "video_(id)/page": {"videoInfoRes": {"item_list": [{"aweme_id": "7", "desc": "a/b </p>"}]}},
    },
    "errors": None,
}


def _escaped(data: object, *, indent: int | None = None) -> str:
    """JSON the way the share page writes it: ``/`` as ``\\u002F``, raw non-ASCII."""
    separators = (",", ":") if indent is None else None
    return json.dumps(data, ensure_ascii=False, indent=indent, separators=separators).replace("/", "\\u002F")


def test_router_data_minified_one_line() -> None:
    html = (
        '<script nonce="">window._SSR_DATA = {"data":{}}</script>'
        f'<script nonce="">window._ROUTER_DATA = {_escaped(ROUTER)}</script></body></html>'
    )
    assert '"video_(id)\\u002Fpage"' in html
    assert douyin_router_data(html) == ROUTER


def test_router_data_prettified_multi_line() -> None:
    html = f"<script nonce>\n      window._ROUTER_DATA = {_escaped(ROUTER, indent=2)}\n    </script>\n"
    data = douyin_router_data(html)
    assert data == ROUTER
    assert data is not None and "video_(id)/page" in data["loaderData"]


def test_router_data_with_trailing_statement() -> None:
    html = f"<script>window._ROUTER_DATA={_escaped(ROUTER)};window.x = 1;</script>"
    assert douyin_router_data(html) == ROUTER


def test_router_data_absent_or_not_an_object() -> None:
    assert douyin_router_data(PLAIN) is None
    with pytest.raises(LayoutChanged):
        douyin_router_data("<script>window._ROUTER_DATA = undefined</script>")
    with pytest.raises(LayoutChanged, match="not valid JSON"):
        douyin_router_data('<script>window._ROUTER_DATA = {"loaderData": </script>')


# --------------------------------------------------------------------------- Douyin RENDER_DATA


def test_render_data_is_url_decoded() -> None:
    payload = {
        "app": {
            "videoDetail": {"awemeId": "7", "desc": "夏天 & 100%", "video": {"playAddr": [{"src": "//v"}]}}
        }
    }
    encoded = quote(json.dumps(payload, ensure_ascii=False))
    assert encoded.startswith("%7B")
    html = f'<script id="RENDER_DATA" type="application/json">{encoded}</script>'
    assert douyin_render_data(html) == payload


def test_render_data_absent() -> None:
    assert douyin_render_data(PLAIN) is None
    assert douyin_render_data('<script id="RENDER_DATA_2">%7B%7D</script>') is None


def test_render_data_broken() -> None:
    with pytest.raises(LayoutChanged):
        douyin_render_data('<script id="RENDER_DATA" type="application/json">%7B%22app</script>')


def test_glued_json_blocks_with_chunk_sizes() -> None:
    """Douyin's search XHR body: chunk-size lines and JSON objects back to back."""
    body = '15\r\n{"status_code":0,"data":[{"a":"{"}]}\r\n1a\r\n{"b":2}\r\n0\r\n'
    assert glued_json(body) == [{"status_code": 0, "data": [{"a": "{"}]}, {"b": 2}]
    assert glued_json('{"a":1}{"b":2}') == [{"a": 1}, {"b": 2}]
    assert glued_json('{"a": {"b": 1}') is None  # cut short: not read as its inner fragment
    assert glued_json('{"a":1} trailing words') is None
    assert glued_json("   ") is None
