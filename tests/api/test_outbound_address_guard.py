"""The address guard: only http(s), and no private, loopback or link-local receivers unless an admin allows them;
checked when an endpoint is saved and again at each delivery."""

from __future__ import annotations

import ipaddress

import pytest

from app.services.address_guard import AddressRefused, check_url, is_public
from app.services.api.outbound import endpoints
from jobs.outbound_webhooks import sweep_outbound_webhooks
from tests.conftest import csrf_token_from
from tests.factories import outbound
from tests.factories.outbound import allow_private, deliveries, make_endpoint

receiver = outbound.receiver  # fixture
ALL_EVENTS = ["message.delivered", "contact.opted_out"]


def _add(client, url, events=ALL_EVENTS):
    token = csrf_token_from(client.get("/admin/outbound-webhooks/").get_data(as_text=True))
    return client.post("/admin/outbound-webhooks/", data={"csrf_token": token, "url": url, "events": events})


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.5", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                                     "224.0.0.1"])
def test_non_public_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


def test_public_addresses_are_public():
    assert is_public(ipaddress.ip_address("93.184.216.34")) and is_public(ipaddress.ip_address("2606:4700::1"))


@pytest.mark.parametrize("url", ["http://localhost:8080/hooks", "http://127.0.0.1/", "https://[::1]/x",
                                 "http://169.254.169.254/latest/meta-data"])
def test_loopback_and_link_local_urls_are_refused_unless_allowed(url):
    with pytest.raises(AddressRefused, match="private or local address"):
        check_url(url)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1/", "example.com",
                                 "javascript:alert(1)"])
def test_other_schemes_are_refused_even_when_private_addresses_are_allowed(url):
    with pytest.raises(AddressRefused, match="must start with http:// or https://"):
        check_url(url, allow_private=True)


def test_the_admin_page_refuses_a_loopback_receiver_by_default(app, admin_client):
    response = _add(admin_client, "http://127.0.0.1:9/hooks")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "127.0.0.1 is a private or local address" in html and "allows private ones in Settings" in html
    assert "No endpoints yet" in html


def test_the_admin_page_accepts_it_once_the_setting_allows_it(app, admin_client):
    allow_private(app, True)
    response = _add(admin_client, "http://127.0.0.1:9/hooks")
    assert response.status_code == 302
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "http://127.0.0.1:9/hooks" in page and "whsec_" in page


def test_the_admin_page_refuses_other_schemes_and_no_events(app, admin_client):
    allow_private(app, True)
    html = _add(admin_client, "ftp://127.0.0.1/hooks").get_data(as_text=True)
    assert "The address must start with http:// or https://." in html
    html = _add(admin_client, "http://127.0.0.1:9/hooks", events=[]).get_data(as_text=True)
    assert "Choose at least one event to receive." in html


def test_deliveries_check_the_address_again(app, receiver):
    endpoint_id = make_endpoint(app, receiver)  # saved while private addresses were allowed
    allow_private(app, False)
    with app.app_context():
        endpoints.send_test(endpoint_id)
        sweep_outbound_webhooks()
    [delivery] = deliveries(app)
    assert receiver.received == []
    assert delivery.status == "pending" and "private or local address" in delivery.error
