"""Phone numbers on pages read the way people write them (+91 98765 43210); exports and edit forms keep E.164."""

from datetime import UTC, datetime

import pytest

from tests.factories.analytics import add_reply


@pytest.mark.parametrize(("stored", "shown"), [
    ("+919876543210", "+91 98765 43210"),
    ("+447911123456", "+44 7911 123456"),
    ("+12025550123", "+1 202-555-0123"),
    ("919876543210", "919876543210"),  # no +: phonenumbers cannot tell the country, so it is shown as stored
    ("not a number", "not a number"),
    ("", ""),
    (None, ""),
])
def test_phone_filter_groups_numbers_and_leaves_what_it_cannot_read(app, stored, shown):
    with app.app_context():
        assert app.jinja_env.from_string("{{ number | phone }}").render(number=stored) == shown


def test_pages_show_grouped_numbers(app, staff_client, make_contact):
    contact_id = make_contact("+919876543210", tags=["VIP"])  # no name: the number is the heading
    add_reply(app, contact_id, at=datetime.now(UTC))
    assert "+91 98765 43210" in staff_client.get("/contacts/").get_data(as_text=True)
    detail = staff_client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    assert "<h1>+91 98765 43210</h1>" in detail
    assert "+91 98765 43210</a>" in staff_client.get("/messages/").get_data(as_text=True)


def test_exports_and_edit_form_keep_the_stored_number(app, staff_client, make_contact):
    contact_id = make_contact("+919876543210", "Asha Verma")
    export = staff_client.get("/contacts/export.csv").get_data(as_text=True)
    assert "+919876543210" in export and "+91 98765 43210" not in export
    form = staff_client.get(f"/contacts/{contact_id}/edit").get_data(as_text=True)
    assert 'value="+919876543210"' in form
