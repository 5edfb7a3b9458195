"""Classify user-supplied Douyin/TikTok URLs before a job exists.

The browser never loads what the user typed: it loads ``canonical_url``, rebuilt from a fixed
platform host and pieces checked against tight alphabets (ids are digits, handles, sec_uids and
short codes are ``[A-Za-z0-9._-]``). So a hostile host, port, userinfo or query cannot reach the
browser even if a check here were too lenient; the checks exist to tell the user what to fix.
Pure functions, no network: short links stay ``kind="short"`` and the browser resolves them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from scraper.errors import InvalidUrl, WrongKind, WrongPlatform
from scraper.hosts import Platform, platform_of_host, registrable_match

Kind = Literal["video", "photo", "user", "short"]
Family = Literal["video", "channel"]

MAX_URL_LENGTH = 2048
#: A pasted share text may wrap the URL in a few lines of caption, but no more than this.
MAX_TEXT_LENGTH = 4 * MAX_URL_LENGTH

PLATFORM_NAMES: dict[Platform, str] = {"douyin": "Douyin", "tiktok": "TikTok"}
KIND_NAMES: dict[Kind, str] = {
    "video": "video",
    "photo": "photo post",
    "user": "profile",
    "short": "short link",
}


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """A classified platform URL; ``canonical_url`` is the only URL the browser should load.

    ``id`` is the item id (digits) of a ``video`` or ``photo``. ``user`` is the profile's id for a
    ``user`` (a Douyin sec_uid, a TikTok handle) and, for a TikTok item, the author's handle when
    the URL names one. A TikTok item URL whose ``@`` part is empty, our ``_`` placeholder or a
    sec_uid (``/@MS4wLjABAAAA.../video/<id>``) has ``user=None``: a sec_uid is not a handle, so it
    cannot go into the canonical ``/@<handle>/video/<id>``, which uses ``_`` instead (TikTok opens
    the item by its id). Douyin items never keep a user.
    """

    platform: Platform
    kind: Kind
    id: str | None
    user: str | None
    canonical_url: str

    def to_json(self) -> dict[str, str | None]:
        """The shape printed by ``shortvid resolve``."""
        return asdict(self)


# --- URL forms ------------------------------------------------------------------------------------

_DY_WEB = frozenset({"www.douyin.com", "douyin.com"})
_DY_SHARE = _DY_WEB | {"m.douyin.com", "www.iesdouyin.com", "iesdouyin.com", "m.iesdouyin.com"}
_DY_SHORT = frozenset({"v.douyin.com"})
_TT_WEB = frozenset({"www.tiktok.com", "tiktok.com", "m.tiktok.com"})
#: tiktokv.com is TikTok's share domain: its item links are mapped to www.tiktok.com, so the
#: browser never loads a tiktokv.com page (yt-dlp yt_dlp/extractor/tiktok.py TikTokIE,
#: gallery-dl gallery_dl/extractor/tiktok.py BASE_PATTERN ``(?:www\.)?tiktokv?\.com``).
_TT_SHARE = _TT_WEB | {"www.tiktokv.com", "tiktokv.com"}
_TT_SHORT = frozenset({"vm.tiktok.com", "vt.tiktok.com"})

_DY_VIDEO = "https://www.douyin.com/video/{id}"
_DY_NOTE = "https://www.douyin.com/note/{id}"
_DY_USER = "https://www.douyin.com/user/{user}"
_TT_VIDEO = "https://www.tiktok.com/@{handle}/video/{id}"
_TT_PHOTO = "https://www.tiktok.com/@{handle}/photo/{id}"
_TT_USER = "https://www.tiktok.com/@{handle}"

#: Any www.douyin.com page can open an item in a modal (``/jingxuan``, ``/discover``, ``/follow``,
#: ``/channel/<id>``, ``/search/<q>``, ``/user/<sec_uid>``, ``/user/self`` ...): ``?modal_id=<id>``
#: names the item (a sec_uid in the path is the page's owner, not necessarily the author, so it is
#: not kept). Evil0ctal/Douyin_TikTok_Download_API crawlers/douyin/web/utils.py reads
#: ``modal_id=([0-9]+)`` from any douyin.com URL.
_DY_MODAL_PAGES = r"/(?s:.*)"

#: A sec_uid where a TikTok URL puts the handle. yt-dlp TikTokUserIE and gallery-dl
#: _extract_sec_uid match exactly ``MS4wLjABAAAA[\w-]{64}``; any long enough run of the sec_uid
#: alphabet after the ``MS4wLjAB`` prefix counts here (no handle looks like that).
_SEC_UID = re.compile(r"MS4wLjAB[A-Za-z0-9_-]{16,120}")


@dataclass(frozen=True, slots=True)
class _Form:
    """One URL form: on these hosts, a path matching ``path`` is an item/profile/short link."""

    platform: Platform
    hosts: frozenset[str]
    path: re.Pattern[str]  # fullmatch on the percent-decoded path; groups id / user / code
    kind: Kind
    canonical: str  # format string over id, user, handle ("_" when unknown), code, host
    # (a TikTok item's ``owner`` group is its ``/@<owner>/`` part: a handle, a sec_uid or empty)
    query_id: str | None = None  # the item id is this query parameter (the form needs it)


def _form(
    platform: Platform,
    hosts: frozenset[str],
    path: str,
    kind: Kind,
    canonical: str,
    query_id: str | None = None,
) -> _Form:
    return _Form(platform, hosts, re.compile(path), kind, canonical, query_id)


#: First match wins: item paths keep their meaning, then a modal_id on any other page is the item,
#: then the profile forms.
_FORMS: tuple[_Form, ...] = (
    _form("douyin", _DY_WEB, r"/video/(?P<id>[^/]+)/?", "video", _DY_VIDEO),
    _form("douyin", _DY_WEB, r"/note/(?P<id>[^/]+)/?", "photo", _DY_NOTE),
    _form("douyin", _DY_SHARE, r"/share/video/(?P<id>[^/]+)/?", "video", _DY_VIDEO),
    _form("douyin", _DY_SHARE, r"/share/(?:note|slides)/(?P<id>[^/]+)/?", "photo", _DY_NOTE),
    _form("douyin", _DY_WEB, _DY_MODAL_PAGES, "video", _DY_VIDEO, query_id="modal_id"),
    _form("douyin", _DY_SHARE, r"/share/user/(?P<user>[^/]+)/?", "user", _DY_USER),
    _form("douyin", _DY_WEB, r"/user/(?!self/?$)(?P<user>[^/]+)/?", "user", _DY_USER),
    # Share texts often put a tail right after the code (".../iRNBho6u/3.05"): ignore it.
    _form("douyin", _DY_SHORT, r"/(?P<code>[^/]+)(?:/.*)?", "short", "https://v.douyin.com/{code}/"),
    # "/@/video/<id>" and "/@<sec_uid>/video/<id>": yt-dlp TikTokIE ``@(?P<user_id>[\w\.-]+)?/video``.
    _form("tiktok", _TT_SHARE, r"/@(?P<owner>[^/]*)/video/(?P<id>[^/]+)/?", "video", _TT_VIDEO),
    _form("tiktok", _TT_SHARE, r"/@(?P<owner>[^/]*)/photo/(?P<id>[^/]+)/?", "photo", _TT_PHOTO),
    # yt-dlp TikTokIE ``www\.tiktokv?\.com/share/video``;
    # gallery-dl TiktokPostExtractor ``share/(?:phot|vide)o``.
    _form("tiktok", _TT_SHARE, r"/share/video/(?P<id>[^/]+)/?", "video", _TT_VIDEO),
    _form("tiktok", _TT_SHARE, r"/share/photo/(?P<id>[^/]+)/?", "photo", _TT_PHOTO),
    # A sec_uid profile falls through to its own message (_UNSUPPORTED_PATHS).
    _form("tiktok", _TT_WEB, r"/@(?!MS4wLjAB)(?P<user>[^/]+)/?", "user", _TT_USER),
    _form("tiktok", _TT_WEB, r"/v/(?P<id>[^/]+?)(?:\.html)?/?", "video", _TT_VIDEO),
    _form("tiktok", _TT_WEB, r"/embed(?:/v2)?/(?P<id>[^/]+)/?", "video", _TT_VIDEO),
    _form("tiktok", _TT_WEB, r"/t/(?P<code>[^/]+)/?", "short", "https://www.tiktok.com/t/{code}/"),
    _form("tiktok", _TT_SHORT, r"/(?P<code>[^/]+)/?", "short", "https://{host}/{code}/"),
)

_PAGE_HOSTS: frozenset[str] = frozenset().union(*(form.hosts for form in _FORMS))

#: Platform-owned domains whose pages we do not scrape, with the message to show.
_UNSUPPORTED_DOMAINS: dict[str, str] = {
    "ixigua.com": "Xigua (ixigua.com) videos are not supported; paste a Douyin or TikTok URL",
}
_LIVE = "live streams are not supported; paste a video, photo post or profile link"
#: Hosts that serve only live rooms: live.douyin.com/<web_rid or Douyin id> (ihmily/DouyinLiveRecorder
#: README); webcast.amemv.com, whose /douyin/webcast/reflow/<room_id> is Douyin's live share page
#: (Evil0ctal/Douyin_TikTok_Download_API crawlers/douyin/web/utils.py WebCastIdFetcher); and
#: webcast.tiktok.com, TikTok LIVE's host.
_LIVE_HOSTS = frozenset({"live.douyin.com", "webcast.amemv.com", "webcast.tiktok.com"})
_UNSUPPORTED_PATHS: tuple[tuple[frozenset[str], re.Pattern[str], str], ...] = (
    # www.douyin.com/root/live/<id>, /follow/live/<id>?anchor_id=... (WebCastIdFetcher ``live/([^/?]*)``).
    (_DY_WEB, re.compile(r"/(?:(?:root|follow)/)?live(?:/.*)?", re.DOTALL), _LIVE),
    # tiktok.com/@<handle>/live, m.tiktok.com/share/live/<room_id> (yt-dlp TikTokLiveIE); /live: the feed.
    (_TT_WEB, re.compile(r"/@[^/]*/live/?|/(?:share/)?live(?:/.*)?", re.DOTALL), _LIVE),
    (
        _TT_WEB,
        re.compile(r"/@MS4wLjAB[^/]*/?"),
        "this TikTok profile link names a sec_uid (MS4wLjAB...), not a handle; "
        "paste the profile's https://www.tiktok.com/@handle link",
    ),
    (
        _DY_WEB,
        re.compile(r"/user/self/?"),
        "douyin.com/user/self is whoever is logged in, not a profile we can scrape; "
        "paste the profile's own URL (https://www.douyin.com/user/MS4wLjAB...)",
    ),
    (
        _DY_SHARE,
        re.compile(r"/xg/video/[^/]+/?"),
        "Xigua videos are not supported; paste a Douyin or TikTok URL",
    ),
)

#: Alphabets for the pieces that go into canonical URLs, with what to fix when one is wrong.
_FIELDS: dict[tuple[Platform | None, str], tuple[re.Pattern[str], str]] = {
    (None, "id"): (re.compile(r"[0-9]{5,25}"), "the item id must be 5-25 digits"),
    (None, "code"): (
        re.compile(r"[A-Za-z0-9_-]{3,32}"),
        "the short-link code must be 3-32 letters, digits, '_' or '-'",
    ),
    ("douyin", "user"): (
        re.compile(r"[A-Za-z0-9_-]{10,128}"),
        "the profile id must be a sec_uid (MS4wLjAB..., letters, digits, '_' or '-')",
    ),
    ("tiktok", "user"): (
        re.compile(r"[A-Za-z0-9_.]{1,64}"),
        "a TikTok handle is letters, digits, '.' or '_'",
    ),
}

# --- Extracting the URL from the input -------------------------------------------------------------

#: A URL inside share text ends at whitespace, quotes, angle brackets or any non-ASCII (CJK) char.
#: (Case-insensitive for the scheme only: IGNORECASE would let the non-ASCII range fold onto ASCII.)
_URL_IN_TEXT = re.compile(r"(?i:https?)://[^\s\"'<>`\x00-\x1f\x7f-\U0010ffff]+")
_TRAILING = ".,;:!?)]}>'\"。，、；：！？）】」』》…"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//)?")
#: A bare ``host[:port]`` followed by a path (``tiktok.com/@x``): a user who skipped the scheme.
_BARE_HOST = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\.?(?::\d+)?(?:[/?#]|$)")
_HOST_CHARS = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def find_url(text: str) -> str:
    """The first http(s) URL in a pasted share text, without trailing punctuation.

    Share texts wrap the link in a caption and tails (``... https://v.douyin.com/iRNBho6u/ 07/20
    ZzG:/``); the URL ends at whitespace or the first CJK character.

    Raises:
        InvalidUrl: ``"no URL found in the text"``.
    """
    match = _URL_IN_TEXT.search(text) if isinstance(text, str) else None
    url = match.group(0).rstrip(_TRAILING) if match else ""
    if not _SCHEME.match(url) or url.endswith("//"):
        raise InvalidUrl("no URL found in the text")
    return url


def _candidate(text: object) -> str:
    """The one URL to classify: the input itself when it is one token, else the URL in it."""
    if not isinstance(text, str):
        raise InvalidUrl("the URL must be a string")
    stripped = text.strip()
    if not stripped:
        raise InvalidUrl("the URL is empty; paste a Douyin or TikTok link")
    if len(stripped) > MAX_TEXT_LENGTH:
        raise InvalidUrl(f"the text is too long; paste just the link (at most {MAX_URL_LENGTH} characters)")
    # An http(s) URL goes through find_url, which cuts share-text tails glued on without a space
    # ("…/video/123复制此链接"). Any other single token, or one whose host find_url would cut at a
    # non-ASCII letter, is classified whole, so a bad scheme or a look-alike host gets its own
    # message instead of "no URL found" or a truncated host.
    single = not any(ch.isspace() for ch in stripped)
    in_text = _URL_IN_TEXT.match(stripped)
    cut_in_host = (
        in_text is not None
        and in_text.end() < len(stripped)
        and not any(ch in "/?#" for ch in in_text.group(0).partition("://")[2])
    )
    if (
        single
        and (cut_in_host or not in_text)
        and (_SCHEME.match(stripped) or _BARE_HOST.match(stripped) or stripped.startswith("//"))
    ):
        candidate = stripped.rstrip(_TRAILING)
    else:
        try:
            candidate = find_url(stripped)
        except InvalidUrl:
            raise InvalidUrl(
                "no URL found in the text; paste the full link, e.g. "
                "https://www.tiktok.com/@user or https://v.douyin.com/<code>/"
            ) from None
    if len(candidate) > MAX_URL_LENGTH:
        raise InvalidUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    return candidate


def _absolute(candidate: str) -> str:
    """Add ``https:`` to a bare host/path; refuse every scheme but http(s)."""
    if candidate.startswith("//"):
        return "https:" + candidate
    if _BARE_HOST.match(candidate):
        return "https://" + candidate
    scheme = _SCHEME.match(candidate)  # _candidate let through only URL-shaped tokens
    name = scheme.group(1).lower() if scheme else ""
    if not scheme or name not in ("http", "https"):
        raise InvalidUrl(f"only http(s) links are accepted, not {name}:")
    if not scheme.group(2):
        raise InvalidUrl("malformed URL; it should start with https://")
    return candidate


def _host(url: str) -> tuple[str, str, str]:
    """``(host, path, query)`` of an absolute http(s) URL, refusing host tricks."""
    if _BAD_URL_CHARS.search(url):
        raise InvalidUrl("the URL contains spaces, control characters or backslashes; paste it unchanged")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced or misplaced bracket: "https://[::1", "https://host]/x"
        raise InvalidUrl("IP addresses are not accepted; paste a douyin.com or tiktok.com link") from None
    if "@" in parts.netloc:
        raise InvalidUrl("URLs with a user name or password (user@host) are not accepted")
    if "[" in parts.netloc or "]" in parts.netloc:
        raise InvalidUrl("IP addresses are not accepted; paste a douyin.com or tiktok.com link")
    try:
        port = parts.port
    except ValueError:
        raise InvalidUrl("the URL has an invalid port; remove the :port part") from None
    if port not in (None, 80, 443):
        raise InvalidUrl(f"port {port} is not accepted; remove the :{port} part")
    host = (parts.hostname or "").removesuffix(".")
    if not host:
        raise InvalidUrl("the URL has no host; paste a full link such as https://www.tiktok.com/@user")
    if not host.isascii():
        # Rejected, not IDNA-mapped: look-alike letters (fullwidth, Cyrillic) are a phishing tell.
        raise InvalidUrl(f"the host {host!r} has non-ASCII characters; platform hosts are plain ASCII")
    if _is_ip(host):
        raise InvalidUrl("IP addresses are not accepted; paste a douyin.com or tiktok.com link")
    if not _HOST_CHARS.fullmatch(host):
        raise InvalidUrl(f"the host {host!r} is malformed (percent-encoding or odd characters)")
    return host, unquote(parts.path) or "/", parts.query


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check(platform: Platform, field: str, value: str) -> str:
    """``value`` if it fits the field's alphabet, else InvalidUrl saying what is wrong."""
    pattern, message = _FIELDS.get((platform, field)) or _FIELDS[(None, field)]
    if not pattern.fullmatch(value):
        raise InvalidUrl(message)
    return value


def _item_handle(owner: str) -> str | None:
    """The handle in a TikTok item URL's ``/@<owner>/``; None when it names none.

    None for an empty owner (``/@/video/<id>``), our own placeholder (``/@_/video/<id>``) and a
    sec_uid (``/@MS4wLjABAAAA.../video/<id>``, which links built from API data carry).
    """
    if owner in ("", "_") or _SEC_UID.fullmatch(owner):
        return None
    return _check("tiktok", "user", owner)


def _match(platform: Platform, host: str, path: str, query: str) -> ParsedUrl | None:
    params = parse_qs(query)
    for form in _FORMS:
        found = form.path.fullmatch(path) if host in form.hosts else None
        if not found or (form.query_id and not params.get(form.query_id)):
            continue
        pieces = found.groupdict()
        owner = pieces.pop("owner", None)
        groups = {k: _check(platform, k, v) for k, v in pieces.items() if v is not None}
        if form.query_id:
            groups["id"] = _check(platform, "id", params[form.query_id][0])
        user = groups.get("user") if owner is None else _item_handle(owner)
        canonical = form.canonical.format(
            id=groups.get("id"), user=user, handle=user or "_", code=groups.get("code"), host=host
        )
        return ParsedUrl(platform, form.kind, groups.get("id"), user, canonical)
    return None


def classify(text: str) -> ParsedUrl:
    """Classify a URL, or a pasted share text containing one, before any job exists.

    Args:
        text: a URL (``https://``, ``http://`` or a bare ``tiktok.com/...``) or a share text.

    Returns:
        The platform, kind, ids and the canonical URL the browser should load.

    Raises:
        InvalidUrl: not a supported platform URL; the one-line message says what to fix.
    """
    candidate = _candidate(text)
    host, path, query = _host(_absolute(candidate))
    platform = platform_of_host(host)
    if platform is None:
        raise InvalidUrl(f"{host} is not a Douyin or TikTok host; paste a douyin.com or tiktok.com link")
    name = PLATFORM_NAMES[platform]
    for domain, message in _UNSUPPORTED_DOMAINS.items():
        if registrable_match(host, (domain,)):
            raise InvalidUrl(message, url=candidate)
    if host in _LIVE_HOSTS:
        raise InvalidUrl(_LIVE, url=candidate)
    if host not in _PAGE_HOSTS:
        raise InvalidUrl(
            f"{host} is a {name} media or API host; paste the post's page or share link", url=candidate
        )
    parsed = _match(platform, host, path, query)
    if parsed is not None:
        return parsed
    # Known pages we refuse get their own message; checked after the forms so that, say,
    # /user/self?modal_id=<id> still counts as the video it shows.
    for hosts, pattern, message in _UNSUPPORTED_PATHS:
        if host in hosts and pattern.fullmatch(path):
            raise InvalidUrl(message, url=candidate)
    raise InvalidUrl(
        f"this {name} link is not a video, photo or profile URL; paste a link to one post or one profile",
        url=candidate,
    )


# --- Route checks ---------------------------------------------------------------------------------

#: Kinds each route family accepts; short links fit both (the browser resolves them later).
FAMILY_KINDS: dict[str, frozenset[Kind]] = {
    "video": frozenset({"video", "photo", "short"}),
    "channel": frozenset({"user", "short"}),
}
_KIND_FAMILY: dict[Kind, Family] = {"video": "video", "photo": "video", "user": "channel"}

PARSE_ROUTES: dict[tuple[Platform, str], str] = {
    ("douyin", "video"): "/api/video/parse",
    ("douyin", "channel"): "/api/channel/videos",
    ("tiktok", "video"): "/api/tiktok/video/parse",
    ("tiktok", "channel"): "/api/tiktok/channel/videos",
}
DOWNLOAD_ROUTES: dict[tuple[Platform, str], str] = {
    ("douyin", "video"): "/api/video/download",
    ("douyin", "channel"): "/api/channel/download",
    ("tiktok", "video"): "/api/tiktok/video/download",
    ("tiktok", "channel"): "/api/tiktok/channel/download",
}


def require(
    parsed: ParsedUrl,
    *,
    platform: Platform,
    kinds: set[Kind] | frozenset[Kind],
    route_hint: dict[tuple[Platform, str], str] | None = None,
) -> ParsedUrl:
    """``parsed`` if the route (``platform``, ``kinds``) takes it, else an error naming the right route.

    The server passes its family's kinds (``FAMILY_KINDS["video"]``) and its action's route table
    (``PARSE_ROUTES`` by default, or ``DOWNLOAD_ROUTES``) as ``route_hint``; the route named in the
    message is the twin of the same action for the URL's platform and kind.

    Raises:
        WrongPlatform: ``"This is a TikTok URL; use POST /api/tiktok/video/parse"``.
        WrongKind: ``"This is a profile URL; use POST /api/channel/videos"``.
    """
    routes = route_hint or PARSE_ROUTES
    allowed = set(kinds) | ({"short"} if {"video", "user"} & set(kinds) else set())
    family = _KIND_FAMILY.get(parsed.kind) or ("video" if {"video", "photo"} & set(kinds) else "channel")
    if parsed.platform != platform:
        route = routes[(parsed.platform, family)]
        raise WrongPlatform(
            f"This is a {PLATFORM_NAMES[parsed.platform]} URL; use POST {route}", url=parsed.canonical_url
        )
    if parsed.kind not in allowed:
        route = routes[(platform, family)]
        raise WrongKind(
            f"This is a {KIND_NAMES[parsed.kind]} URL; use POST {route}", url=parsed.canonical_url
        )
    return parsed


def require_route(parsed: ParsedUrl, route: str) -> ParsedUrl:
    """``require`` for a route path of vendor-api.md (``/api/tiktok/video/parse`` …).

    Raises:
        KeyError: ``route`` is not one of the eight URL-taking routes.
    """
    for table in (PARSE_ROUTES, DOWNLOAD_ROUTES):
        for (platform, family), path in table.items():
            if path == route:
                return require(parsed, platform=platform, kinds=FAMILY_KINDS[family], route_hint=table)
    raise KeyError(route)
