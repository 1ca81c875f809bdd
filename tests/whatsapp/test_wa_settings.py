import pytest

from app.whatsapp.settings import WhatsAppSettings


def test_from_mapping_reads_every_key():
    settings = WhatsAppSettings.from_mapping({
        "WHATSAPP_API_BASE_URL": "http://127.0.0.1:5055/", "WHATSAPP_API_VERSION": "v21.0",
        "WHATSAPP_ACCESS_TOKEN": "token", "WHATSAPP_PHONE_NUMBER_ID": 1234, "WHATSAPP_BUSINESS_ACCOUNT_ID": "5678",
        "WHATSAPP_APP_SECRET": "secret", "WHATSAPP_VERIFY_TOKEN": "verify", "WHATSAPP_SEND_CONCURRENCY": "8",
    })
    assert settings.base_url == "http://127.0.0.1:5055"
    assert settings.graph_url == "http://127.0.0.1:5055/v21.0"
    assert (settings.access_token, settings.phone_number_id, settings.business_account_id) == ("token", "1234", "5678")
    assert (settings.app_secret, settings.verify_token, settings.concurrency) == ("secret", "verify", 8)


def test_missing_and_none_keys_take_defaults_but_the_address_is_required():
    settings = WhatsAppSettings.from_mapping({"WHATSAPP_API_BASE_URL": "https://graph.facebook.com",
                                              "WHATSAPP_API_VERSION": "v23.0", "WHATSAPP_ACCESS_TOKEN": None,
                                              "UNRELATED": "x"})
    assert settings == WhatsAppSettings(base_url="https://graph.facebook.com", api_version="v23.0")
    assert settings.graph_url == "https://graph.facebook.com/v23.0"
    assert (settings.access_token, settings.concurrency, settings.connect_timeout, settings.read_timeout) == (
        "", 16, 5.0, 20.0)
    with pytest.raises(ValueError, match="WHATSAPP_API_VERSION"):
        WhatsAppSettings.from_mapping({"WHATSAPP_API_BASE_URL": "https://graph.facebook.com"})
