"""The legacy mobile site's pages for a synthetic graph: markup, cursors, hostile pages.

``MobileSite.following(screen_name, cursor)`` answers ``GET /{screen_name}/following``
(``?cursor=C`` for later pages) with the markup of the no-JavaScript mobile site:
``table.user-item`` rows (screen name in ``td.screenname a[name]``, ``span.username``
and the guest follow form), a ``div.w-button-more`` "Show more people" link carrying the
next cursor, ``table.profile-stats`` with the following count on the first page,
``div.protected``, ``body.account-suspended-page`` and an HTTP 404 page.

Bios are short and sometimes mention other accounts (linked or as plain ``@name``) that
the owner does not follow; display names carry HTML entities. A parser must take names
from the markup above, never from any ``@word`` or link on the page.

Cursors are opaque 19-digit numbers tied to the account; a cursor the site never gave
gets HTTP 400. Pages are built with plain string formatting: no template engine.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from friendscrape.simulator.graph import NAME_SPACE, AccountKind, SimAccount, SyntheticGraph

HTML_TYPE: Final = "text/html; charset=utf-8"
OFFHOST_REDIRECT_BASE: Final = "http://127.0.0.2:1"
"""Where the redirecting hostile account sends every request (another host)."""

HUGE_PAGE_BYTES: Final = 5 * 1024 * 1024

_CURSOR_BASE: Final = 1_600_000_000_000_000_000
_CURSOR_TAG_BITS: Final = 24
_T_CURSOR_SALT, _T_CURSOR_TAG, _T_PAGE = 40, 41, 42

_DOCTYPE: Final = (
    '<!DOCTYPE html PUBLIC "-//WAPFORUM//DTD XHTML Mobile 1.1//EN" '
    '"http://www.openmobilealliance.org/tech/DTD/xhtml-mobile11.dtd">\n'
)
_HEAD: Final = (
    _DOCTYPE + '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; '
    'charset=utf-8">\n<title>{title}</title>\n</head>\n'
)
_BRAND_BAR: Final = (
    '<div id="brand_bar"><table class="brand-bar"><tr><td class="left"><a href="/">'
    '<img alt="Twitter" src="/images/logo.png"></a></td></tr></table></div>\n'
)
_FOLLOW_BUTTON: Final = (
    '<span class="w-button-common w-button-follow"><input alt="Follow" '
    'src="/images/sprites/followplus.gif" type="image"></span>'
)
_VERIFIED: Final = '<img alt="Verified Account" class="profile-badge" src="/images/verified.gif">'
_MENTION_LINK: Final = (
    '<a href="/{m}" class="twitter-atreply dir-ltr" dir="ltr" data-screenname="{m}">@{m}</a>'
)


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """A word list written as text."""
    return tuple(text.split(sep))


# Display names and bios are HTML fragments, entities already in place.
_FIRST: Final = _words(
    "Ada Grace Linus Margaret Alan Barbara Ken Radia Frances Mary Wei Sofia Omar "
    "Amara Kofi Yuki Lucas Noor Ivan Chloe Priya Diego Tom Mia Zo&euml; Bj&ouml;rn "
    "Ren&eacute;e"
)
_LAST: Final = _words(
    "Lovelace Hopper Hamilton Turing Liskov Thompson Perlman Allen Okafor Tanaka "
    "Silva Khan Petrov Dubois Sharma Garc&iacute;a"
)
_TOPICS: Final = _words(
    "coffee, compilers, data, photography, cycling, jazz, chess, gardening, "
    "open source, astronomy, baking, maps, typography, birds",
    sep=", ",
)
_DISPLAY_FORMS: Final = (
    "{f} {l}",
    "{f} {l}",
    "{f} {l}",
    "{f}",
    "{f} &amp; {t}",
    "{f} &#x1F427;",
    "&lt;{f}&gt;",
    "{f} O&#39;{l}",
    "&quot;{f}&quot; {l}",
    "{f} {l} &#127881;",
)
_BIO_FORMS: Final = (
    "",
    "",
    "",
    "",
    "{T} &amp; {t2}",
    "Opinions my own. Retweets &lt;&gt; endorsements.",
    "Writer. Runner. {T} enthusiast.",
    "Working at {link}",
    "ex-@{m} &middot; {t}",
    "Tweets about {t} &amp; {t2}. Say hi to {link}",
    "\U0001f4cd Somewhere, {l}",
    "cc @{m} &quot;{t}&quot;",
)


@dataclass(frozen=True, slots=True)
class SiteResponse:
    """What the site answers: HTTP status, headers and body."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", HTML_TYPE),)


def _thousands(count: int) -> str:
    return f"{count:,}"


class MobileSite:
    """The following pages of every account of ``graph``, ``page_size`` users a page."""

    def __init__(self, graph: SyntheticGraph, page_size: int = 20) -> None:
        if page_size < 1:
            msg = f"page_size must be at least 1, got {page_size}"
            raise ValueError(msg)
        self.graph = graph
        self.page_size = page_size
        self._huge: bytes | None = None
        self.not_found_response = SiteResponse(404, render_not_found().encode())
        self._suspended = SiteResponse(200, render_suspended().encode())
        self._bad_cursor = SiteResponse(400, render_bad_cursor().encode())

    # -- cursors ---------------------------------------------------------------------

    def cursor(self, account: SimAccount, page: int) -> str:
        """The opaque cursor of ``account``'s page number ``page`` (0 is the first)."""
        salt = self.graph.hash(_T_CURSOR_SALT, account.index) % (1 << 34)
        tag = self.graph.hash(_T_CURSOR_TAG, account.index ^ (page << 32)) % (1 << _CURSOR_TAG_BITS)
        return str(_CURSOR_BASE + ((salt + page) << _CURSOR_TAG_BITS | tag))

    def page_of(self, account: SimAccount, cursor: str) -> int | None:
        """The page number a cursor stands for, or None when the site never gave it."""
        if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 24:
            return None
        value = int(cursor) - _CURSOR_BASE
        if value < 0:
            return None
        salt = self.graph.hash(_T_CURSOR_SALT, account.index) % (1 << 34)
        page = (value >> _CURSOR_TAG_BITS) - salt
        if page < 1 or self.cursor(account, page) != cursor:
            return None
        return page

    # -- the site --------------------------------------------------------------------

    def following(self, screen_name: str, cursor: str | None) -> SiteResponse:
        """The answer to ``GET /{screen_name}/following[?cursor=cursor]``."""
        account = self.graph.account(screen_name)
        if account is None or account.kind in (AccountKind.NOT_FOUND, AccountKind.INVALID):
            return self.not_found_response
        kind = account.kind
        if kind is AccountKind.SUSPENDED:
            return self._suspended
        if kind is AccountKind.PROTECTED:
            return SiteResponse(200, self._protected(account).encode())
        if kind is AccountKind.OFFHOST_REDIRECT:
            query = f"?cursor={quote(cursor, safe='')}" if cursor is not None else ""
            location = f"{OFFHOST_REDIRECT_BASE}/{account.screen_name}/following{query}"
            return SiteResponse(302, b"", (("Location", location),))
        if kind is AccountKind.LOGIN_WALL:
            return SiteResponse(200, render_login_wall().encode())
        page = 0
        if cursor is not None:
            found = self.page_of(account, cursor)
            if found is None:
                return self._bad_cursor
            page = found
        return self._list_page(account, page)

    def _list_page(self, account: SimAccount, page: int) -> SiteResponse:
        size = self.page_size
        count = account.following_count
        kind = account.kind
        start = page * size
        if kind is AccountKind.EMPTY_PAGES:
            return SiteResponse(200, self.render_list(account, page, [], page + 1).encode())
        if kind is AccountKind.HUGE_BODY:
            return SiteResponse(200, self._huge_page(account))
        if start >= count and page > 0:
            return self._bad_cursor
        names = self.graph.listing(account, start, start + size)
        next_page: int | None = page + 1 if start + size < count else None
        if kind is AccountKind.CURSOR_LOOP and page >= 2:
            next_page = page - 1
        html = self.render_list(account, page, names, next_page)
        if kind is AccountKind.TRUNCATED and page == 1:
            return SiteResponse(200, _cut_mid_tag(html).encode())
        return SiteResponse(200, html.encode())

    def _huge_page(self, account: SimAccount) -> bytes:
        """A first page padded with one enormous bio, built once."""
        if self._huge is None:
            names = self.graph.listing(account, 0, self.page_size)
            html = self.render_list(account, 0, names, 1)
            filler = "All work and no play makes a very long bio. " * (HUGE_PAGE_BYTES // 44 + 1)
            marker = '<div class="bio">'
            cut = html.index(marker) + len(marker)
            self._huge = (html[:cut] + filler + html[cut:]).encode()
        return self._huge

    # -- markup ----------------------------------------------------------------------

    def render_list(
        self, owner: SimAccount, page: int, names: list[str], next_page: int | None
    ) -> str:
        """A list page of ``owner``'s following; the first page carries the profile."""
        name = owner.screen_name
        owner_full = self._display_name(self._profile_hash(name))
        parts = [
            _HEAD.format(title=f"People followed by {owner_full} (@{name})"),
            '<body class="users-following-page">\n<div id="container">\n',
        ]
        if page == 0:
            parts += [_BRAND_BAR, self._profile_header(owner, owner_full)]
        else:
            parts.append('<div id="main_content">\n')
        parts.append('<div class="user-list">\n')
        token = f"{self.graph.hash(_T_PAGE, owner.index ^ (page << 32)) & 0xFFFFFFFF:08x}"
        listed = self.graph.follows_index(owner)
        parts.extend(self._user_item(friend, token, listed) for friend in names)
        parts.append("</div>\n")
        if next_page is not None:
            parts.append(
                f'<div class="w-button-more"><a href="/{name}/following?cursor='
                f'{self.cursor(owner, next_page)}">Show more people</a></div>\n'
            )
        parts.append("</div>\n</div>\n</body>\n</html>\n")
        return "".join(parts)

    def _profile_header(self, owner: SimAccount, owner_full: str) -> str:
        """The first page's profile: name and counts, following count included."""
        name = owner.screen_name
        h = self.graph.hash(_T_PAGE, owner.index)
        tweets = _thousands(h % 90_000)
        following = _thousands(owner.following_count)
        followers = _thousands((h >> 20) % 2_000_000 // ((h >> 40) % 500 + 1))
        return (
            '<div id="main_content">\n<div class="profile">\n<div class="user-header">\n'
            '<table class="profile-details">\n<tr><td class="user-info">'
            f'<div class="fullname">{owner_full}</div><span class="screen-name">{name}'
            "</span></td></tr>\n</table>\n"
            '<table class="profile-stats">\n<tr>\n'
            f'<td class="stat"><a href="/{name}"><div class="statnum">{tweets}</div>'
            '<div class="statlabel"> Tweets </div></a></td>\n'
            f'<td class="stat"><a href="/{name}/following"><div class="statnum">{following}'
            '</div><div class="statlabel"> Following </div></a></td>\n'
            f'<td class="stat stat-last"><a href="/{name}/followers"><div class="statnum">'
            f'{followers}</div><div class="statlabel"> Followers </div></a></td>\n'
            "</tr>\n</table>\n</div>\n</div>\n"
        )

    def _user_item(self, name: str, token: str, listed: Callable[[int], bool]) -> str:
        h = self._profile_hash(name)
        full = self._display_name(h)
        badge = _VERIFIED if h % 23 == 0 else ""
        bio_form = _BIO_FORMS[(h >> 12) % len(_BIO_FORMS)]
        bio = ""
        if bio_form:
            mention = ""
            if "{m}" in bio_form or "{link}" in bio_form:
                mention = self._mention(h, listed)
            text = bio_form.format(
                T=_TOPICS[(h >> 16) % len(_TOPICS)].capitalize(),
                t=_TOPICS[(h >> 16) % len(_TOPICS)],
                t2=_TOPICS[(h >> 20) % len(_TOPICS)],
                l=_LAST[(h >> 24) % len(_LAST)],
                m=mention,
                link=_MENTION_LINK.format(m=mention) if mention else "",
            )
            bio = f'<div class="dir-ltr" dir="ltr">{text}</div>'
        return (
            '<table class="user-item">\n<tr>\n'
            f'<td class="avatar" rowspan="2"><a href="/{name}"><img alt="{full}" '
            'src="/images/avatar_normal.png"></a></td>\n'
            f'<td class="info fifty screenname"><a name="{name}"></a><a href="/{name}">'
            f'<strong class="fullname">{full}</strong>{badge}<span class="username">'
            f"<span>@</span>{name}</span></a></td>\n"
            f'<td class="info fifty"><form action="/i/guest/follow/{name}" method="post">'
            '<span class="m2-auth-token"><input name="authenticity_token" type="hidden" '
            f'value="{token}"></span>{_FOLLOW_BUTTON}</form></td>\n'
            f'</tr>\n<tr><td class="info" colspan="2"><div class="bio">{bio}</div></td></tr>\n'
            "</table>\n"
        )

    def _mention(self, h: int, listed: Callable[[int], bool]) -> str:
        """A screen name to mention in a bio, one the page's owner does not follow."""
        n = self.graph.hash(_T_PAGE, h) % NAME_SPACE
        while listed(n):
            n = (n + 1) % NAME_SPACE
        return self.graph.name_of(n)

    def _profile_hash(self, name: str) -> int:
        """The seed of a name's display name and bio (the same on every page)."""
        return zlib.crc32(name.encode()) ^ self.graph.key

    @staticmethod
    def _display_name(h: int) -> str:
        form = _DISPLAY_FORMS[h % len(_DISPLAY_FORMS)]
        return form.format(
            f=_FIRST[(h >> 4) % len(_FIRST)],
            l=_LAST[(h >> 9) % len(_LAST)],
            t=_TOPICS[(h >> 14) % len(_TOPICS)],
        )

    def _protected(self, account: SimAccount) -> str:
        name = account.screen_name
        full = self._display_name(self._profile_hash(name))
        return (
            _HEAD.format(title=f"{full} (@{name})")
            + '<body class="users-following-page">\n<div id="container">\n'
            '<div id="main_content">\n<div class="profile">\n'
            '<div class="user-header"><table class="profile-details"><tr><td class="user-info">'
            f'<div class="fullname">{full}</div><span class="screen-name">{name}</span>'
            "</td></tr></table></div>\n"
            '<div class="protected">\n'
            '<div class="title">This account\'s Tweets are protected.</div>\n'
            f'<div class="subtitle">Only confirmed followers have access to @{name}\'s Tweets'
            " and complete profile.</div>\n</div>\n</div>\n</div>\n</div>\n</body>\n</html>\n"
        )


def _cut_mid_tag(html: str) -> str:
    """The page cut inside a tag a little past its middle, as a dropped response would be."""
    middle = len(html) * 3 // 5
    tag_start = html.index("<table", middle)
    return html[: tag_start + 12]


def render_not_found() -> str:
    """The page served with HTTP 404 for a screen name that does not exist."""
    return (
        _DOCTYPE + '<html>\n<head><meta http-equiv="Content-Type" content="text/html; '
        'charset=utf-8"><title>Twitter</title></head>\n<body class="not-found-page">\n'
        '<div id="container"><div id="main_content"><div class="system">Sorry, that page '
        "doesn't exist</div></div></div>\n</body>\n</html>\n"
    )


def render_suspended() -> str:
    """The page of a suspended account."""
    return (
        _DOCTYPE + '<html>\n<head><meta http-equiv="Content-Type" content="text/html; '
        'charset=utf-8"><title>Account Suspended</title></head>\n'
        '<body class="account-suspended-page">\n<div id="container"><div id="main_content">'
        '<div class="system"><div class="title">Account suspended</div><div class="body">'
        "This account has been suspended.</div></div></div></div>\n</body>\n</html>\n"
    )


def render_bad_cursor() -> str:
    """The page served with HTTP 400 for a cursor the site never gave."""
    return (
        _DOCTYPE + '<html>\n<head><meta http-equiv="Content-Type" content="text/html; '
        'charset=utf-8"><title>Twitter</title></head>\n<body class="error-page">\n'
        '<div id="container"><div id="main_content"><div class="system">Something went '
        "wrong. Please try again.</div></div></div>\n</body>\n</html>\n"
    )


def render_login_wall() -> str:
    """A 200 page asking to log in: neither a list nor an account state."""
    return (
        _HEAD.format(title="Login on Twitter")
        + '<body class="login-page">\n<div id="container"><div id="main_content">\n'
        '<div class="signin-header">Log in to Twitter</div>\n'
        '<form action="/sessions" method="post" class="signin-form">'
        '<input name="session[username_or_email]" type="text">'
        '<input name="session[password]" type="password">'
        '<input type="submit" value="Log in"></form>\n'
        '<div class="signup">New to Twitter? <a href="/signup">Sign up</a></div>\n'
        "</div></div>\n</body>\n</html>\n"
    )
