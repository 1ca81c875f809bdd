"""The WhatsApp Cloud API boundary: the only package that knows Graph URLs, payload shapes and error codes.

Modules are imported explicitly (`app.whatsapp.client`, `.errors`, `.webhook`, `.simulator`); nothing here
runs at import time and nothing here imports other `app.*` packages.
"""
