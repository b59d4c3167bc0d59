"""The web application in a real browser: the system's Chromium driven by Playwright, against the real
server (uvicorn on a free local port) on the test's own copy of the web test workspace.

Each browser test (all marked slow) is a journey of one or two people through the pages; each takes a
screenshot of every page it visits (NOMINA_SCREENSHOTS, else <repo>/.screenshots/). With
NOMINA_DOC_SCREENSHOTS=1 the journeys also write the pictures of docs/web.md (docs/img/web-*.png, every
picture blurred); bench/screenshots.py does that.

The browser is never downloaded: NOMINA_CHROMIUM names the binary, else /usr/bin/chromium-headless-shell
or /usr/bin/chromium. Without one the tests fail, unless NOMINA_SKIP_BROWSER=1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import pytest
from browser_support import REPO, SETTINGS, Shots, chromium, docs_folder, serve, skip_browser
from conftest import WEB_PASSWORD, london

from nomina.workspace import Workspace

VIEWPORT = {"width": 1280, "height": 800}
#: The reasons eve gives for her proposal: no page may show them to the verifier before he has verified.
PROPOSAL = "the eyebrows, the nose profile and the ear lobes agree on both reference photos"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system's Chromium, headless, for the whole module."""
    if skip_browser():
        pytest.skip("NOMINA_SKIP_BROWSER=1: browser tests not run")
    binary = chromium()
    if binary is None:
        named = SETTINGS["NOMINA_CHROMIUM"]
        where = f"NOMINA_CHROMIUM names {named}, which is not a file" if named else "no Chromium found"
        pytest.fail(
            f"{where}: the browser tests drive the system's Chromium; install Debian's chromium-headless-shell "
            "(or chromium), or name the binary in NOMINA_CHROMIUM; NOMINA_SKIP_BROWSER=1 leaves these tests out",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=binary, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture()
def site(web_ws: Path) -> Iterator[str]:
    """The base URL of the real server on the test's copy of the web test workspace."""
    with serve(web_ws) as url:
        yield url


@pytest.fixture()
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name, docs_folder())


class Person:
    """One person at one browser (their own context: cookies of their own)."""

    def __init__(self, browser: Any, site: str, shots: Shots, user: str) -> None:
        self.context = browser.new_context(base_url=site, viewport=VIEWPORT, accept_downloads=True)
        self.context.set_default_timeout(8_000)
        self.page = self.context.new_page()
        self.user = user
        self.shots = shots
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))

    def _console(self, message: Any) -> None:
        # a Content-Security-Policy refusal or a script error is a bug of the page
        if message.type == "error" and "status of 4" not in message.text:
            self.problems.append(f"console: {message.text}")

    def shot(self, name: str, doc: bool = False, full_page: bool = False) -> None:
        if doc:
            self.shots.doc(self.page, name, f"{self.user}-{name}", full_page)
        else:
            self.shots(self.page, f"{self.user}-{name}")

    def goto(self, path: str, name: str, doc: bool = False) -> Any:
        answer = self.page.goto(path)
        self.shot(name, doc)
        return answer

    def log_in(self, password: str = WEB_PASSWORD, doc: bool = False) -> None:
        page = self.page
        page.goto("/login")
        page.get_by_label("User name").fill(self.user)
        page.get_by_label("Password").fill(password)
        if doc:
            self.shot("login", doc=True)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    def close(self) -> None:
        self.context.close()
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture()
def people(browser: Any, site: str, shots: Shots) -> Iterator[Any]:
    """``people("eve")``: a Person at their own browser context; all closed (and checked) at the end."""
    made: list[Person] = []

    def person(user: str) -> Person:
        made.append(Person(browser, site, shots, user))
        return made[-1]

    yield person
    for p in made:
        p.close()


def path(page: Any) -> str:
    """The path of the page's address (without the host and the query)."""
    return urlsplit(page.url).path


def main_text(page: Any) -> str:
    text: str = page.locator("main").inner_text()
    return text


# -- journeys -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_intake_user_cannot_open_a_case(people: Any) -> None:
    """ian (intake) logs in, sees no case in the navigation, and a case's address shows the not-allowed page."""
    ian = people("ian")
    ian.log_in()
    ian.shot("home")
    ian.goto("/account", "account")
    nav = ian.page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="References").is_visible()
    assert nav.get_by_role("link", name="Cases").count() == 0
    assert nav.get_by_role("link", name="Work queue").count() == 0
    answer = ian.goto("/cases/C1", "case-C1")
    assert answer.status == 403
    assert ian.page.get_by_role("heading", name="Not allowed").is_visible()
    assert "intake" in main_text(ian.page) and "examiner" in main_text(ian.page)
    # nothing of the case leaks onto the page: no photo, not even its kind
    assert ian.page.locator("main img").count() == 0
    assert "deceased" not in main_text(ian.page).lower()
    answer = ian.goto("/cases/C1/photos/0", "case-C1-photo")
    assert answer.status in (403, 404) and answer.headers["content-type"].startswith("text/html")


@pytest.mark.slow
def test_five_wrong_passwords_lock_the_account(people: Any, web_ws: Path) -> None:
    """Five wrong passwords lock vic out: the right one is then refused too, with the lockout's message;
    the audit trail has the failures and the lockout."""
    vic = people("vic")
    page = vic.page
    for attempt in range(1, 6):
        vic.log_in(password=f"wrong password {attempt}")
        assert page.url.endswith("/login"), page.url
        vic.shot(f"wrong-{attempt}")
        alert = page.locator("main p.error[role=alert]").inner_text()
        if attempt < 5:
            assert "wrong user name or password" in alert.lower() or "login failed" in alert.lower(), alert
        else:
            assert "locked out" in alert, alert
    vic.log_in()
    vic.shot("login-locked", doc=True)
    assert page.url.endswith("/login"), page.url
    alert = page.locator("main p.error[role=alert]").inner_text()
    assert "locked out" in alert and "vic" not in alert, alert  # the same answer as for a name that is no user
    assert not any(c["name"] == "nomina_session" for c in vic.context.cookies())
    # no page opens without a session: the browser is sent back to the login page
    page.goto("/account")
    assert "/login" in page.url

    # the audit trail, as the auditor sees it, and its verification
    aud = people("aud")
    aud.log_in()
    aud.goto("/audit", "audit", doc=True)
    trail = aud.page.locator("table.audit")
    assert trail.get_by_text("login.fail", exact=True).count() >= 4, main_text(aud.page)[:2000]
    assert trail.get_by_text("login.lockout", exact=True).count() == 1, main_text(aud.page)[:2000]
    aud.page.get_by_role("button", name="Verify the trail").click()
    aud.page.wait_for_load_state()
    aud.shot("audit-verified", doc=True)
    assert "The trail is intact" in main_text(aud.page), main_text(aud.page)[:2000]
    with Workspace.open(web_ws) as ws:
        actions = [e.action for e in ws.as_user("aud").audit_log() if e.details.get("user") == "vic"]
    assert actions.count("login.fail") >= 4, actions
    assert "login.lockout" in actions, actions

    # an admin ends the lockout by setting a new password; vic logs in with it
    adm = people("adm")
    adm.log_in()
    adm.goto("/admin/settings", "admin-settings", doc=True)
    assert adm.page.get_by_role("heading", name=re.compile("settings", re.I)).count() >= 1
    adm.goto("/admin", "admin", doc=True)
    row = adm.page.locator("table.users tr", has=adm.page.get_by_role("link", name="vic", exact=True))
    assert "locked out until" in row.inner_text(), row.inner_text()
    row.get_by_role("link", name="vic", exact=True).click()
    adm.page.wait_for_load_state()
    assert path(adm.page) == "/admin/users/vic"
    adm.shot("admin-user", doc=True)
    for password in ("vic's new password 789", "a fresh password for the verifier"):
        adm.page.get_by_label(re.compile("^New password")).fill(password)
        adm.page.get_by_label("The password again").fill(password)
        adm.page.get_by_role("button", name="Set password").click()
        adm.page.wait_for_load_state()
        if "vic" in password:  # refused, next to its field
            adm.shot("admin-user-password-refused")
            assert "must not contain the user name" in adm.page.locator("#err-password").inner_text()
    adm.shot("admin-user-password-set")
    assert "locked out" not in adm.page.locator("dl.facts").inner_text()
    vic.log_in(password="a fresh password for the verifier")
    assert path(page) != "/login", main_text(page)
    vic.shot("logged-in")


@pytest.mark.slow
def test_account_preferences_and_password(people: Any) -> None:
    """eve shows post-mortem photos unblurred, then changes her password: a wrong current password is shown
    next to its field; the new one works at the next login."""
    eve = people("eve")
    eve.log_in()
    eve.goto("/account", "account", doc=True)
    page = eve.page
    assert page.get_by_role("heading", name="Your account").is_visible()
    box = page.get_by_label(re.compile("post-mortem"))
    assert not box.is_checked()
    box.check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert page.url.endswith("/account")
    assert page.get_by_label(re.compile("post-mortem")).is_checked()
    eve.shot("account-saved")

    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_label(re.compile("^New password \\(")).fill("another long password 456")
    page.get_by_label("New password again").fill("another long password 456")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state()
    eve.shot("password-wrong-current")
    assert page.locator(".field-error").count() == 1
    assert page.locator(".field-error").is_visible()

    page.get_by_label("Current password").fill(WEB_PASSWORD)
    page.get_by_label(re.compile("^New password \\(")).fill("another long password 456")
    page.get_by_label("New password again").fill("another long password 456")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state()
    eve.shot("password-changed")
    assert "Password changed" in main_text(page)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    assert page.url.endswith("/login")
    eve.log_in(password=WEB_PASSWORD)
    assert page.url.endswith("/login"), "the old password still works"
    eve.log_in(password="another long password 456")
    assert not page.url.endswith("/login"), main_text(page)
    eve.shot("home")


@pytest.mark.slow
def test_identification_of_one_case(people: Any, faces_dir: Path, tmp_path: Path) -> None:
    """The whole identification of one case in the browser: eve (examiner) adds a reference with two photos
    and a case, marks the eyes on a photo where no face was found, searches, compares the first candidate
    with the checklist and proposes it; vic (verifier) verifies it blind, without seeing who proposed it or
    why; eve then downloads the report."""
    eve = people("eve")
    eve.log_in(doc=True)
    page = eve.page
    assert page.url.endswith("/queue"), page.url
    eve.shot("queue", doc=True)
    queue = page.locator("table.queue")
    assert queue.locator("tr[data-case=C1]").count() == 1 and queue.locator("tr[data-case=C2]").count() == 1

    # a reference with two photos
    eve.goto("/references", "references", doc=True)
    page.get_by_role("link", name="Add a reference").click()
    assert page.url.endswith("/references/new")
    page.get_by_label("Reference id").fill("R4")
    page.get_by_label(re.compile("^Name")).fill("Carl Example")
    page.get_by_label("Sex").select_option("male")
    page.get_by_label("Year of birth").fill("1990")
    page.get_by_label("Last seen at").fill("Leeds, the station")
    page.locator("input[name=photos]").set_input_files(
        [str(london(faces_dir, "004")), str(london(faces_dir, "004", "smiling"))]
    )
    page.get_by_label("Source").select_option("family")
    page.get_by_label("Supplied by").fill("her sister")
    page.get_by_label("Legal basis").fill("family request")
    eve.shot("reference-form", doc=True)
    page.get_by_role("button", name="Add the reference").click()
    page.wait_for_load_state()
    assert re.search(r"/references/R4(\?|$)", page.url), (page.url, main_text(page)[:1000])
    eve.shot("reference", doc=True)
    assert "Carl Example" in main_text(page)
    photos = page.locator("main img[src*='/references/R4/photos/']")
    assert photos.count() == 2, main_text(page)[:1000]

    # the import page (a manifest and a zip of photos; the bulk import is tested in test_bulk_import)
    eve.goto("/imports", "imports")

    # a case: a slightly blurred photo of the same person
    photo = cv2.GaussianBlur(cv2.imread(str(london(faces_dir, "004", "smiling"))), (0, 0), 1.5)
    case_photo = tmp_path / "body-3.jpg"
    cv2.imwrite(str(case_photo), photo)
    eve.goto("/cases/new", "case-form")
    page.get_by_label("Case id").fill("C3")
    page.get_by_label("deceased").check()
    page.get_by_label("Found on").fill("2026-11-20")
    page.get_by_label("Found at (place)").fill("River Aire, Leeds")
    page.locator("input[name=photos]").set_input_files(str(case_photo))
    eve.shot("case-form", doc=True)
    page.get_by_role("button", name="Add the case").click()
    page.wait_for_load_state()
    assert path(page) == "/cases/C3", (page.url, main_text(page)[:1000])
    eve.shot("case", doc=True)
    assert "1 face" in main_text(page)
    # a post-mortem photo is blurred until asked for: the photo's address says so
    assert "reveal" not in (page.locator("main img").first.get_attribute("src") or "")

    # eye marking on case C2, whose photo has no face the detector found
    eve.goto("/cases/C2", "case-C2")
    assert "no face found" in main_text(page)
    page.get_by_role("link", name="Mark the eyes").first.click()
    page.wait_for_load_state()
    assert "/cases/C2/photos/1/eyes" in page.url, page.url
    page.get_by_role("link", name=re.compile("Show the photo")).click()
    page.wait_for_load_state()
    img = page.locator("#eyes-img")
    img.wait_for()
    page.wait_for_function("() => document.getElementById('eyes-img').complete")
    box = img.bounding_box()
    assert box and box["width"] > 100, box
    # two points 80 pixels apart (on the screen) near the middle: the right one first, to check the order
    img.click(position={"x": box["width"] / 2 + 40, "y": box["height"] / 2})
    img.click(position={"x": box["width"] / 2 - 40, "y": box["height"] / 2})
    left_x = float(page.locator("input[name=left_x]").input_value())
    right_x = float(page.locator("input[name=right_x]").input_value())
    assert left_x < right_x, (left_x, right_x)
    assert page.locator("#eyes-marks circle").count() == 4  # a ring and a dot for each eye
    eve.shot("eyes", doc=True)
    page.get_by_role("button", name="Add the face").click()
    page.wait_for_load_state()
    assert path(page) == "/cases/C2", (page.url, main_text(page)[:1000])
    eve.shot("case-C2-marked")
    assert "eyes marked by hand" in main_text(page)

    # search case C3; the first candidate is the new reference
    eve.goto("/cases/C3", "case-C3")
    page.get_by_role("button", name="Run a new search").click()
    page.wait_for_load_state()
    assert re.search(r"/searches/\d+", page.url), (page.url, main_text(page)[:1000])
    eve.shot("search", doc=True)
    first = page.locator("li.candidate").first
    assert first.get_attribute("data-rank") == "1"
    assert first.get_attribute("data-reference") == "R4", main_text(page)[:2000]
    search_url = page.url

    # compare it, fill the checklist, conclude
    first.get_by_role("link", name="Compare side by side").click()
    page.wait_for_load_state()
    assert re.search(r"/searches/\d+/candidates/1/compare", page.url), page.url
    page.get_by_role("link", name="Show the faces").click()
    page.wait_for_load_state()
    for feature in ("face shape", "eyebrows", "eyes", "nose", "mouth", "chin"):
        page.get_by_label(f"{feature}: similar", exact=True).check()
    page.get_by_label("ears: not visible", exact=True).check()
    page.get_by_label("hairline: note", exact=True).fill("covered by a cap in the case photo")
    page.get_by_label("hairline: not visible", exact=True).check()
    page.get_by_label("possible match", exact=True).check()
    page.get_by_label(re.compile("^Reasons .*what the conclusion rests on")).fill(
        "eyebrow shape and the nose profile agree; no difference found"
    )
    eve.shot("compare", doc=True, full_page=True)
    page.get_by_role("button", name="Save the conclusion").click()
    page.wait_for_load_state()
    assert path(page) == urlsplit(search_url).path, (page.url, main_text(page)[:1000])
    eve.shot("search-concluded")
    assert "possible match" in page.locator("li.candidate").first.inner_text()

    # propose it, from the comparison page (the button asks for a confirmation)
    page.locator("li.candidate").first.get_by_role("link", name="Compare side by side").click()
    page.wait_for_load_state()
    assert "8 features" in main_text(page) or "similar" in main_text(page)
    page.locator("#f-propose-reasons").fill(PROPOSAL)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Propose this identification").click()
    page.wait_for_load_state()
    assert path(page) == "/cases/C3", (page.url, main_text(page)[:1000])
    eve.shot("case-proposed", doc=True, full_page=True)
    assert page.locator("#identification .badge").first.inner_text() == "proposed"

    # vic verifies blind, at his own browser
    vic = people("vic")
    vic.log_in()
    vic.goto("/verifications", "verifications", doc=True)
    row = vic.page.locator("tr[data-case=C3]")
    assert row.count() == 1, main_text(vic.page)
    row.get_by_role("link", name="Verify blind").click()
    vic.page.wait_for_load_state()
    assert vic.page.url.endswith("/cases/C3/verify"), vic.page.url
    vic.shot("verify", doc=True)
    blind = vic.page.content()
    assert not re.search(r"\beve\b", main_text(vic.page)), "the proposer's name is on the blind page"
    assert PROPOSAL not in blind and "possible match" not in blind
    assert "R4" in main_text(vic.page)
    # the case page and the search page keep the proposer hidden from the verifier too
    vic.goto("/cases/C3", "case-C3")
    assert PROPOSAL not in vic.page.content()
    assert not re.search(r"\beve\b", main_text(vic.page))
    vic.goto(urlsplit(search_url).path, "search")
    assert "possible match" not in main_text(vic.page) and not re.search(r"\beve\b", main_text(vic.page))
    vic.goto("/audit?case_id=C3", "audit-C3")
    assert vic.page.locator("table.audit").get_by_text("identification.propose", exact=True).count() == 1
    assert PROPOSAL not in vic.page.content() and "possible match" not in main_text(vic.page)
    # eve, the proposer, is no verifier: the page refuses her
    answer = eve.goto("/cases/C3/verify", "verify-refused")
    assert answer.status == 403 and "Not allowed" in main_text(page)
    vic.goto("/cases/C3/verify", "verify-again")
    vic.page.get_by_label("same person", exact=True).check()
    vic.page.get_by_label(re.compile("^Reasons")).fill("same eyebrows, nose and ear lobes")
    vic.page.get_by_role("button", name="Record my conclusion").click()
    vic.page.wait_for_load_state()
    assert path(vic.page) == "/cases/C3", (vic.page.url, main_text(vic.page)[:1000])
    vic.shot("verified", doc=True, full_page=True)
    assert vic.page.locator("#identification .badge").first.inner_text() == "identified"
    # now verified, the proposer and the reasons are shown
    assert "Proposed by eve" in main_text(vic.page) and PROPOSAL in main_text(vic.page)

    # eve downloads the identification report
    eve.goto("/cases/C3", "case-identified")
    with page.expect_download() as wait:
        page.get_by_role("link", name="Identification report (HTML)").click()
    download = wait.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.name == "nomina-report-C3.html"
    text = saved.read_text(encoding="utf-8")
    assert text.lstrip()[:15].lower().startswith("<!doctype html"), text[:200]
    assert "C3" in text and "R4" in text and "same person" in text


@pytest.mark.slow
def test_bulk_import(people: Any, faces_dir: Path, tmp_path: Path) -> None:
    """ian (intake) imports a manifest and a zip of photos: the good rows are enrolled, the bad one is
    listed with its line, and its CSV of failures downloads; ian may add references but not read cases."""
    import zipfile

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(london(faces_dir, "005"), "photos/005.jpg")
        z.write(london(faces_dir, "005", "smiling"), "photos/005s.jpg")
        z.write(london(faces_dir, "006"), "photos/006.jpg")
    manifest = tmp_path / "families.csv"
    manifest.write_text(
        "reference_id,photo,name,source,supplied_by,legal_basis,sex,birth_year\n"
        "R5,photos/005.jpg,Dan Example,family,his mother,family request,male,1985\n"
        "R5,photos/005s.jpg,Dan Example,family,his mother,family request,male,1985\n"
        "R6,photos/006.jpg,Eva Example,official-record,police file 12,court order,female,\n"
        "R7,photos/missing.jpg,Fay Example,family,her father,family request,female,1970\n",
        encoding="utf-8",
    )
    ian = people("ian")
    ian.log_in()
    assert path(ian.page) == "/references", ian.page.url
    ian.goto("/imports", "imports")
    page = ian.page
    page.get_by_label(re.compile("^Manifest")).set_input_files(str(manifest))
    page.get_by_label(re.compile("^Photos")).set_input_files(str(archive))
    ian.shot("import-form", doc=True)
    page.get_by_role("button", name="Start the import").click()
    page.wait_for_load_state()
    assert re.fullmatch(r"/imports/[^/]+", path(page)), page.url
    # the page follows the import and shows its outcome when it ends
    page.wait_for_function(
        "() => !['running', 'queued'].includes(document.getElementById('import-state').textContent.trim())",
        timeout=60_000,
    )
    page.wait_for_load_state()
    ian.shot("import", doc=True)
    counts = page.locator("#import-counts").inner_text()
    assert "4 of 4 rows done" in counts and "3 photo(s) added" in counts and "1 failed" in counts, counts
    with page.expect_download() as wait:
        page.get_by_role("link", name=re.compile("Download the failed rows")).click()
    failures = wait.value.path().read_text(encoding="utf-8")
    assert "R7" in failures and "missing.jpg" in failures and "R5" not in failures, failures

    ian.goto("/references", "references")
    listed = main_text(page)
    assert "R5" in listed and "R6" in listed and "R7" not in listed, listed
    ian.goto("/references/R5", "reference-R5")
    assert page.locator("main img[src*='/references/R5/photos/']").count() == 2


@pytest.mark.slow
def test_long_unbroken_text_stays_inside_the_page(browser: Any, web_ws: Path, shots: Shots) -> None:
    """A name, place or note of one long word (a pasted file number, an address) wraps instead of pushing the
    page wider than the window, where the actions beside it would be out of sight."""
    word = "Kilometre" * 30
    with Workspace.open(web_ws) as ws:
        eve = ws.as_user("eve")
        eve.update_reference("R1", name=word, last_seen_at=word, notes=word)
    with serve(web_ws) as site:
        eve = Person(browser, site, shots, "eve")
        eve.log_in()
        for where in (
            "/references",
            "/references/R1",
            "/references/R1/edit",
            "/searches/1",
            "/searches/1/candidates/1/compare",
            "/audit?reference_id=R1",
        ):
            answer = eve.goto(where, "long-" + where.strip("/").replace("/", "-").split("?")[0])
            assert answer.status == 200, where
            wide = eve.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 0, f"{where}: {wide} px wider than the window"
        eve.close()


def test_the_web_guide_shows_its_pictures() -> None:
    """docs/web.md shows every picture the journeys take for it, each present and small (the pictures are
    regenerated with bench/screenshots.py; a fast check, in the default run)."""
    doc = (REPO / "docs" / "web.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"\]\((img/web-[a-z0-9-]+\.png)\)", doc))
    made = {f"img/{p.name}" for p in (REPO / "docs" / "img").glob("web-*.png")}
    assert shown, "docs/web.md shows no picture"
    assert shown <= made, f"pictures shown but missing (run bench/screenshots.py): {sorted(shown - made)}"
    assert made <= shown, f"pictures not shown in docs/web.md: {sorted(made - shown)}"
    for name in made:
        size = (REPO / "docs" / name).stat().st_size
        assert size < 200_000, f"docs/{name} is {size // 1024} KB"
