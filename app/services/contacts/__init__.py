"""Contacts: finding them (`search`), changing them (`edits`), tags (`tags`), phone numbers (`phones`), exporting
the filtered list (`export`) and importing Excel/CSV files (`imports`, a package of its own)."""
