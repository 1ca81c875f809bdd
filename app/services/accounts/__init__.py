"""Staff accounts: users and their roles and passwords (`users`), signing in (`sign_in.sign_in`), and the
failed-login throttle shared by every web process (`login_throttle`)."""
