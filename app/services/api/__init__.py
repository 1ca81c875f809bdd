"""What a business's own systems use: the REST API with its keys, and outbound webhooks (`outbound`)."""
