"""Outbound webhooks: telling a business's own systems what happened, signed, retried and logged.

`events` is the only part on hot paths: webhook processing, campaign state changes and every opt-out or opt-in (the
customer's, staff's one by one or in bulk, the API's, WhatsApp's 131050) call it to add rows to the outbox
(outbound_events) in their own transaction, set-based, and only for event types an enabled endpoint wants. The
sending package may not import it, so a send's 131050 reaches it through the source's `settle` (campaigns.engine,
and jobs.sending for the direct lane).
`delivery` fans events out to endpoints and posts them after the commit, in batches, from RQ jobs
(jobs/outbound_webhooks.py), with `transport` doing the HTTP and `signing` the HMAC. `endpoints` is the admins'
side: registering endpoints, the delivery log, redelivery, test events and the notices of automatic disabling.
The address guard (app/services/address_guard.py) refuses private and local receivers unless a setting allows them.
"""
