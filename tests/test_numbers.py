"""Numbers in URLs and forms: an id or page number no database column can hold is a 404 or a sensible page,
never an overflow (500)."""

import pytest

BIG = "9999999999999999999999"


@pytest.mark.parametrize("path", [f"/contacts/{BIG}", f"/inbox/{BIG}", f"/campaigns/{BIG}/edit",
                                  f"/templates/{BIG}", f"/admin/auto-replies/{BIG}"])
def test_an_id_too_large_for_the_database_is_not_found(admin_client, path):
    assert admin_client.get(path).status_code == 404


@pytest.mark.parametrize("path", [f"/admin/audit?page={BIG}", "/admin/audit?page=²", "/messages/?campaign=²",
                                  "/messages/?error=²", f"/campaigns/new?template_id={BIG}",
                                  f"/admin/auto-replies/template-fields?template_id={BIG}"])
def test_numbers_in_query_strings_are_clamped_or_ignored(admin_client, path):
    assert admin_client.get(path).status_code == 200
