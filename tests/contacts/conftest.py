"""Fixtures the contact and import tests share: uploads go to a temporary instance folder, and a client that walks
the import pages."""

from pathlib import Path

import pytest

from tests.factories.imports import ImportPages


@pytest.fixture(autouse=True)
def instance_dir(app, tmp_path) -> Path:
    app.config["INSTANCE_DIR"] = str(tmp_path / "instance")
    return tmp_path / "instance"


@pytest.fixture
def pages(staff_client, app) -> ImportPages:
    return ImportPages(staff_client, app)
