"""Business rules. Views and jobs call these; they never import views or jobs."""
