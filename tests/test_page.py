"""The fact-checkers' page at `/`, in a real browser against the real server.

Debian's chromium, driven by Playwright (its own browser download does not work on our machines),
opens the page served by gunicorn (started by the shipped start script, on a private copy of the
store). Every page a test opens is watched: it must load nothing but the page, its assets and /v1,
and log no script error nor Content-Security-Policy violation. axe-core, injected into the page,
checks accessibility.

The README's screenshots are taken by these tests:

    .venv/bin/python -m pytest tests/test_page.py --screenshots

rewrites docs/screenshots/*.png (small palette PNGs, see tests/screenshots.py).
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import screenshots
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright
from werkzeug.serving import make_server

from bench.server import launch_on_copy
from service.api import create_app
from service.api.runtime import Runtime
from service.config import REPO_ROOT, Settings
from service.store import SqliteStore

pytestmark = pytest.mark.slow

KEY = "page-key-0123456789abcdef"
OTHER_KEY = "page-key-2-0123456789abcdef"  # the rate-limit test's own allowance
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = REPO_ROOT / "tools" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO_ROOT / "docs" / "screenshots"
SYBIGA = 'Ukraine\'s foreign minister Andriy Sybiga spoke of "deep strategic interests between Russia and Syria."'
NEGATION_DROPPED = 'Ahmed al-Sharaa said: "We want Russia to leave Syria in the way that some wish."'
MIXED = (
    f"{SYBIGA} {NEGATION_DROPPED} Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant "
    "dialogue with the new Syrian authorities. The weather in Damascus was cold on Tuesday morning."
)
ARTICLE_QUOTE = "The pipeline to Latakia will carry gas again before the summer harvest"

expect.set_options(timeout=60_000)  # a check runs the model on a shared 2-core machine


# -- servers and browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: scripts/install.sh --dev installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(built_store: SqliteStore) -> Iterator[str]:
    """gunicorn with an API key; reads are open. Its store is a copy: articles added here stay here."""
    with launch_on_copy(built_store.path, QUOTES_WORKERS="1", QUOTES_API_KEYS=KEY) as launched:
        yield f"http://127.0.0.1:{launched.port}/"


@pytest.fixture(scope="module")
def keyed_server(built_store: SqliteStore) -> Iterator[str]:
    """gunicorn where every /v1 request needs a key, and reads are limited to 5 a minute per key."""
    with launch_on_copy(
        built_store.path,
        QUOTES_WORKERS="1",
        QUOTES_API_KEYS=f"{KEY},{OTHER_KEY}",
        QUOTES_READ_REQUIRES_KEY="true",
        QUOTES_RATE_LIMIT="5/minute",
    ) as launched:
        yield f"http://127.0.0.1:{launched.port}/"


@dataclass
class Loading:
    """The app on loopback whose model and store load only when the test says so."""

    base: str
    runtime: Runtime


@pytest.fixture()
def loading_server(built_store: SqliteStore) -> Iterator[Loading]:
    # gunicorn's launcher waits for ready workers; the 503 path needs a service that is truly still
    # loading, for as long as the test wants: the same app, served by werkzeug, loads on demand.
    settings = Settings.from_env({"QUOTES_STORE_PATH": str(built_store.path), "QUOTES_RATE_LIMIT": "off"})
    runtime = Runtime(settings)
    app = create_app(settings, runtime, load=False)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Loading(f"http://127.0.0.1:{httpd.server_port}/", runtime)
    finally:
        httpd.shutdown()
        thread.join(timeout=30)
        httpd.server_close()
        runtime.wait(120)  # a load still running would outlive the test


@dataclass
class Watch:
    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture()
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Opens the page of a server in a fresh context; on teardown, checks what the page did."""
    opened: list[tuple[Page, Watch]] = []

    def open_(base: str, width: int = 1000, height: int = 900, path: str = "") -> Page:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        watch = Watch(base)

        def console(message: ConsoleMessage) -> None:
            # Chromium logs every HTTP error status; the error tests cause them on purpose.
            if message.type == "error" and "the server responded with a status of" not in message.text:
                watch.errors.append(message.text)

        page.on("request", lambda request: watch.requests.append(request.url))
        page.on("console", console)
        page.on("pageerror", lambda error: watch.errors.append(f"uncaught: {error}"))
        opened.append((page, watch))
        page.goto(base + path)
        return page

    yield open_
    for page, _ in opened:
        page.context.close()
    for _, watch in opened:
        assert not watch.errors, watch.errors  # script errors and CSP violations ("Refused to ...")
        origin = urlsplit(watch.base)
        for url in watch.requests:
            parts = urlsplit(url)
            assert (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc), f"the page loaded {url}"
            assert parts.path == "/" or parts.path.startswith(("/static/", "/v1/")), f"the page called {url}"


@pytest.fixture()
def shoot(request: pytest.FixtureRequest, browser: Browser) -> Callable[..., None]:
    """shoot(locator_or_page, "name") writes docs/screenshots/name.png when pytest runs with --screenshots."""
    enabled = request.config.getoption("--screenshots")

    def take(target: Page | Locator, name: str, max_height: int = 1000) -> None:
        if not enabled:
            return
        if isinstance(target, Locator):  # the element with a margin, at most `max_height` tall
            box = target.bounding_box()
            assert box is not None, f"{name}: the element is not visible"
            width = target.page.viewport_size["width"] if target.page.viewport_size else box["width"]
            scroll_x, scroll_y = target.page.evaluate("[scrollX, scrollY]")  # the box is in viewport coordinates
            x, y = max(0, box["x"] + scroll_x - 12), max(0, box["y"] + scroll_y - 12)
            clip = {"x": x, "y": y, "width": min(box["width"] + 24, width - x)}
            clip["height"] = min(box["height"] + 24, max_height)
            png = target.page.screenshot(clip=clip, full_page=True, animations="disabled")
        else:
            png = target.screenshot(animations="disabled")
        screenshots.save(browser, png, SHOTS / f"{name}.png")

    return take


# -- helpers ------------------------------------------------------------------------------------------


def check(page: Page, text: str, speaker: str = "") -> None:
    page.get_by_label("Text to check").fill(text)
    page.get_by_label("Claimed speaker").fill(speaker)
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#result-h")).to_be_focused()


def use_key(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-state")).to_contain_text("A key is in use")


def axe_serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the browser's devtools, not a <script>
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def focused(page: Page) -> str:
    """The focused element, as `tag#id.class: text`."""
    return str(
        page.evaluate(
            "(() => { const e = document.activeElement; const text = (e.textContent || '').trim().slice(0, 60);"
            " return `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${text}`; })()"
        )
    )


def tab_to(page: Page, pattern: str, limit: int = 60) -> str:
    """Presses Tab until the focused element matches `pattern` (see `focused`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if re.search(pattern, now):
            return now
    pytest.fail(f"no element matching {pattern!r} within {limit} tabs")


def no_horizontal_scroll(page: Page) -> None:
    sizes = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], f"the page is {sizes[0]} px wide in a {sizes[1]} px window"


# -- the tests ------------------------------------------------------------------------------------------


def test_the_page_and_its_assets_carry_security_headers(server: str) -> None:
    origin = urlsplit(server)
    conn = http.client.HTTPConnection(origin.hostname or "", origin.port, timeout=30)

    def get(path: str) -> tuple[int, dict[str, str], str]:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()

    try:
        status, headers, html = get("/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        # Nothing inline, nothing from elsewhere: every asset is a file of the service.
        assert "<style" not in html and " style=" not in html and not re.search(r"<script>|<script [^>]*>[^<]", html)
        assets = re.findall(r'(?:src|href)="([^"#]+)"', html)
        assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
        for asset in assets:
            status, headers, _ = get(asset)
            assert status == 200 and headers["x-content-type-options"] == "nosniff", asset
        status, headers, body = get("/v1/info")
        assert status == 200 and headers["content-type"] == "application/json"
        assert headers["x-content-type-options"] == "nosniff" and headers["content-security-policy"].startswith(
            "default-src 'none'"
        )
        assert json.loads(body)["store"]["quotes"] > 0
    finally:
        conn.close()


def test_the_misattributed_sybiga_quote_is_impossible_to_miss(
    server: str, open_page: Callable[..., Page], shoot: Callable[..., None]
) -> None:
    page = open_page(server)
    check(page, SYBIGA)
    # A box above the text names the problem in words, not only in colour.
    attention = page.locator(".attention")
    expect(attention).to_contain_text("1 segment needs attention")
    expect(attention).to_contain_text("Misattributed")
    expect(attention).to_contain_text("the sources say Ahmed al-Sharaa said it")
    segment = page.locator("a.seg.is-misattributed")
    expect(segment).to_have_count(1)
    expect(segment).to_contain_text("deep strategic interests between Russia and Syria.")
    expect(segment.locator(".tag")).to_have_text("verbatim · ⚠ misattributed")
    expect(segment).to_have_accessible_name(re.compile(r"segment 1: verbatim, misattributed"))

    segment.click()
    detail = page.locator("#check-detail")
    expect(page.locator("#detail-h")).to_be_focused()
    verdict = detail.locator(".verdict-misattributed")
    expect(verdict).to_contain_text("Misattributed.")
    expect(verdict).to_contain_text("This text names Andriy Sybiga (“Ukraine's foreign minister Andriy Sybiga”)")
    expect(verdict).to_contain_text("Ahmed al-Sharaa: 2 sources, 2 mentions")
    expect(detail.locator(".similarity")).to_have_text("1.00")
    expect(detail.locator(".facts")).to_contain_text("verbatim")
    expect(detail.locator(".quote-text")).to_have_text("deep strategic interests between Russia and Syria.")
    sources = detail.locator(".sources > li")
    expect(sources).to_have_count(2)
    expect(sources.nth(0)).to_contain_text("The Moscow Times, 29 Jan 2025")  # earliest first
    expect(sources.nth(1)).to_contain_text("The Moscow Times, 12 Feb 2025")
    link = sources.nth(0).locator("a.out")
    expect(link).to_have_attribute("href", re.compile(r"^https://www\.themoscowtimes\.com/2025/01/29/"))
    expect(link).to_have_attribute("rel", re.compile("noreferrer"))
    shoot(page.locator("#check-result"), "check-misattributed")


def test_an_altered_quote_shows_its_flags_as_a_word_diff(
    server: str, open_page: Callable[..., Page], shoot: Callable[..., None]
) -> None:
    page = open_page(server)
    check(page, MIXED)
    expect(page.locator(".summary")).to_have_text("4 segments: 1 verbatim, 2 paraphrase, 1 unmatched.")
    expect(page.locator(".attention")).to_contain_text("2 segments need attention")
    segment = page.locator("a.seg.is-altered")
    expect(segment).to_have_count(1)
    expect(segment.locator(".tag")).to_contain_text("⚠ altered")
    expect(page.locator(".attention")).to_contain_text("Altered")
    segment.click()
    detail = page.locator("#check-detail")
    expect(detail.locator(".verdict-altered")).to_contain_text("Negation changed: The rendering drops a negation")
    # The reported wording's "not" is struck out in the diff, and says so to a screen reader.
    removed = detail.locator(".diff del")
    expect(removed.filter(has_text=re.compile(r"\bnot\b"))).to_have_count(1)
    expect(removed.filter(has_text=re.compile(r"\bnot\b"))).to_contain_text("[removed:")
    expect(detail.locator(".verdict-consistent")).to_contain_text("Ahmed al-Sharaa")
    shoot(page.locator("#check-result"), "check-altered")


def test_a_disputed_quote_shows_both_attributions_and_every_wording(
    server: str, open_page: Callable[..., Page], shoot: Callable[..., None]
) -> None:
    page = open_page(server)
    page.get_by_role("link", name="Disputed quotes").click()
    expect(page.locator("#disputed-h")).to_be_focused()
    items = page.locator("#view-disputed .quote-item")
    expect(items).to_have_count(2)
    items.filter(has_text="restoring relations must address past mistakes").get_by_role("link").click()
    view = page.locator("#view-quote")
    verdict = view.locator(".verdict-disputed")
    expect(verdict).to_contain_text(
        "The sources disagree on who said it: Syria's new leadership and Russian delegation"
    )
    expect(verdict.locator("li")).to_have_text(
        ["Syria's new leadership: 4 sources, 6 mentions", "Russian delegation: 1 source, 1 mention"]
    )
    wordings = view.locator(".wording")
    expect(wordings).to_have_count(7)
    other = view.locator(".wording.other-speaker")
    expect(other).to_have_count(1)
    expect(other).to_contain_text("Babel, undated")
    expect(other).to_contain_text("This source names Russian delegation, not Syria's new leadership.")
    expect(page).to_have_title("One quote, every wording · Who said it?")
    shoot(page.locator("#view-quote"), "quote-disputed", max_height=1500)  # down to the dissenting source


def test_speakers_with_their_quotes_and_the_search_box(server: str, open_page: Callable[..., Page]) -> None:
    page = open_page(server, path="#/speakers")
    view = page.locator("#view-speakers")
    expect(view).to_contain_text("Dmitry Peskov, Kremlin spokesman — 3 quotes")
    view.get_by_role("link", name="Dmitry Peskov").click()
    expect(page.locator("#speaker-h")).to_have_text("Dmitry Peskov")
    expect(page.locator("#view-speaker .quote-item")).to_have_count(3)

    page.get_by_role("link", name="Search quotes").click()
    page.get_by_label("Words in the quote").fill("dialogue")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#search-count")).to_contain_text("with the words “dialogue”")
    results = page.locator("#view-search .quote-item")
    expect(results.first).to_contain_text("dialogue")
    assert "#/search/dialogue" in page.url  # a search is a link that can be shared


def test_add_an_article_with_a_key_then_find_it(
    server: str, open_page: Callable[..., Page], shoot: Callable[..., None]
) -> None:
    page = open_page(server, path="#/add")
    form = page.locator("#add-form")
    page.get_by_label("Outlet").fill("Page Test Wire")
    page.get_by_label("Address (URL) of the article").fill("not a web address")
    page.get_by_label("Date published").fill("2025-03-04")
    page.get_by_label("Headline").fill("Gas to flow again")
    page.get_by_label("Text of the article").fill(
        f'"{ARTICLE_QUOTE}," Syrian energy minister Ghiath Diab told reporters in Damascus on Monday.'
    )
    # Without a key: 401, said in words, and the key field is where the focus goes.
    page.get_by_role("button", name="Add the article").click()
    expect(form.locator(".problem")).to_contain_text("A valid API key is required")
    expect(form.locator(".problem")).to_contain_text("Enter an API key in the API key field")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("API key")).to_be_focused()

    use_key(page, KEY)
    expect(page.get_by_label("API key")).to_have_value("")  # the field does not keep it either
    # With the key, the bad URL is a 422: its field highlighted with the reason, the focus on it.
    page.get_by_role("button", name="Add the article").click()
    url = page.get_by_label("Address (URL) of the article")
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(url).to_be_focused()
    expect(page.locator("#add-url-error")).to_have_text(re.compile(r"^Must be an absolute http\(s\) URL"))
    expect(url).to_have_accessible_description(re.compile("Must be an absolute http"))
    expect(form.locator(".problem")).to_contain_text("The service did not accept one field:")
    expect(form.locator(".problem li")).to_have_text(
        re.compile(r"^Address \(URL\) of the article: Must be an absolute http\(s\) URL")
    )
    shoot(page.locator("#view-add"), "add-article-error")

    url.fill("https://wire.example.org/2025/03/04/gas")
    page.get_by_role("button", name="Add the article").click()
    added = page.locator("#view-add .content")
    expect(page.locator("#added-h")).to_have_text("The article was added.")
    expect(url).not_to_have_attribute("aria-invalid", "true")
    expect(added).to_contain_text("1 new quote")
    expect(added.locator(".quote-item")).to_contain_text(ARTICLE_QUOTE)

    # Found by the search box, with its source.
    page.get_by_role("link", name="Search quotes").click()
    page.get_by_label("Words in the quote").fill("Latakia harvest")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#search-count")).to_contain_text("1 quote with the words")
    page.locator("#view-search .quote-item").get_by_role("link").click()
    wording = page.locator("#view-quote .wording")
    expect(wording).to_contain_text("Page Test Wire, 4 Mar 2025")
    expect(wording.get_by_role("link", name="Gas to flow again")).to_have_attribute(
        "href", "https://wire.example.org/2025/03/04/gas"
    )
    # The key was never written anywhere the browser keeps or shows.
    kept = page.evaluate(
        "[location.href, document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)]"
    )
    assert all(KEY not in value for value in kept), kept


@pytest.fixture(scope="module")
def corpus_quotes(built_store: SqliteStore) -> int:
    """How many canonical quotes the corpus makes (it follows the extraction)."""
    return int(built_store.info()["quotes"])


def test_reads_that_need_a_key_say_so_then_work_with_it(
    keyed_server: str, open_page: Callable[..., Page], corpus_quotes: int
) -> None:
    page = open_page(keyed_server)
    expect(page.locator("#status")).to_contain_text("This service asks for an API key for every request")
    check_form = page.locator("#check-form")
    page.get_by_label("Text to check").fill(SYBIGA)
    page.get_by_role("button", name="Check").click()
    expect(check_form.locator(".problem")).to_contain_text("A valid API key is required")

    use_key(page, KEY)
    expect(page.locator("#status")).to_be_empty()
    expect(page.locator("#store-info")).to_contain_text(f"The store holds {corpus_quotes} quotes from 5 articles")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("a.seg.is-misattributed")).to_have_count(1)
    page.get_by_role("link", name="Disputed quotes").click()
    expect(page.locator("#view-disputed .quote-item")).to_have_count(2)


def test_a_rate_limit_shows_the_wait(keyed_server: str, open_page: Callable[..., Page]) -> None:
    page = open_page(keyed_server)
    use_key(page, OTHER_KEY)
    page.get_by_label("Text to check").fill(SYBIGA)
    button = page.get_by_role("button", name="Check")
    problem = page.locator("#check-form .problem")
    for _ in range(5):  # the allowance: 5 a minute for this key
        button.click()
        expect(page.locator("#result-h")).to_be_focused()
        page.locator("#check-text").focus()
    button.click()
    expect(problem).to_contain_text("Rate limit exceeded: 5 per 1 minute for this endpoint")
    wait = problem.locator(".wait")
    expect(wait).to_have_text(re.compile(r"^\d+ seconds?$"))
    assert 0 < int(wait.inner_text().split()[0]) <= 60
    expect(button).to_be_disabled()  # until the wait is over


def test_while_the_service_loads_the_page_says_so_and_retries(
    loading_server: Loading, open_page: Callable[..., Page], corpus_quotes: int
) -> None:
    page = open_page(loading_server.base)
    status = page.locator("#status")
    expect(status).to_contain_text("The service is starting")
    expect(status).to_contain_text("the model and the store are still loading")
    expect(status).to_contain_text("Trying again in 5 seconds")
    page.get_by_label("Text to check").fill(SYBIGA)
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("button", name="Checking…")).to_be_disabled()
    loading_server.runtime.start()  # the load the page has been waiting for
    expect(page.locator("a.seg.is-misattributed")).to_have_count(1)
    expect(page.locator("#store-info")).to_contain_text(f"The store holds {corpus_quotes} quotes")
    expect(page.locator("#check-form .problem")).to_be_empty()


def test_everything_works_with_the_keyboard_alone(server: str, open_page: Callable[..., Page]) -> None:
    page = open_page(server)
    page.keyboard.press("Tab")
    assert focused(page).startswith("a#.skip:")
    page.keyboard.press("Enter")
    expect(page.locator("#check-h")).to_be_focused()
    tab_to(page, r"^textarea#check-text")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused field shows no focus ring"
    page.keyboard.type(SYBIGA)
    tab_to(page, r"^button#\.: Check$")
    page.keyboard.press("Enter")
    expect(page.locator("#result-h")).to_be_focused()
    # The problem list comes first; each entry opens its segment.
    tab_to(page, r"^a#\.: “deep strategic")
    page.keyboard.press("Enter")
    expect(page.locator("#detail-h")).to_be_focused()
    expect(page.locator("#detail-h")).to_contain_text("Segment 1 of 1")
    tab_to(page, r"^button#\.link-button: Back to this segment")
    page.keyboard.press("Enter")
    assert focused(page).startswith("a#.seg label-verbatim is-misattributed:")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")  # the segment itself opens its details
    expect(page.locator("#detail-h")).to_be_focused()

    # The sections, then a disputed quote, from the navigation.
    page.keyboard.press("Shift+Tab")
    for _ in range(80):
        if focused(page).startswith("a#.: Disputed quotes"):
            break
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#disputed-h")).to_be_focused()
    tab_to(page, r"^a#\.: The new administration")
    page.keyboard.press("Enter")
    expect(page.locator("#quote-h")).to_be_focused()
    expect(page.locator("#view-quote .wording")).to_have_count(7)


def test_a_360px_screen_needs_no_horizontal_scroll(
    server: str, open_page: Callable[..., Page], shoot: Callable[..., None]
) -> None:
    page = open_page(server, width=360, height=740)
    no_horizontal_scroll(page)
    check(page, f"{SYBIGA} {NEGATION_DROPPED}")
    page.locator("a.seg.is-misattributed").click()
    expect(page.locator("#check-detail .sources > li")).to_have_count(2)  # long source URLs and titles
    no_horizontal_scroll(page)
    page.locator(".attention").scroll_into_view_if_needed()
    shoot(page, "narrow-check")
    for path, ready in (
        ("#/disputed", "#view-disputed .quote-item"),
        ("#/quote/q_9896bdaad49b", "#view-quote .wording"),
        ("#/speakers", "#view-speakers .speakers"),
        ("#/add", "#add-form"),
    ):
        page.goto(server + path)
        expect(page.locator(ready).first).to_be_visible()
        no_horizontal_scroll(page)


def test_no_serious_accessibility_violations(server: str, open_page: Callable[..., Page]) -> None:
    page = open_page(server)
    expect(page.locator("#store-info")).to_contain_text("The store holds")
    found = {"start": axe_serious(page)}
    check(page, f"🔎 Fact check. {SYBIGA} {NEGATION_DROPPED}")
    # Offsets count code points, not the UTF-16 units of JavaScript: the emoji shifts nothing.
    expect(page.locator("a.seg.is-misattributed")).to_contain_text(re.compile(r"^deep strategic interests"))
    expect(page.locator("a.seg.is-altered")).to_contain_text(re.compile(r"^We want Russia to leave Syria"))
    page.locator("a.seg.is-altered").click()
    found["check result"] = axe_serious(page)
    page.get_by_role("link", name="Add an article").click()
    page.get_by_role("button", name="Add the article").click()
    expect(page.locator("#add-form .problem")).not_to_be_empty()
    found["add, refused"] = axe_serious(page)
    page.goto(server + "#/quote/q_9896bdaad49b")
    expect(page.locator("#view-quote .wording").first).to_be_visible()
    found["disputed quote"] = axe_serious(page)
    page.goto(server + "#/speakers")
    expect(page.locator("#view-speakers .speakers").first).to_be_visible()
    found["speakers"] = axe_serious(page)
    assert not any(found.values()), found
