"""`flask users …` commands for managing accounts from a shell."""

import click
from flask import Flask
from flask.cli import AppGroup

from app.models import Role
from app.services.accounts import users
from app.services.errors import NotFound, ServiceError

users_cli = AppGroup("users", help="Manage dashboard users.")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)


def _password_or_generate(password: str | None, generate: bool) -> tuple[str, bool]:
    """Return (password, was_generated): the given one, a prompted one, or a generated one."""
    if password:
        return password, False
    if not generate:
        entered = click.prompt("Password (leave empty to generate one)", default="", hide_input=True,
                               show_default=False)
        if entered:
            if click.prompt("Repeat the password", hide_input=True) != entered:
                raise click.ClickException("The passwords did not match.")
            return entered, False
    return users.generate_password(), True


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.STAFF.value, show_default=True)
@click.option("--password", help="Password to set; asked for when omitted.")
@click.option("--generate-password", is_flag=True, help="Generate a password instead of asking.")
def create_user(email: str, role: str, password: str | None, generate_password: bool) -> None:
    """Create a user with EMAIL."""
    password, generated = _password_or_generate(password, generate_password)
    try:
        user = users.create_user(email, password, role)
    except (ServiceError, NotFound) as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Created {user.role} {user.email}")
    if generated:
        click.echo(f"Password: {password}")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password", help="New password; asked for when omitted.")
@click.option("--generate-password", is_flag=True, help="Generate a password instead of asking.")
def set_password(email: str, password: str | None, generate_password: bool) -> None:
    """Set a new password for the user with EMAIL."""
    password, generated = _password_or_generate(password, generate_password)
    try:
        user = users.set_password(email, password)
    except (ServiceError, NotFound) as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Password changed for {user.email}")
    if generated:
        click.echo(f"Password: {password}")


@users_cli.command("ensure-admin")
@click.option("--email", envvar="ADMIN_EMAIL", default="admin@example.com", show_default=True)
@click.option("--password", envvar="ADMIN_PASSWORD")
def ensure_admin(email: str, password: str | None) -> None:
    """Create the first admin if there is none (used by `make run`)."""
    try:
        created = users.ensure_first_admin(email, password)
    except (ServiceError, NotFound) as error:
        raise click.ClickException(error.message) from error
    if created is None:
        return
    user, generated = created
    click.echo(f"Created the first admin: {user.email}")
    if generated:
        click.echo(f"  Password: {generated}   (shown once; change it with `flask users set-password {user.email}`)")
