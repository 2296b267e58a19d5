"""Property tests: whatever the bytes, the twitter-mobile parser returns a Page or ParseError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from friendscrape.errors import ParseError
from friendscrape.models import Page, Status
from friendscrape.parse.twitter_mobile import is_valid_screen_name, parse_following_page

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twitter-mobile"
SAMPLES = tuple(path.read_bytes() for path in sorted(FIXTURES.glob("*.html")))
URLS = ("", "http://127.0.0.1:1/ada_example/following", "/x/following?cursor=1%20&cursor=")
STATUSES = st.sampled_from([200, 200, 200, 404, 500, 302])

# Pieces of the site's markup, so the generated documents reach the parser's deeper paths.
TOKENS = (
    "<html>",
    "</html>",
    "<body>",
    '<body class="account-suspended-page">',
    "</body>",
    '<div class="user-list">',
    '<table class="user-item">',
    "</table>",
    '<td class="screenname">',
    "<td>",
    "</td>",
    '<a name="grace_h">',
    '<a name="',
    "<a>",
    "</a>",
    '<span class="username">@grace_h</span>',
    '<form action="/i/guest/follow/',
    '<div class="w-button-more"><a href="?cursor=',
    '<table class="profile-stats"><td><a href="/x/following"><div class="statnum">',
    '<div class="protected">',
    '<table class="profile-details"><span class="screen-name">',
    "</div>",
    "1,024",
    "grace_h",
    '"',
    ">",
    "<",
    "&amp;",
    "&#x0;",
    "&#64;",
    "<!--",
    "-->",
    "\x00",
    "\ufffd",
    " ",
    "\n",
)
HTMLISH = st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), max_size=60).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
)


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    """A sample page with a few slices deleted, replaced, duplicated or inserted."""
    body = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(body)))
        end = draw(st.integers(start, min(len(body), start + 200)))
        op = draw(st.sampled_from(["delete", "replace", "duplicate", "insert"]))
        if op == "delete":
            del body[start:end]
        elif op == "replace":
            body[start:end] = draw(st.binary(max_size=20))
        elif op == "duplicate":
            body[end:end] = body[start:end]
        else:
            body[start:start] = draw(st.sampled_from(TOKENS)).encode()
    return bytes(body)


def check_never_raises_anything_else(body: bytes, status: int, url: str) -> None:
    """The property: a Page with only valid names, or a ParseError."""
    error: ParseError | None = None
    try:
        page = parse_following_page(body, status=status, url=url)
    except ParseError as exc:
        error = exc
    if error is not None:
        assert str(error)
        assert error.url == url
        return
    assert isinstance(page, Page)
    assert all(is_valid_screen_name(name) for name in page.names)
    if page.status is not Status.OK:
        assert page.names == ()
        assert page.next_cursor is None


FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(body=st.binary(max_size=3000), status=STATUSES, url=st.sampled_from(URLS))
def test_binary(body: bytes, status: int, url: str) -> None:
    check_never_raises_anything_else(body, status, url)


@FUZZ
@given(body=HTMLISH, status=STATUSES, url=st.sampled_from(URLS))
def test_html_like(body: bytes, status: int, url: str) -> None:
    check_never_raises_anything_else(body, status, url)


@FUZZ
@given(body=mutated_samples(), url=st.sampled_from(URLS))
def test_mutated_samples(body: bytes, url: str) -> None:
    check_never_raises_anything_else(body, 200, url)
