import pytest

from tests.factories.api import api_client


@pytest.fixture
def api(app):
    """A client whose key has every permission."""
    return api_client(app)
