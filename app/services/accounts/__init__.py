"""Staff accounts: users and their roles and passwords (`users`), what a new password must be (`password_rules`),
signing in and out and which sessions are still valid (`sign_in`), and the failed-login throttle shared by every
web process (`login_throttle`)."""
