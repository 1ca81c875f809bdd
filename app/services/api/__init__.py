"""The public REST API (/api/v1) for a business's own systems: keys and scopes (`keys`, `scopes`), the per-key
request rate (`throttle`), problem documents (`problems`), the request and response shapes the OpenAPI document is
generated from (`schemas`), and what each endpoint does (`contacts`, `messages`, `campaigns`, `templates`; `bulk` for
contact upserts too large for one request, run as a contact import with a status URL).

API sends are one more source of outbound messages: `messages` queues them through app.services.sending.direct
with MessageSource.API. Outbound webhooks (registered endpoints, signed deliveries) live in `outbound`.
"""
