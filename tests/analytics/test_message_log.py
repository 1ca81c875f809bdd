"""The message log: filters (campaign, status, error code, dates, phone in any format) and keyset paging."""

from __future__ import annotations

import re
from datetime import timedelta

from app.models import Role
from tests.factories.analytics import add_contacts, add_messages, add_reply, make_campaign, phone, utc

DAY = utc(2025, 11, 1, 6, 0)  # 11:30 in Asia/Kolkata
RESULTS = {"HX-Request": "true", "HX-Target": "message-results"}


def seed(app) -> dict[str, int]:
    contacts = add_contacts(app, 6)
    diwali = make_campaign(app, "Diwali offer")
    add_messages(app, diwali, contacts[0:3], "read", DAY)
    add_messages(app, diwali, contacts[3:5], "failed", DAY, error_code=131026)
    add_messages(app, diwali, contacts[5:6], "failed", DAY, error_code=131050)
    newyear = make_campaign(app, "New year sale")
    add_messages(app, newyear, contacts[0:2], "delivered", DAY + timedelta(days=2))
    reply = add_reply(app, contacts[0], DAY + timedelta(days=3), "Do you deliver to Pune?")
    return {"diwali": diwali, "newyear": newyear, "reply": reply, "first_contact": contacts[0]}


def phones_listed(html: str) -> list[str]:
    """The numbers in the log, as stored (the page groups them: +91 98000 00001)."""
    return [shown.replace(" ", "") for shown in re.findall(r'class="mono" href="/contacts/\d+">([^<]+)<', html)]


def test_every_message_newest_first_with_campaign_status_error_and_times(app, staff_client):
    seed(app)
    html = staff_client.get("/messages/").get_data(as_text=True)
    assert "<h1>Messages</h1>" in html and 'style="' not in html
    assert len(phones_listed(html)) == 9 and phones_listed(html)[0] == phone(1)  # the reply is newest
    assert "Do you deliver" not in html and "Reply from customer" in html and "Received (reply)" in html
    assert "Diwali offer" in html and "New year sale" in html
    assert "Message undeliverable" in html and "This number is not on WhatsApp" in html
    assert "Read 01 Nov 11:30" in html  # the timeline, in the business's timezone


def test_filter_by_campaign_status_and_error_code(app, staff_client):
    ids = seed(app)
    by_campaign = staff_client.get(f"/messages/?campaign={ids['newyear']}").get_data(as_text=True)
    assert phones_listed(by_campaign) == [phone(2), phone(1)]
    failed = staff_client.get(f"/messages/?campaign={ids['diwali']}&status=failed").get_data(as_text=True)
    assert sorted(phones_listed(failed)) == [phone(4), phone(5), phone(6)]
    by_code = staff_client.get("/messages/?error=131050").get_data(as_text=True)
    assert phones_listed(by_code) == [phone(6)] and 'value="131050" selected' in by_code
    nothing = staff_client.get("/messages/?status=skipped").get_data(as_text=True)
    assert phones_listed(nothing) == [] and "No messages match these filters." in nothing
    ignored = staff_client.get("/messages/?status=bogus&campaign=abc&error=99999999999999").get_data(as_text=True)
    assert len(phones_listed(ignored)) == 9


def test_filter_by_local_dates(app, staff_client):
    seed(app)
    first_day = staff_client.get("/messages/?date_from=2025-11-01&date_to=2025-11-01").get_data(as_text=True)
    assert len(phones_listed(first_day)) == 6
    later = staff_client.get("/messages/?date_from=2025-11-02").get_data(as_text=True)
    assert len(phones_listed(later)) == 3
    assert phones_listed(staff_client.get("/messages/?date_to=2025-10-31").get_data(as_text=True)) == []


def test_filter_by_phone_in_any_format_or_by_name(app, staff_client):
    seed(app)
    for typed in ("+91 98000 00001", "098000 00001", "9800000001", "+91-980-000-0001", "919800000001"):
        html = staff_client.get("/messages/", query_string={"phone": typed}).get_data(as_text=True)
        assert set(phones_listed(html)) == {phone(1)}, typed
        assert len(phones_listed(html)) == 3, typed
    partial = staff_client.get("/messages/?phone=0000006").get_data(as_text=True)
    assert phones_listed(partial) == [phone(6)]
    by_name = staff_client.get("/messages/?phone=customer 2").get_data(as_text=True)
    assert set(phones_listed(by_name)) == {phone(2)}


def test_the_filter_form_swaps_only_the_results(app, staff_client):
    ids = seed(app)
    fragment = staff_client.get(f"/messages/?campaign={ids['newyear']}", headers=RESULTS).get_data(as_text=True)
    assert "<html" not in fragment and 'id="message-filters"' not in fragment
    assert phones_listed(fragment) == [phone(2), phone(1)]
    assert f'name="campaign" value="{ids["newyear"]}"' in fragment  # the export buttons carry the filters


def test_keyset_pages_walk_older_and_back_newer_without_gaps(app, staff_client):
    contacts = add_contacts(app, 120)
    campaign_id = make_campaign(app)
    for index, contact_id in enumerate(contacts):  # three messages share each second: ties broken by id
        add_messages(app, campaign_id, [contact_id], "sent", DAY + timedelta(seconds=index // 3))
    seen, url, pages = [], "/messages/", []
    while url:
        html = staff_client.get(url).get_data(as_text=True)
        pages.append(html)
        seen += phones_listed(html)
        older = re.search(r'href="(/messages/\?older=[^"]+)"', html)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert [len(phones_listed(page)) for page in pages] == [50, 50, 20]
    assert seen == [phone(n) for n in range(120, 0, -1)]  # newest first, each exactly once
    assert "← Newer" not in pages[0] and "← Newer" in pages[2] and "Older →" not in pages[2]
    newer = re.search(r'href="(/messages/\?newer=[^"]+)"', pages[2]).group(1).replace("&amp;", "&")
    back = staff_client.get(newer).get_data(as_text=True)
    assert phones_listed(back) == phones_listed(pages[1]) and "← Newer" in back and "Older →" in back


def test_paging_keeps_the_filters(app, staff_client):
    contacts = add_contacts(app, 60)
    campaign_id = make_campaign(app)
    add_messages(app, campaign_id, contacts[:55], "failed", DAY, error_code=131026)
    add_messages(app, campaign_id, contacts[55:], "read", DAY)
    html = staff_client.get("/messages/?status=failed").get_data(as_text=True)
    older = re.search(r'href="(/messages/\?[^"]*older=[^"]+)"', html).group(1).replace("&amp;", "&")
    assert "status=failed" in older
    assert len(phones_listed(staff_client.get(older).get_data(as_text=True))) == 5


def test_bad_cursors_are_ignored_and_a_login_is_needed(app, client, auth, make_user):
    seed(app)
    assert client.get("/messages/").headers["Location"].startswith("/login")
    auth.login(make_user(Role.STAFF).email)
    assert len(phones_listed(client.get("/messages/?older=garbage").get_data(as_text=True))) == 9
    assert client.get("/messages/?older=99999999999999999999.1").status_code == 200
