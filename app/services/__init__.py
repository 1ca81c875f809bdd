"""Business rules, one package per domain (each package's docstring says what it owns and its entry points).

Views and jobs call these; they never import views or jobs. `errors` (domain errors) and `spreadsheets` (safe
CSV/XLSX writing) are shared by several domains."""
