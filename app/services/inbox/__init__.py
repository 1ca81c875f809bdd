"""The reply desk: conversations and the 24-hour window (`conversations`), staff replies queued for the send
path (`replies`), keyword auto-replies (`auto_replies`), the thread's one-line notes for messages that never went
out (`notes`) and a customer's changed number offered to staff (`numbers`)."""
