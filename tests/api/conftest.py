import pytest

from app.services.api import messages
from tests.factories.api import api_client


@pytest.fixture
def api(app):
    """A client whose key has every permission."""
    messages.forget_approved_templates()  # templates are made afresh by each test, under the same names
    return api_client(app)
