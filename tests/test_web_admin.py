"""The audit, user and settings pages of the web application (nomina.web.pages_admin)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WEB_PASSWORD, copy_workspace, raw_database, web_login
from fastapi.testclient import TestClient

from nomina import Workspace
from nomina.web import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, _web_ws_template: Path) -> Iterator[tuple[Any, Path]]:
    """One copy of the web test workspace and its application for the whole module (tests that change
    users work on users no other test looks at)."""
    path = copy_workspace(_web_ws_template, tmp_path_factory.mktemp("web_admin"))
    app = create_app(path)
    yield app, path
    app.state.workspace.close()


def client_as(site: tuple[Any, Path], user: str) -> tuple[Any, str]:
    client = TestClient(site[0])
    return client, web_login(client, user)


def text(response: Any) -> str:
    return html.unescape(response.text)


def test_auditor_reads_the_trail_of_one_case(site: tuple[Any, Path]) -> None:
    client, _ = client_as(site, "aud")
    page = client.get("/audit", params={"case_id": "C1"})
    assert page.status_code == 200, page.text
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", page.text)
    assert rows, page.text
    seqs = [int(r) for r in rows]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    body = text(page)
    assert "case.create" in body and "search.run" in body
    assert "reference.create" not in body  # only C1's events
    assert 'value="C1"' in page.text  # the filter stays in the form
    # an unknown case: no events, not an error
    assert "No events match" in client.get("/audit", params={"case_id": "nothing-here"}).text
    # paging back: nothing before the first event
    assert "No events match" in client.get("/audit", params={"before": 1}).text
    assert client.get("/audit", params={"before": 2**64}).status_code == 422


def test_audit_pages_back_with_older_links(site: tuple[Any, Path]) -> None:
    client, _ = client_as(site, "aud")
    first = client.get("/audit", params={"size": 5})
    older = re.search(r'href="(/audit\?size=5&amp;before=(\d+))" rel="next"', first.text)
    assert older, first.text
    lowest = int(older.group(2))
    shown = [int(r) for r in re.findall(r"<tr>\s*<td>(\d+)</td>", first.text)]
    assert min(shown) == lowest and len(shown) == 5
    second = client.get(html.unescape(older.group(1)))
    seqs = [int(r) for r in re.findall(r"<tr>\s*<td>(\d+)</td>", second.text)]
    assert len(seqs) == 5 and max(seqs) == lowest - 1 and "Newest events" in second.text


def test_roles_without_audit_or_admin_are_refused(site: tuple[Any, Path]) -> None:
    ian, ian_csrf = client_as(site, "ian")
    assert ian.get("/audit").status_code == 403
    assert ian.post("/audit/verify", data={"csrf": ian_csrf}).status_code == 403
    eve, eve_csrf = client_as(site, "eve")
    assert eve.get("/admin").status_code == 403
    assert eve.get("/admin/users/ian").status_code == 403
    assert eve.get("/admin/settings").status_code == 403
    refused = eve.post("/admin/users/ian/disable", data={"csrf": eve_csrf})
    assert refused.status_code == 403
    aud, aud_csrf = client_as(site, "aud")  # reads everything, changes nothing
    assert aud.get("/admin/settings").status_code == 403
    assert aud.post("/admin/settings", data={"csrf": aud_csrf, "name": "top", "value": "1"}).status_code == 403
    with Workspace.open(site[1]) as ws:
        assert next(u for u in ws.as_user("adm").users() if u.name == "ian").active


def test_admin_adds_a_user_who_can_log_in(site: tuple[Any, Path]) -> None:
    adm, csrf = client_as(site, "adm")
    added = adm.post(
        "/admin/users",
        data={"csrf": csrf, "name": "ida", "roles": ["intake"], "password": WEB_PASSWORD, "repeat": WEB_PASSWORD},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    assert added.headers["location"] == "/admin/users/ida?done=added"
    shown = text(adm.get(added.headers["location"]))
    assert "User ida" in shown and "User added" in shown and "intake" in shown
    ida = TestClient(site[0])
    web_login(ida, "ida")
    assert "ida" in ida.get("/account").text
    assert ida.get("/audit").status_code == 403  # intake only
    # the same name again: refused next to the name field, the form filled again
    again = adm.post(
        "/admin/users",
        data={"csrf": csrf, "name": "ida", "roles": ["intake"], "password": WEB_PASSWORD, "repeat": WEB_PASSWORD},
    )
    assert again.status_code == 409
    assert re.search(r'id="err-name">[^<]*already exists', again.text), again.text
    # no role: refused next to the roles
    none = adm.post(
        "/admin/users", data={"csrf": csrf, "name": "ivo", "password": WEB_PASSWORD, "repeat": WEB_PASSWORD}
    )
    assert none.status_code == 422 and 'id="err-roles"' in none.text


def test_changed_roles_apply_to_an_open_session(site: tuple[Any, Path]) -> None:
    adm, csrf = client_as(site, "adm")
    eve, _ = client_as(site, "eve")
    assert eve.get("/admin").status_code == 403
    try:
        changed = adm.post(
            "/admin/users/eve/roles", data={"csrf": csrf, "roles": ["examiner", "admin"]}, follow_redirects=False
        )
        assert changed.status_code == 303
        shown = adm.get(changed.headers["location"]).text
        assert "Roles changed" in shown and "examiner, admin" in shown
        # the same session, the new roles, from the next request on
        assert "(examiner, admin)" in eve.get("/account").text
        assert eve.get("/admin").status_code == 200
        adm.post("/admin/users/eve/roles", data={"csrf": csrf, "roles": ["intake"]})
        assert eve.get("/account").status_code == 200
        assert eve.get("/audit").status_code == 403  # intake does not read the trail
    finally:
        with Workspace.open(site[1]) as ws:
            ws.as_user("adm").set_roles("eve", ["examiner"])
    assert eve.get("/audit").status_code == 200


def test_the_last_admin_cannot_be_disabled(site: tuple[Any, Path]) -> None:
    # leave adm the only active admin (root, and any admin another test added, lose the role)
    with Workspace.open(site[1]) as ws:
        root = ws.as_user("root")
        for u in root.users():
            if u.active and "admin" in u.roles and u.name not in ("adm", "root"):
                root.disable_user(u.name)
        root.set_roles("root", ["examiner"])
    try:
        adm, csrf = client_as(site, "adm")
        refused = adm.post("/admin/users/adm/disable", data={"csrf": csrf})
        assert refused.status_code == 409
        assert re.search(r'id="err-disable">[^<]*last active admin', refused.text), refused.text
        assert adm.get("/admin").status_code == 200  # still an admin
        kept = adm.post("/admin/users/adm/roles", data={"csrf": csrf, "roles": ["auditor"]})
        assert kept.status_code == 409
        assert re.search(r'id="err-roles">[^<]*last active admin', kept.text)
    finally:
        with Workspace.open(site[1]) as ws:
            ws.as_user("adm").set_roles("root", ["admin", "examiner"])


def test_password_reset_refuses_a_short_one_and_ends_the_sessions(site: tuple[Any, Path]) -> None:
    adm, csrf = client_as(site, "adm")
    vic, _ = client_as(site, "vic")
    short = adm.post("/admin/users/vic/password", data={"csrf": csrf, "password": "short", "repeat": "short"})
    assert short.status_code == 422
    assert re.search(r'id="err-password">[^<]*too short', short.text), short.text
    assert vic.get("/account").status_code == 200  # nothing changed
    new = "another long password 456"
    done = adm.post(
        "/admin/users/vic/password", data={"csrf": csrf, "password": new, "repeat": new}, follow_redirects=False
    )
    assert done.status_code == 303
    assert vic.get("/account", follow_redirects=False).status_code == 303  # the session ended: to the login page
    again = TestClient(site[0])
    web_login(again, "vic", new)
    assert again.get("/account").status_code == 200


def test_forms_without_the_csrf_token_are_refused(site: tuple[Any, Path]) -> None:
    adm, _ = client_as(site, "adm")
    for path, data in [
        ("/admin/users", {"name": "mal", "roles": ["admin"], "password": WEB_PASSWORD, "repeat": WEB_PASSWORD}),
        ("/admin/users/ian/disable", {}),
        ("/admin/users/ian/roles", {"roles": ["admin"]}),
        ("/admin/users/ian/password", {"password": "taken over 12345", "repeat": "taken over 12345"}),
        ("/admin/settings", {"name": "retention_years", "value": "1"}),
    ]:
        refused = adm.post(path, data=data)
        assert refused.status_code == 403, path
        assert "CSRF" in refused.text
        forged = adm.post(path, data={**data, "csrf": "0" * 64})
        assert forged.status_code == 403, path
    with Workspace.open(site[1]) as ws:
        view = ws.as_user("adm")
        ian = next(u for u in view.users() if u.name == "ian")
        assert ian.active and ian.roles == ("intake",)
        assert "mal" not in {u.name for u in view.users()}
        assert view.config()["retention_years"] == 20


def test_settings_change_one_value_read_as_text(site: tuple[Any, Path]) -> None:
    adm, csrf = client_as(site, "adm")
    page = text(adm.get("/admin/settings"))
    assert "quality_gate" in page and "Face quality gate" in page and "sface" in page.lower()
    bad = adm.post("/admin/settings", data={"csrf": csrf, "name": "retention_years", "value": "many"})
    assert bad.status_code == 422
    assert re.search(r'id="err-retention_years">[^<]*not a valid int', bad.text), bad.text
    assert 'value="many"' in bad.text
    done = adm.post(
        "/admin/settings", data={"csrf": csrf, "name": "retention_years", "value": "30"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert "Setting changed" in adm.get(done.headers["location"]).text
    with Workspace.open(site[1]) as ws:
        assert ws.as_user("adm").config()["retention_years"] == 30
        ws.as_user("adm").set_config("retention_years", 20)


def test_a_setting_damaged_behind_nominas_back_is_shown_on_its_form_and_set_again(web_app: Any, web_ws: Path) -> None:
    with raw_database(web_ws) as db:
        db.execute("""UPDATE workspace_info SET value = '"bogus"' WHERE key = 'setting.quality_gate'""")
    adm, csrf = client_as((web_app, web_ws), "adm")
    page = adm.get("/admin/settings")
    assert page.status_code == 200, page.text
    assert re.search(r'id="err-quality_gate">[^<]*the stored value', page.text), page.text
    done = adm.post(
        "/admin/settings", data={"csrf": csrf, "name": "quality_gate", "value": "standard"}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    assert "err-quality_gate" not in adm.get("/admin/settings").text


def test_audit_verify_shows_the_head_to_keep(site: tuple[Any, Path]) -> None:
    aud, csrf = client_as(site, "aud")
    shown = aud.post("/audit/verify", data={"csrf": csrf})
    assert shown.status_code == 200, shown.text
    assert "The trail is intact" in shown.text
    head = re.search(r'id="head-hash">([0-9a-f]{64})<', shown.text)
    assert head, shown.text
    with Workspace.open(site[1]) as ws:
        assert head.group(1) == ws.audit_head()
    assert "somewhere other than this server" in shown.text
