import pytest

from app.whatsapp.errors import ERROR_TABLE, ErrorAction, classify, classify_transport

EXPECTED = {
    ErrorAction.RETRY: [130429, 131056, 131000, 131016, 131057, 4, 80007],
    ErrorAction.PERMANENT: [131026, 131047, 131050, 131051, 131008, 131009, 132000, 132001, 132005, 132007, 132008,
                            132012, 130472, 131030, 130497, 131052, 131053, 100, 131021, 133010],
    ErrorAction.PAUSE: [131048, 132015, 132016],
    ErrorAction.DEFER_RECIPIENT: [131049],
    ErrorAction.STOP: [368, 131042, 131031, 190, 0, 3, 10, *range(200, 300)],
}


@pytest.mark.parametrize(("action", "code"), [(action, code) for action, codes in EXPECTED.items() for code in codes])
def test_every_listed_code_has_its_action_and_an_explanation(action, code):
    info = classify(code, 400)
    assert info.action is action
    assert info.code == code
    assert info.title.strip()
    assert info.explanation.strip().endswith(".")


def test_every_table_entry_explains_itself_in_one_sentence():
    for code, info in ERROR_TABLE.items():
        assert info.code == code
        assert info.explanation.count(". ") == 0, info.explanation
        assert 20 < len(info.explanation) < 140, info.explanation


def test_shop_owner_wording_for_undeliverable_numbers():
    assert classify(131026).explanation == "This number is not on WhatsApp or cannot receive messages from businesses."


def test_marketing_limit_defers_the_recipient_for_a_day():
    info = classify(131049)
    assert info.action is ErrorAction.DEFER_RECIPIENT
    assert info.retry_after_min >= 24 * 60 * 60


def test_stopped_marketing_is_flagged_as_an_opt_out():
    assert classify(131050).recipient_opted_out
    assert not classify(131026).recipient_opted_out


@pytest.mark.parametrize(("http_status", "action"), [
    (429, ErrorAction.RETRY), (500, ErrorAction.RETRY), (503, ErrorAction.RETRY), (None, ErrorAction.RETRY),
    (400, ErrorAction.PERMANENT), (404, ErrorAction.PERMANENT), (401, ErrorAction.PERMANENT),
])
def test_unknown_codes_fall_back_by_http_status(http_status, action):
    info = classify(999999, http_status) if http_status is not None else classify(None, None)
    assert info.action is action
    assert info.explanation


def test_unknown_code_reported_by_webhook_is_a_permanent_failure_not_a_network_retry():
    info = classify(987654)
    assert info.action is ErrorAction.PERMANENT
    assert info.code == 987654


def test_known_code_wins_over_http_status():
    assert classify(131026, 500).action is ErrorAction.PERMANENT
    assert classify(130429, 400).action is ErrorAction.RETRY


def test_transport_failures():
    connect, unknown = classify_transport(outcome_unknown=False), classify_transport(outcome_unknown=True)
    assert connect.action is unknown.action is ErrorAction.RETRY
    assert unknown.retry_after_min > connect.retry_after_min
    assert "may have received" in unknown.explanation
