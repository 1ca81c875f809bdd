"""Campaigns, from draft to finished run: the composer's drafts (`drafts`), audience rules (`audience`), the
schedule (`schedule`), the review and estimates before launch (`review`, `estimates`), launch and control
(`lifecycle`), the campaign state table (`campaign_state`), a campaign's batches and lanes through the send path
(`batches`, `lanes`), the test send (`test_send`) and the live campaign page (`page`, `send_rate`).

A campaign is one source of outbound messages: it decides what to send and how to react to a pause-class error;
app.services.sending does the rest."""
