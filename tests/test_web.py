"""The web application's own defences: logins, cookies, CSRF, the login throttle, security headers, the
error shape, and pages that load nothing from another host. Each test tries to get round one of them."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conftest import WEB_PASSWORD, web_login, web_token
from fastapi.testclient import TestClient

from nomina import Workspace, auth
from nomina.web.access import LOGIN_COOKIE, SESSION_COOKIE, LoginThrottle

WEB = Path(__file__).resolve().parents[1] / "src" / "nomina" / "web"


def login_form(client: TestClient, user: str, password: str, **extra: str) -> Any:
    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token
    return client.post(
        "/login",
        data={"name": user, "password": password, "login_token": token.group(1), **extra},
        follow_redirects=False,
    )


def actions(ws_path: Path, user: str = "root") -> list[str]:
    with Workspace.open(ws_path) as ws:
        return [e.action for e in ws.as_user(user).audit_log()]


def test_a_login_sets_a_strict_http_only_cookie_and_is_audited(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app, base_url="https://testserver")
    answer = login_form(client, "eve", WEB_PASSWORD, next="/account")
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "secure", "path=/"} <= flags
    assert any(f.startswith("max-age=") for f in flags)
    assert "eve" in client.get("/account").text
    assert "login.ok" in actions(web_ws)


def test_the_cookie_is_secure_over_https_unless_told_otherwise(web_ws: Path) -> None:
    from nomina.web import create_app

    for base, secure, expect in (("http", None, False), ("https", None, True), ("https", False, False)):
        app = create_app(web_ws, secure_cookies=secure)
        answer = login_form(TestClient(app, base_url=f"{base}://testserver"), "eve", WEB_PASSWORD)
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
        assert ("secure" in cookie.lower().split("; ")) is expect
        app.state.workspace.close()


def test_a_login_posted_from_another_site_is_refused(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app)
    before = actions(web_ws)
    # no double-submit cookie (a form on another site cannot set it): refused, nothing recorded
    answer = client.post(
        "/login", data={"name": "eve", "password": WEB_PASSWORD, "login_token": "x"}, follow_redirects=False
    )
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    client.get("/login")
    forged = client.post(
        "/login", data={"name": "eve", "password": WEB_PASSWORD, "login_token": "guessed"}, follow_redirects=False
    )
    assert forged.status_code == 403 and LOGIN_COOKIE in client.cookies
    assert actions(web_ws)[len(before) :] == ["audit.view"]  # no login.ok, no login.fail


def test_after_login_the_browser_goes_only_to_a_page_of_this_server(web_app: Any) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "x"):
        answer = login_form(TestClient(web_app), "eve", WEB_PASSWORD, next=target)
        assert answer.headers["location"] == "/", target


def _refusal(answer: Any) -> tuple[int, str]:
    """A refused login as whoever sent it sees it: the status and the page's message."""
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', answer.text, re.S)
    assert found, answer.text
    return answer.status_code, found.group(1)


def test_five_wrong_passwords_lock_the_account_and_the_lockout_is_audited(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app)
    for _ in range(5):  # the fifth locks
        answer = login_form(client, "vic", "not the password at all")
        assert answer.status_code == 401 and "wrong user name or password" in answer.text.lower()
    answer = login_form(client, "vic", WEB_PASSWORD)  # the right one is refused now
    assert answer.status_code == 401 and "locked out" in answer.text
    assert SESSION_COOKIE not in client.cookies
    trail = actions(web_ws)
    assert trail.count("login.fail") >= 5 and "login.lockout" in trail


def test_a_locked_out_user_is_refused_as_a_name_that_is_no_user_is(web_app: Any) -> None:
    """Otherwise five wrong passwords would tell anyone whether a name is a user's."""
    client = TestClient(web_app)
    for name in ("vic", "nobody-here"):
        for _ in range(auth.MAX_FAILURES):
            login_form(client, name, "not the password at all")
    locked, unknown = (_refusal(login_form(client, name, "not the password at all")) for name in ("vic", "nobody-here"))
    assert locked == unknown and "vic" not in locked[1]


def test_one_address_is_throttled_across_users(web_app: Any) -> None:
    web_app.state.throttle = LoginThrottle(limit=3, window=600)
    client = TestClient(web_app)
    for user in ("eve", "vic", "ian"):  # a different user each time: no lockout, but the same address
        assert login_form(client, user, "wrong wrong wrong").status_code == 401
    answer = login_form(client, "aud", WEB_PASSWORD)  # even the right password waits
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    assert "too many failed logins from this address" in answer.text


def test_logins_sent_at_once_from_one_address_are_throttled_alike(web_app: Any) -> None:
    """Each attempt counts from before its password is checked: twelve sent together, with a limit of three,
    cannot all be checked before the first failure is counted."""
    web_app.state.throttle = LoginThrottle(limit=3, window=600)
    pages = []
    for _ in range(12):  # each its own client with its own login form, all ready before any is sent
        client = TestClient(web_app)
        token = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text)
        assert token
        pages.append((client, token.group(1)))
    users = ["eve", "vic", "ian", "aud"] * 3

    def send(n: int) -> int:
        client, token = pages[n]
        data = {"name": users[n], "password": "wrong wrong wrong", "login_token": token}
        return client.post("/login", data=data, follow_redirects=False).status_code

    with ThreadPoolExecutor(12) as threads:
        codes = sorted(threads.map(send, range(12)))
    assert codes == [401] * 3 + [429] * 9


def test_a_login_that_succeeds_is_not_counted_against_its_address() -> None:
    throttle = LoginThrottle(limit=2, window=600)
    for _ in range(5):
        wait, stamp = throttle.attempt("10.0.0.1")
        assert wait == 0
        throttle.release("10.0.0.1", stamp)  # as the login page does once the password was right
    assert throttle.attempt("10.0.0.1")[0] == 0 and throttle.attempt("10.0.0.1")[0] == 0
    assert throttle.attempt("10.0.0.1")[0] > 0 and throttle.attempt("10.0.0.2")[0] == 0


def test_a_form_or_upload_from_nobody_logged_in_is_refused_before_its_body_is_read(web_app: Any) -> None:
    """FastAPI reads a form route's fields before its access rule: a page form from nobody was read whole
    (up to the body limit, written to disk) before the redirect to the login page. A body that is never read
    cannot end the request early: the server answers as soon as the headers are in, so a body that never
    comes does not hold it."""
    client = TestClient(web_app, follow_redirects=False)
    read: list[int] = []

    def body() -> Any:  # a generator body is sent chunked; it records how much the server pulled
        for _ in range(64):
            read.append(1)
            yield b"x" * 65536

    for path in ("/account/password", "/admin/users", "/cases/new"):
        read.clear()
        answer = client.post(path, content=body(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path
        assert len(read) <= 1, f"{path}: {len(read)} chunks read"
    client.cookies.set(SESSION_COOKIE, "nms_" + "0" * 40)
    forged = client.post("/cases/new", data={"case_id": "X"})
    assert forged.status_code == 303 and forged.headers["location"].startswith("/login")
    api = client.post("/api/v1/cases", content=body(), headers={"authorization": "Bearer nmt_" + "0" * 40})
    assert api.status_code == 401 and api.json()["error"]["code"] == "not_logged_in"


def test_a_form_without_the_csrf_token_changes_nothing(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app, follow_redirects=False)
    csrf = web_login(client, "eve")
    for data in ({}, {"csrf": "0" * 64}, {"csrf": csrf[:-1] + ("0" if csrf[-1] != "0" else "1")}):
        answer = client.post("/account/preferences", data={**data, "show_post_mortem": "on"})
        assert answer.status_code == 403 and "CSRF" in answer.text
    with Workspace.open(web_ws) as ws:
        assert ws.as_user("eve").preferences()["show_post_mortem"] is False
    # another session's token does not do either
    other = TestClient(web_app)
    other_csrf = web_login(other, "eve")
    assert client.post("/account/preferences", data={"csrf": other_csrf}).status_code == 403
    assert client.post("/account/preferences", data={"csrf": csrf, "show_post_mortem": "on"}).status_code == 303
    with Workspace.open(web_ws) as ws:
        assert ws.as_user("eve").preferences()["show_post_mortem"] is True
        assert ws.as_user("root").audit_log()[-1].action == "user.preference"


def test_a_logged_out_or_disabled_users_cookie_opens_nothing(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app, follow_redirects=False)
    csrf = web_login(client, "eve")
    secret = client.cookies[SESSION_COOKIE]
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    replay = TestClient(web_app, follow_redirects=False, cookies={SESSION_COOKIE: secret})
    assert replay.get("/account").headers["location"].startswith("/login")
    web_login(client, "aud")
    with Workspace.open(web_ws) as ws:
        ws.as_user("root").disable_user("aud")
    answer = client.get("/account")
    assert answer.status_code == 403 and "disabled" in answer.text


def test_the_api_takes_tokens_only_never_the_cookie(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app)
    web_login(client, "eve")
    session = client.cookies[SESSION_COOKIE]
    for headers in ({}, {"authorization": f"Bearer {session}"}, {"authorization": "Basic ZXZlOng="}):
        answer = client.get("/api/v1/openapi.json", headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert answer.json() == {"error": {"code": "not_logged_in", "message": answer.json()["error"]["message"],
                                           "field": "authorization"}}  # fmt: skip
    token = web_token(web_ws, "eve")
    assert TestClient(web_app).get("/api/v1/openapi.json", headers={"authorization": f"Bearer {token}"}).is_success


def test_every_answer_carries_the_security_headers(web_app: Any) -> None:
    client = TestClient(web_app)
    for path in ("/login", "/static/nomina.css", "/no-such-page", "/api/v1/no-such-call"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp, path
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert "server" not in headers or "uvicorn" not in headers["server"]
        assert (headers.get("cache-control") == "no-store") is not path.startswith("/static/"), path


def test_head_is_answered_wherever_get_is_with_its_rules_and_without_a_body(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app)
    page, head = client.get("/login"), client.head("/login")
    assert head.status_code == page.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == page.headers["content-type"]
    assert head.headers["content-length"] == page.headers["content-length"] != "0"
    assert head.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert client.head("/api/v1/me").status_code == 401  # GET's access rules hold for HEAD
    assert client.head("/cases", follow_redirects=False).status_code == 303  # to the login page
    token = web_token(web_ws, "eve")
    me = client.head("/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.content == b""


def test_head_of_a_recorded_download_records_nothing(web_app: Any, web_ws: Path) -> None:
    """Writing a report or an export is recorded with its SHA-256; a HEAD, whose body nobody receives, is
    refused instead of recorded."""
    client = TestClient(web_app)
    token = web_token(web_ws, "root")
    with Workspace.open(web_ws) as ws:
        before = ws.audit_head()
    for path in ("/api/v1/export?format=csv", "/api/v1/export", "/api/v1/cases/UP-1/report", "/export.csv"):
        answer = client.head(path, headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 405 and answer.headers["allow"] == "GET", path
        assert answer.headers["content-security-policy"] == client.get("/login").headers["content-security-policy"]
    with Workspace.open(web_ws) as ws:
        assert ws.audit_head() == before
    assert client.get("/api/v1/export?format=csv", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_a_method_an_address_does_not_take_is_answered_with_the_methods_it_does(web_app: Any) -> None:
    client = TestClient(web_app)
    for path, methods in (
        ("/api/v1/me", "GET, HEAD"),
        ("/login", "GET, HEAD, POST"),
        ("/api/v1/cases", "GET, HEAD, POST"),
    ):
        answer = client.put(path)
        assert answer.status_code == 405, path
        assert answer.headers["allow"] == methods, path


def test_the_pages_have_no_inline_script_or_style_and_load_nothing_from_another_host() -> None:
    bad: list[str] = []
    for file in sorted((WEB / "templates").glob("*.html")):
        text = file.read_text()
        for pattern, what in (
            (r"<script(?![^>]*\ssrc=)[^>]*>", "inline script"),
            (r"\son[a-z]+\s*=", "inline event handler"),
            (r"\sstyle\s*=", "style attribute"),
            (r"<style", "style element"),
            (r"javascript:", "javascript: URL"),
            (r"(?:src|href|action)\s*=\s*[\"']?(?:https?:)?//", "another host"),
        ):
            if re.search(pattern, text, re.IGNORECASE):
                bad.append(f"{file.name}: {what}")
    for file in sorted((WEB / "static").iterdir()):
        if re.search(r"https?://", file.read_text().replace("http://www.w3.org/2000/svg", "")):  # SVG namespace
            bad.append(f"{file.name}: an address of another host")
    assert not bad, bad


def test_an_unexpected_error_says_nothing_of_the_server(web_app: Any) -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/api/v1/boom")
    def boom() -> None:  # a failure that no request can cause in the real application
        raise RuntimeError("secret detail /srv/nomina")

    web_app.include_router(router)
    answer = TestClient(web_app, raise_server_exceptions=False).get("/api/v1/boom")
    assert answer.status_code == 500 and "secret" not in answer.text
    assert answer.json()["error"]["code"] == "error"


def test_a_token_made_on_the_account_page_is_shown_once_and_can_be_revoked(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app, follow_redirects=False)
    csrf = web_login(client, "eve")
    made = client.post("/account/tokens", data={"csrf": csrf, "label": "lab system", "expires_days": "30"})
    secret = re.search(r'<code class="secret">(nmt_[^<]+)</code>', made.text)
    assert made.status_code == 200 and secret
    assert secret.group(1) not in client.get("/account").text  # shown once
    api = TestClient(web_app)
    me = api.get("/api/v1/me", headers={"authorization": f"Bearer {secret.group(1)}"})
    assert me.json()["user"] == "eve"
    bad = client.post("/account/tokens", data={"csrf": csrf, "label": "x", "expires_days": "soon"})
    assert bad.status_code == 422 and "expires_days: &#39;soon&#39; is not a whole number" in bad.text
    token_id = re.search(r'action="/account/tokens/(\d+)/revoke"', client.get("/account").text)
    assert token_id
    # another user cannot revoke it: it is not theirs
    other = TestClient(web_app, follow_redirects=False)
    refused = other.post(f"/account/tokens/{token_id.group(1)}/revoke", data={"csrf": web_login(other, "vic")})
    assert refused.status_code == 404
    assert api.get("/api/v1/me", headers={"authorization": f"Bearer {secret.group(1)}"}).status_code == 200
    assert client.post(f"/account/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf}).status_code == 303
    assert api.get("/api/v1/me", headers={"authorization": f"Bearer {secret.group(1)}"}).status_code == 401


def test_the_password_form_counts_wrong_current_passwords_as_failed_logins(web_app: Any, web_ws: Path) -> None:
    """A session left open at a shared terminal: whoever sits down cannot guess the password on the form."""
    client = TestClient(web_app, follow_redirects=False)
    csrf = web_login(client, "ian")

    def change(current: str) -> Any:
        new = "a new long passphrase"
        return client.post(
            "/account/password", data={"csrf": csrf, "current_password": current, "password": new, "repeat": new}
        )

    for _ in range(auth.MAX_FAILURES - 1):
        wrong = change("a guess at the password")
        assert wrong.status_code == 422 and "current password: wrong password" in wrong.text
    locked = change("a guess at the password")
    assert locked.status_code == 422 and "password change refused: user &#39;ian&#39; is locked out" in locked.text
    assert change(WEB_PASSWORD).status_code == 422  # refused unchecked
    assert login_form(TestClient(web_app), "ian", WEB_PASSWORD).status_code == 401
    trail = actions(web_ws)
    assert trail.count("login.fail") == auth.MAX_FAILURES + 2 and trail.count("login.lockout") == 1


def test_a_body_declared_too_large_is_refused_before_it_is_read(web_app: Any, web_ws: Path) -> None:
    client = TestClient(web_app)
    token = web_token(web_ws, "eve")
    huge = str(400 * 1024**2)
    answer = client.post("/api/v1/references", headers={"authorization": f"Bearer {token}", "content-length": huge})
    assert answer.status_code == 413 and answer.json()["error"]["field"] == "body"
    page = client.post("/cases/new", headers={"content-length": huge})
    assert page.status_code == 413 and "larger than this server takes" in page.text


def test_a_body_sent_without_its_length_is_counted_as_it_arrives(web_app: Any) -> None:
    """A chunked body declares no length: a login, read before anyone is known, stops at 64 KB however much
    is sent; the form is never parsed and nobody is logged in."""

    def chunks() -> Any:
        for _ in range(1000):  # 64 MB offered
            yield b"name=eve&password=" + b"x" * 65536

    client = TestClient(web_app, follow_redirects=False)
    client.get("/login")
    answer = client.post("/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert "larger than this server takes here (65,536 bytes)" in answer.text
