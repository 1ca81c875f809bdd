"""Every outbound message, whatever its source: the message state table (`message_state`), claiming
(`claims`), the shared rate limiter (`rate_limit`), concurrent keep-alive sends (`sender`), recording results
with the error table and one backoff policy (`results`), and crash safety (`sweeper`).

Sources (campaigns, inbox replies, opt-out confirmations …) depend on this package, never the reverse."""
