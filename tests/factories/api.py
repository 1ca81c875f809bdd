"""API keys and an API client for tests: the key is made through the service, as the admin page does."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.api import keys
from app.services.api.scopes import ALL


@dataclass
class ApiClient:
    """A Flask test client that sends the bearer key on every request."""

    client: object
    key: str

    def request(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


def make_key(app, scopes=ALL, name: str = "Shop") -> str:
    """A new key's full secret."""
    with app.app_context():
        return keys.create_key(name, list(scopes), None)[1]


def api_client(app, scopes=ALL) -> ApiClient:
    return ApiClient(app.test_client(), make_key(app, scopes))
