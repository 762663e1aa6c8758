"""The oversight console in a real headless Chromium, against a real server.

`facegate serve` runs the example 2020-moratorium policy; the test populates it through
the HTTP API (an NGO enrols real LFW photos and searches them for two cases, police
searches are refused by the moratorium, a newsroom is refused an unapproved purpose),
through the CLI as an administrator would (a second key, a purpose request, a recorded
bias audit on LFW photos), and then works in the browser as an oversight board (auditor),
an administrator and a reviewer. Every page is checked for its real data and with axe-core
for serious or critical accessibility violations, and photographed: set
FACEGATE_CONSOLE_SCREENSHOTS=docs/console to refresh the pictures in docs/console.md.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from facegate.client import FacegateHTTPError
from tests.service.browser import axe_source, axe_violations, chromium, navigates, screenshot
from tests.service.server import EXAMPLE_POLICY, LFW, Server, lfw, running_server

GALLERY = "victims-ads"
KEPT = "shelter-intake"  # keeps face thumbnails (opt-in); GALLERY does not
CASES = ("CASE-2026-0117", "CASE-2026-0118")
KEPT_CASE = "CASE-2026-0119"
TENANTS = (
    ("hope-ngo", "nonprofit", "victim_identification", "operator,reviewer"),
    ("metro-police", "law_enforcement", "criminal_investigation,victim_identification", "operator"),
    ("newsroom", "commercial", "", "operator"),
    ("board", "government", "", "auditor,oversight"),  # reads the whole trail
    ("registry", "government", "", "admin"),
    ("watch-ngo", "nonprofit", "", "reviewer"),  # a reviewer of another tenant
    ("city-auditor", "government", "", "auditor"),  # reads its own entries only
)


def bias_manifest(out: Path) -> Path:
    """LFW people with 3 to 5 photos, 12 per subject_gender label: the smallest real audit set whose
    groups are large enough to be compared (10 subjects and 30 mated pairs each)."""
    with (LFW / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["subject"]] = counts.get(r["subject"], 0) + 1
    chosen: dict[str, list[str]] = {"Male": [], "Female": []}
    for r in rows:
        group = chosen.get(r["subject_gender"])
        if group is not None and 3 <= counts[r["subject"]] <= 5 and r["subject"] not in group and len(group) < 12:
            group.append(r["subject"])
    people = {s: g for g, names in chosen.items() for s in names}
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject", "gender"])
        writer.writerows(
            [str(LFW / r["path"]), r["subject"], people[r["subject"]]] for r in rows if r["subject"] in people
        )
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("console")
    with running_server(home, model_cache, policy=EXAMPLE_POLICY, tenants=TENANTS,
                        settings={"FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}) as running:
        with running.client(running.keys["hope-ngo"]) as ngo:
            ngo.create_collection(GALLERY)
            for person, n in (("Tony_Blair", 1), ("Tony_Blair", 2), ("Colin_Powell", 1), ("Donald_Rumsfeld", 1)):
                ngo.index_faces(GALLERY, lfw(person, n), subject=person.lower(), purpose="victim_identification",
                                case_reference=CASES[0])
            for case, (person, n) in zip(CASES, (("Tony_Blair", 3), ("Colin_Powell", 2)), strict=True):
                found = ngo.search(GALLERY, lfw(person, n), purpose="victim_identification", case_reference=case)
                assert found["matches"]
            assert ngo.create_collection(KEPT, keep_thumbnails=True)["keep_thumbnails"] is True
            for person in ("Tony_Blair", "Colin_Powell"):
                ngo.index_faces(KEPT, lfw(person, 1), subject=person.lower(), purpose="victim_identification",
                                case_reference=KEPT_CASE)
        with running.client(running.keys["metro-police"]) as police:
            with pytest.raises(FacegateHTTPError, match="MORATORIUM"):
                police.search(GALLERY, lfw("Tony_Blair", 3), purpose="criminal_investigation", case_reference="PD-9")
        with running.client(running.keys["newsroom"]) as newsroom:
            newsroom.create_collection("archive")
            with pytest.raises(FacegateHTTPError, match="PURPOSE_NOT_APPROVED"):
                newsroom.search("archive", lfw("Tony_Blair", 3), purpose="photo_library")
        made = running.cli_all([
            ["key", "create", "hope-ngo"],
            ["approval", "request", "newsroom", "photo_library", "--note", "photo desk archive"],
            ["audit-bias", "--manifest", str(bias_manifest(home / "bias.csv")), "--group-by", "gender",
             "--purpose", "missing_person", "--record", "--dataset", "lfw", "--out", str(home / "bias-report"),
             "--workers", "1"],
        ])
        running.keys["hope-ngo-reviewer"] = str(made[0]["key"])
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("FACEGATE_CONSOLE_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def sign_in(driver: webdriver.Chrome, server: Server, tenant: str, path: str = "/console/",
            shown: str | None = None) -> None:
    """Sign in with the key stored under `tenant` (`shown`: the tenant the page names, if another)."""
    driver.delete_all_cookies()
    driver.get(f"{server.url}/console/login?next={path}")
    field = driver.find_element(By.NAME, "key")
    field.send_keys(server.keys[tenant])
    navigates(driver, lambda: field.send_keys(Keys.ENTER))  # the keyboard signs in
    assert driver.find_element(By.CSS_SELECTOR, ".who strong").text == (shown or tenant.removesuffix("-reviewer"))


def session_client(driver: webdriver.Chrome, server: Server) -> httpx.Client:
    """An HTTP client holding the browser's session cookie (and nothing else)."""
    cookie = driver.get_cookie("facegate_console")
    assert cookie is not None
    return httpx.Client(base_url=server.url, cookies={"facegate_console": cookie["value"]}, timeout=60)


def check_page(driver: webdriver.Chrome, axe: str, shots: Path, name: str) -> None:
    """No serious or critical accessibility violation; a screenshot for the docs."""
    assert axe_violations(driver, axe) == [], f"accessibility violations on {name}"
    screenshot(driver, shots / f"{name}.png")


def audit_rows(server: Server, operation: str) -> list[dict[str, object]]:
    return server.entries("operation = :operation", operation=operation)


def test_sign_in_and_sign_out(server: Server, browser: webdriver.Chrome, axe: str, shots: Path) -> None:
    browser.delete_all_cookies()
    browser.get(f"{server.url}/console/report")  # not signed in: sent to the form
    assert "/console/login" in browser.current_url
    assert browser.find_element(By.NAME, "key").get_attribute("type") == "password"
    check_page(browser, axe, shots, "login")
    before = len(audit_rows(server, "console_sign_in"))
    sign_in(browser, server, "board", "/console/report")
    assert browser.current_url.endswith("/console/report")
    cookie = browser.get_cookie("facegate_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert "expiry" in cookie and server.keys["board"] not in cookie["value"]
    signed = audit_rows(server, "console_sign_in")
    assert len(signed) == before + 1 and signed[-1]["tenant"] == "board" and signed[-1]["decision"] == "allow"
    token = cookie["value"]
    navigates(browser, browser.find_element(By.CSS_SELECTOR, "form.signout button").click)
    assert "signed out" in browser.find_element(By.CSS_SELECTOR, "main").text
    assert browser.get_cookie("facegate_console") is None
    out = audit_rows(server, "console_sign_out")
    assert out[-1]["tenant"] == "board" and out[-1]["decision"] == "allow"
    # The old token is dead on the server too, not only forgotten by this browser.
    with httpx.Client(base_url=server.url, cookies={"facegate_console": token}) as stale:
        assert stale.get("/console/report").status_code == 303


def test_wrong_key_is_refused_and_recorded(server: Server, browser: webdriver.Chrome) -> None:
    browser.delete_all_cookies()
    browser.get(f"{server.url}/console/login")
    wrong = "fg_0123456789abcdef_not-the-secret"
    minutes = {int(time.time() // 60)}
    navigates(browser, lambda: browser.find_element(By.NAME, "key").send_keys(wrong + Keys.ENTER))
    minutes.add(int(time.time() // 60))
    assert "UNAUTHENTICATED" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert browser.get_cookie("facegate_console") is None
    # Recorded as failed API keys are: the client address's minute is on the record (its
    # first refusal at once, the minute's count when it ends), however many attempts follow;
    # another test's failed sign-in may have opened this minute's window already.
    def details(row: dict) -> dict:
        return row["details"] if isinstance(row["details"], dict) else json.loads(str(row["details"]))

    windows = [
        (row, details(row)) for row in audit_rows(server, "console_sign_in")
        if row["decision"] == "deny" and details(row).get("aggregated") == "open"
    ]
    assert any(
        row["tenant"] is None and d["client"] == "127.0.0.1"
        and datetime.fromisoformat(d["window_start"]).timestamp() // 60 in minutes
        for row, d in windows
    ), windows[-3:]


def test_transparency_report(server: Server, browser: webdriver.Chrome, axe: str, shots: Path) -> None:
    sign_in(browser, server, "board", "/console/report")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "law-enforcement-2020" in main and "in force now" in main
    sectors = browser.find_element(By.CSS_SELECTOR, "#by-sector-h + figure + table").text
    assert re.search(r"law_enforcement \d+ \d+ [1-9]", sectors)  # police requests, some denied
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    check_page(browser, axe, shots, "report")
    with session_client(browser, server) as web:
        download = web.get("/console/report.json")
        cli = server.cli("audit", "report")
        assert download.status_code == 200 and set(download.json()) == set(cli)
        # The CLI's own read lands between the two (an entry without a purpose): the rest agrees.
        purposes = {k: v for k, v in download.json()["by_purpose"].items() if k != "(none)"}
        assert purposes == {k: v for k, v in cli["by_purpose"].items() if k != "(none)"}
        assert "victim_identification" in purposes
        rows = list(csv.DictReader(web.get("/console/report.csv").text.splitlines()))
        police = next(r for r in rows if r["dimension"] == "sector" and r["key"] == "law_enforcement")
        assert int(police["denied"]) >= 1
        period = web.get("/console/report.json", params={"since": "2020-06-01", "until": "2020-06-30"}).json()
        assert period["since"].startswith("2020-06-01") and period["until"].startswith("2020-07-01")
        assert period["total"]["requests"] == 0
    # A period before anything happened: nothing counted, the moratorium that began in it listed.
    browser.get(f"{server.url}/console/report?since=2020-06-01&until=2020-06-30")
    assert browser.find_element(By.ID, "totals").text.split() == ["Requests", "0", "Allowed", "0", "Denied", "0"]
    assert "law-enforcement-2020" in browser.find_element(By.TAG_NAME, "main").text


def test_audit_trail_filters_detail_and_chain(server: Server, browser: webdriver.Chrome, axe: str, shots: Path) -> None:
    sign_in(browser, server, "board", "/console/audit")
    assert browser.find_element(By.ID, "chain-state").text.startswith("Verified: entries 1 to")
    assert "No signed checkpoint" in browser.find_element(By.ID, "checkpoint").text
    browser.find_element(By.ID, "f-tenant").send_keys("metro-police")
    Select(browser.find_element(By.ID, "f-decision")).select_by_visible_text("deny")
    navigates(browser, browser.find_element(By.CSS_SELECTOR, "form.grid button").click)
    rows = browser.find_elements(By.CSS_SELECTOR, "#entries tbody tr")
    assert rows and all("metro-police" in r.text and "deny" in r.text for r in rows)
    assert any("moratorium:law-enforcement-2020" in r.text for r in rows)
    check_page(browser, axe, shots, "audit")
    navigates(browser, browser.find_element(By.CSS_SELECTOR, "#entries tbody tr a").click)
    detail = browser.find_element(By.ID, "entry").text
    assert "metro-police" in detail and "entry_hash" in detail
    check_page(browser, axe, shots, "entry")


def test_review_decided_by_clicking(server: Server, browser: webdriver.Chrome, axe: str, shots: Path) -> None:
    sign_in(browser, server, "hope-ngo-reviewer", "/console/review")
    cases = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "section.case h3")]
    assert any(CASES[0] in c for c in cases) and any(CASES[1] in c for c in cases)
    first = browser.find_element(By.CSS_SELECTOR, "section.case tbody tr")
    lead = int(first.get_attribute("id").removeprefix("lead-"))
    assert re.search(r"\d+\.\d\d \d\.\de-\d\d", first.text)  # similarity and estimated FMR
    check_page(browser, axe, shots, "review")
    first.find_element(By.NAME, "note").send_keys("same person: ears and hairline agree")
    navigates(browser, first.find_element(By.CSS_SELECTOR, "button[value=confirm]").click)
    decided = browser.find_element(By.ID, f"decided-{lead}").text
    assert "confirmed" in decided and "ears and hairline" in decided
    assert not browser.find_elements(By.ID, f"lead-{lead}")
    entry = next(e for e in reversed(audit_rows(server, "review")) if '"action":"review"' in str(e["details"]))
    details = json.loads(str(entry["details"]))
    assert details["review_id"] == lead and details["verdict"] == "confirmed" and entry["decision"] == "allow"


def test_form_post_without_csrf_token_is_refused(server: Server, browser: webdriver.Chrome) -> None:
    sign_in(browser, server, "hope-ngo-reviewer", "/console/review")
    lead = browser.find_element(By.CSS_SELECTOR, "section.case tbody tr").get_attribute("id").removeprefix("lead-")
    refusals = [e for e in audit_rows(server, "review") if e["code"] == "CSRF_INVALID"]
    with session_client(browser, server) as web:
        for form in ({"verdict": "reject"}, {"verdict": "reject", "csrf": "forged"}):
            refused = web.post(f"/console/review/{lead}", data=form)
            assert refused.status_code == 403 and "CSRF_INVALID" in refused.text
        assert f'id="lead-{lead}"' in web.get("/console/review").text  # still pending
        login = httpx.post(f"{server.url}/console/login", data={"key": server.keys["board"]})
        assert login.status_code == 403 and "facegate_console=" not in login.headers.get("set-cookie", "")
    recorded = [e for e in audit_rows(server, "review") if e["code"] == "CSRF_INVALID"]
    assert len(recorded) == len(refusals) + 2 and recorded[-1]["tenant"] == "hope-ngo"


def test_role_that_may_not_see_a_page_is_refused(server: Server, browser: webdriver.Chrome, axe: str,
                                                 shots: Path) -> None:
    sign_in(browser, server, "board")
    assert "Tenants and approvals" not in browser.find_element(By.TAG_NAME, "nav").text
    browser.get(f"{server.url}/console/tenants")
    assert browser.find_element(By.TAG_NAME, "h1").text == "403: Not allowed"
    assert "ROLE_REQUIRED" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    check_page(browser, axe, shots, "forbidden")
    with session_client(browser, server) as web:
        assert web.get("/console/tenants").status_code == 403
    sign_in(browser, server, "registry")
    browser.get(f"{server.url}/console/audit")
    assert browser.find_element(By.TAG_NAME, "h1").text == "403: Not allowed"


def test_tenants_and_approvals(server: Server, browser: webdriver.Chrome, axe: str, shots: Path) -> None:
    sign_in(browser, server, "registry", "/console/tenants")
    tenants = browser.find_element(By.ID, "tenants").text
    assert all(name in tenants for name, *_ in TENANTS)
    assert server.keys["hope-ngo"] not in browser.page_source
    row = browser.find_element(By.ID, "request-newsroom-photo_library")
    assert "photo desk archive" in row.text
    check_page(browser, axe, shots, "tenants")
    row.find_element(By.NAME, "note").send_keys("archive use only")
    navigates(browser, row.find_element(By.CSS_SELECTOR, "button[value=approve]").click)
    assert not browser.find_elements(By.ID, "request-newsroom-photo_library")
    described = server.cli("tenant", "describe", "newsroom")
    assert "photo_library" in described["purposes"]


def test_policy_page_and_simulator_agree_with_policy_check(server: Server, browser: webdriver.Chrome, axe: str,
                                                           shots: Path) -> None:
    sign_in(browser, server, "board", "/console/policy")
    assert browser.find_element(By.ID, "policy-version").text == server.cli("policy", "show")["version"]
    assert "in force until further notice" in browser.find_element(By.ID, "moratoria").text
    check_page(browser, axe, shots, "policy")
    questions = (
        ("metro-police", "criminal_investigation", "search_image", "PD-9", "2020-07-01T12:00:00+00:00"),
        ("metro-police", "criminal_investigation", "search_image", "PD-9", "2020-06-01T12:00:00+00:00"),
        ("hope-ngo", "victim_identification", "search_image", "", "2026-01-05T09:30:00+00:00"),
    )
    for tenant, purpose, operation, case, at in questions:
        form = browser.find_element(By.ID, "simulator")
        for field, value in (("s-tenant", tenant), ("s-case", case), ("s-at", at)):
            box = form.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        Select(form.find_element(By.ID, "s-purpose")).select_by_visible_text(purpose)
        Select(form.find_element(By.ID, "s-operation")).select_by_visible_text(operation)
        navigates(browser, form.find_element(By.CSS_SELECTOR, "button").click)
        shown = json.loads(browser.find_element(By.ID, "decision-json").text)
        args = ["policy", "check", "--tenant", tenant, "--purpose", purpose, "--operation", operation, "--at", at]
        assert shown == server.cli(*args, *(["--case-reference", case] if case else []))
    screenshot(browser, shots / "simulator.png")


def test_bias_audits(server: Server, browser: webdriver.Chrome, axe: str, shots: Path) -> None:
    sign_in(browser, server, "board", "/console/bias")
    requirement = browser.find_element(By.ID, "requirements").text
    assert "missing_person" in requirement and "lfw" in requirement
    audit = browser.find_element(By.CSS_SELECTOR, "article.audit")
    assert "lfw" in audit.text and "requirement of missing_person" in audit.text
    assert "gender=Female" in audit.text and "gender=Male" in audit.text
    check_page(browser, axe, shots, "bias")
    with session_client(browser, server) as web:
        report = web.get(audit.find_element(By.PARTIAL_LINK_TEXT, "(JSON)").get_attribute("href"))
        assert report.status_code == 200 and report.json()["group_by"] == ["gender"]
        assert web.get("/console/bias/999.json").status_code == 404


def test_overview_and_skip_link_by_keyboard(server: Server, browser: webdriver.Chrome, axe: str, shots: Path) -> None:
    sign_in(browser, server, "board")
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "nav a")]
    assert [link.removeprefix(server.url) for link in links] == [
        "/console/report", "/console/audit", "/console/policy", "/console/bias"]
    check_page(browser, axe, shots, "overview")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content"
    skip.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"


def http_sign_in(server: Server, key: str, next_path: str = "/console/") -> tuple[httpx.Client, httpx.Response]:
    """The sign-in form posted by a plain HTTP client (its CSRF cookie and field included)."""
    web = httpx.Client(base_url=server.url, timeout=60)
    form = web.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    return web, web.post("/console/login", data={"key": key, "csrf": csrf.group(1), "next": next_path})


def test_attacks_on_the_console_fail(server: Server) -> None:
    # Signing in never redirects off the console.
    web, answer = http_sign_in(server, server.keys["board"], "https://evil.example/")
    with closing(web):
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        page = web.get("/console/report")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    # A reviewer of another tenant cannot decide this tenant's lead, even with a valid form.
    with server.client(server.keys["hope-ngo"]) as ngo:
        ngo.search(GALLERY, lfw("Tony_Blair", 4), purpose="victim_identification", case_reference=CASES[0])
    reviews = server.cli("review", "list", "--tenant", "hope-ngo")["reviews"]
    lead = reviews[-1]["review_id"]
    web, _ = http_sign_in(server, server.keys["watch-ngo"], "/console/review")
    with closing(web):
        queue = web.get("/console/review")
        assert f'id="lead-{lead}"' not in queue.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', queue.text).group(1)
        refused = web.post(f"/console/review/{lead}", data={"verdict": "reject", "csrf": csrf})
        assert refused.status_code == 404 and "REVIEW_NOT_FOUND" in refused.text
    assert lead in [r["review_id"] for r in server.cli("review", "list", "--tenant", "hope-ngo")["reviews"]]
    # A revoked key ends the sessions it opened.
    spare = server.cli("key", "create", "board")
    web, _ = http_sign_in(server, str(spare["key"]))
    with closing(web):
        assert web.get("/console/report").status_code == 200
        server.cli("key", "revoke", str(spare["key_id"]))
        assert web.get("/console/report").status_code == 303
    # Oversized or malformed input is refused with a page, never a crash or a session.
    web, answer = http_sign_in(server, "fg_" + "x" * 5000)
    with closing(web):
        assert answer.status_code == 422 and "facegate_console=" not in answer.headers.get("set-cookie", "")
    web, answer = http_sign_in(server, server.keys["board"])
    with closing(web):
        assert web.get("/console/audit?operation=drop_table").status_code == 400
        assert web.get("/console/audit/0").status_code == 422
        assert web.get("/console/report?since=2026-02-30").status_code == 400


def test_an_auditor_sees_its_own_entries_and_an_operator_none(server: Server, browser: webdriver.Chrome) -> None:
    police_deny = next(e for e in reversed(audit_rows(server, "search_image")) if e["tenant"] == "metro-police")
    sign_in(browser, server, "city-auditor", "/console/audit")
    tenants = {r.find_elements(By.TAG_NAME, "td")[2].text
               for r in browser.find_elements(By.CSS_SELECTOR, "#entries tbody tr")}
    assert tenants == {"city-auditor"}  # its sign-in at least; nobody else's entry
    browser.get(f"{server.url}/console/audit?tenant=metro-police")
    assert browser.find_element(By.CSS_SELECTOR, "#entries tbody").text == "No entry matches."
    browser.get(f"{server.url}/console/audit/{police_deny['seq']}")  # another tenant's entry: missing
    assert browser.find_element(By.TAG_NAME, "h1").text == "404: Not found"
    assert "NOT_FOUND" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    browser.get(f"{server.url}/console/bias")  # the recorded audit is the local operator's
    assert not browser.find_elements(By.CSS_SELECTOR, "article.audit")
    assert "missing_person" in browser.find_element(By.ID, "requirements").text
    with session_client(browser, server) as web:
        own = web.get("/console/report.json").json()
        assert set(own["by_sector"]) == {"government"} and "law_enforcement" not in json.dumps(own)
        assert own["total"]["requests"] < server.cli("audit", "report")["total"]["requests"]
    sign_in(browser, server, "board", "/console/audit?tenant=metro-police")  # oversight: every tenant's
    assert any("moratorium:law-enforcement-2020" in r.text
               for r in browser.find_elements(By.CSS_SELECTOR, "#entries tbody tr"))
    with session_client(browser, server) as web:
        assert "law_enforcement" in web.get("/console/report.json").json()["by_sector"]
    recorded = [e for e in audit_rows(server, "audit_read") if e["tenant"] in ("city-auditor", "board")]
    scopes = {(e["tenant"], e["rule"], json.loads(str(e["details"])).get("scope")) for e in recorded}
    assert {("city-auditor", "role:auditor", "city-auditor"), ("board", "role:oversight", "all")} <= scopes
    sign_in(browser, server, "newsroom")  # an operator reads nothing of the trail
    for path in ("/console/audit", "/console/report", "/console/bias", f"/console/audit/{police_deny['seq']}"):
        browser.get(f"{server.url}{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "403: Not allowed", path
        assert "ROLE_REQUIRED" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text


def test_four_eyes_review_compares_key_holders(server: Server, browser: webdriver.Chrome) -> None:
    made = server.cli_all([["key", "create", "hope-ngo", "--holder", h] for h in ("alice", "alice", "bob")])
    server.keys.update({"alice-search": str(made[0]["key"]), "alice-review": str(made[1]["key"]),
                        "bob": str(made[2]["key"])})
    with server.client(server.keys["alice-search"]) as alice:
        found = alice.search(GALLERY, lfw("Colin_Powell", 5), purpose="victim_identification", case_reference=CASES[1])
        assert found["matches"]
    leads = [r for r in server.cli("review", "list", "--tenant", "hope-ngo")["reviews"]
             if r["searcher_holder"] == "alice" and r["status"] == "pending"]
    lead = leads[0]["review_id"]
    # Alice again, with another key: the same person, so the four-eyes purpose refuses her.
    sign_in(browser, server, "alice-review", "/console/review", shown="hope-ngo")
    assert "of alice" in browser.find_element(By.CSS_SELECTOR, ".who").text
    row = browser.find_element(By.ID, f"lead-{lead}")
    navigates(browser, row.find_element(By.CSS_SELECTOR, "button[value=confirm]").click)
    assert browser.find_element(By.TAG_NAME, "h1").text == "403: Not allowed"
    assert "FOUR_EYES_REQUIRED" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    browser.get(f"{server.url}/console/review")
    assert browser.find_elements(By.ID, f"lead-{lead}")  # still pending
    # Bob, a second person of the same tenant, decides it.
    sign_in(browser, server, "bob", "/console/review", shown="hope-ngo")
    row = browser.find_element(By.ID, f"lead-{lead}")
    row.find_element(By.NAME, "note").send_keys("second reviewer: same person")
    navigates(browser, row.find_element(By.CSS_SELECTOR, "button[value=confirm]").click)
    assert "confirmed" in browser.find_element(By.ID, f"decided-{lead}").text
    reviews = audit_rows(server, "review")
    refused = [e for e in reviews if '"error":"FOUR_EYES_REQUIRED"' in str(e["details"])]
    accepted = [e for e in reviews if f'"review_id":{lead}' in str(e["details"]) and '"verdict"' in str(e["details"])]
    assert [(e["key_holder"], e["key_id"]) for e in refused] == [("alice", made[1]["key_id"])]
    assert [(e["key_holder"], e["key_id"], e["decision"]) for e in accepted] == [("bob", made[2]["key_id"], "allow")]
    decided = next(r for r in server.cli("review", "list", "--tenant", "hope-ngo", "--status", "all")["reviews"]
                   if r["review_id"] == lead)
    assert (decided["status"], decided["searcher_holder"], decided["reviewer_holder"]) == ("confirmed", "alice", "bob")
    # The trail filtered by key holder: alice's refused review is there, bob's is not.
    sign_in(browser, server, "board", "/console/audit?key=alice&operation=review")
    shown = browser.find_elements(By.CSS_SELECTOR, "#entries tbody tr")
    assert shown and all(r.find_elements(By.TAG_NAME, "td")[3].text == "alice" for r in shown)
    seqs = {int(r.find_element(By.TAG_NAME, "a").text) for r in shown}
    assert {e["seq"] for e in refused} <= seqs and not {e["seq"] for e in accepted} & seqs


def test_review_shows_probe_and_candidate_side_by_side(server: Server, browser: webdriver.Chrome, axe: str,
                                                       shots: Path) -> None:
    plain_case = "CASE-2026-0120"
    with server.client(server.keys["hope-ngo"]) as ngo:  # leads of its own: no other test decides them
        for collection, case, (person, n) in ((KEPT, KEPT_CASE, ("Tony_Blair", 3)),
                                              (GALLERY, plain_case, ("Colin_Powell", 2))):
            assert ngo.search(collection, lfw(person, n), purpose="victim_identification", case_reference=case)["matches"]
        with pytest.raises(FacegateHTTPError) as loose:  # the opt-in is a JSON true, nothing else
            ngo.request("POST", "/v1/collections", json={"collection_id": "maybe", "keep_thumbnails": "yes"})
        assert loose.value.status == 422
    leads = server.cli("review", "list", "--tenant", "hope-ngo")["reviews"]
    kept = next(r for r in leads if r["case_reference"] == KEPT_CASE)["review_id"]
    plain = next(r for r in leads if r["case_reference"] == plain_case)["review_id"]
    sign_in(browser, server, "hope-ngo-reviewer", "/console/review")
    row = browser.find_element(By.ID, f"lead-{kept}")
    images = row.find_elements(By.CSS_SELECTOR, "img.face")
    assert [i.get_attribute("src").removeprefix(server.url) for i in images] == [
        f"/console/review/{kept}/probe.jpg", f"/console/review/{kept}/candidate.jpg"]
    alts = [i.get_attribute("alt") for i in images]
    assert alts[0].startswith("Probe: the face searched for in case " + KEPT_CASE)
    assert alts[1].startswith("Candidate: enrolled face") and "tony_blair" in alts[1]
    sizes = [browser.execute_script("return [arguments[0].complete, arguments[0].naturalWidth, arguments[0].naturalHeight]",
                                    i) for i in images]
    assert all(done and max(w, h) == 112 for done, w, h in sizes), sizes  # decoded by the browser
    plain_row = browser.find_element(By.ID, f"lead-{plain}")  # a collection without the opt-in
    assert not plain_row.find_elements(By.TAG_NAME, "img") and "not kept" in plain_row.text
    check_page(browser, axe, shots, "review-thumbnails")
    with session_client(browser, server) as web:
        for which in ("probe", "candidate"):
            got = web.get(f"/console/review/{kept}/{which}.jpg")
            assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
            assert got.headers["cache-control"] == "no-store" and got.content[:2] == b"\xff\xd8"
        assert web.get(f"/console/review/{plain}/probe.jpg").status_code == 404  # nothing kept
        assert web.get(f"/console/review/{kept}/template.jpg").status_code == 422
    shown = [e for e in audit_rows(server, "review") if f'"review_id":{kept}' in str(e["details"])
             and '"action":"review_thumbnail"' in str(e["details"])]
    assert len(shown) >= 4 and {e["tenant"] for e in shown} == {"hope-ngo"}  # each look is recorded
    # Another tenant's reviewer, a role that may not review, and no session at all: refused.
    sign_in(browser, server, "watch-ngo", "/console/review")
    with session_client(browser, server) as web:
        refused = web.get(f"/console/review/{kept}/probe.jpg")
        assert refused.status_code == 404 and "REVIEW_NOT_FOUND" in refused.text
        assert refused.headers["cache-control"] == "no-store"
    sign_in(browser, server, "board")
    with session_client(browser, server) as web:
        refused = web.get(f"/console/review/{kept}/candidate.jpg")
        assert refused.status_code == 403 and "ROLE_REQUIRED" in refused.text
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get(f"/console/review/{kept}/probe.jpg").status_code == 303


def test_a_reviewer_key_bound_to_one_case_sees_and_decides_only_its_leads(server: Server) -> None:
    """The console narrows a session to its key's binding as the API does: a key for one
    investigation neither lists nor decides the tenant's leads of another."""
    with server.client(server.keys["hope-ngo"]) as ngo:
        # enrolled photos as probes: certain leads, whatever threshold earlier tests left in force
        for person, n, case in (("Tony_Blair", 2, CASES[0]), ("Colin_Powell", 1, CASES[1])):
            found = ngo.search(GALLERY, lfw(person, n), purpose="victim_identification", case_reference=case)
            assert found["matches"], found
    pending = server.cli("review", "list", "--tenant", "hope-ngo", "--limit", "1000")["reviews"]
    other = next(r["review_id"] for r in reversed(pending) if r["case_reference"] == CASES[0])
    own = next(r["review_id"] for r in reversed(pending) if r["case_reference"] == CASES[1])
    bound = server.cli("key", "create", "hope-ngo", "--holder", "dana", "--purpose", "victim_identification",
                       "--case-reference", CASES[1])
    web, _ = http_sign_in(server, str(bound["key"]), "/console/review")
    with closing(web):
        queue = web.get("/console/review")
        assert f'id="lead-{own}"' in queue.text and f'id="lead-{other}"' not in queue.text
        assert CASES[0] not in queue.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', queue.text).group(1)
        refused = web.post(f"/console/review/{other}", data={"verdict": "reject", "csrf": csrf})
        assert refused.status_code == 404 and "REVIEW_NOT_FOUND" in refused.text
    assert other in [r["review_id"] for r in server.cli("review", "list", "--tenant", "hope-ngo", "--limit", "1000")["reviews"]]
