"""Message templates: the local copy and its sync with Meta (`library`), Meta's rules for new ones (`rules`),
reading a template's components (`parts`), and filling one in for a contact (`rendering`)."""
