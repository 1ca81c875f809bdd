"""The reply desk: conversations and the 24-hour window (`conversations`), staff replies queued for the send
path (`replies`), and keyword auto-replies (`auto_replies`)."""
