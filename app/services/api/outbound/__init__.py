"""Outbound webhooks: telling a business's own systems what happened, signed, retried and logged.

`events` is the only part on hot paths: webhook processing and campaign state changes call it to add rows to the
outbox (outbound_events) in their own transaction, set-based, and only for event types an enabled endpoint wants.
`delivery` fans events out to endpoints and posts them after the commit, in batches, from RQ jobs
(jobs/outbound_webhooks.py), with `transport` doing the HTTP and `signing` the HMAC. `endpoints` is the admins'
side: registering endpoints, the delivery log, redelivery, test events and the notices of automatic disabling.
The address guard (app/services/address_guard.py) refuses private and local receivers unless a setting allows them.
"""
