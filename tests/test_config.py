"""Every setting has its one default in app/config.py, code reads it with no fallback, and a configured 0 stays 0."""

import re
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import launcher
from app.config import Config, TestConfig, persistent_secret_key
from app.services.admin import settings
from app.services.sending import results
from app.services.templates import library
from app.whatsapp import settings as whatsapp_settings
from app.whatsapp.errors import classify
from jobs.campaigns import sweep
from tests.conftest import run_jobs
from tests.factories import campaigns as support
from tests.factories.campaigns import add_contacts, assert_counters_match, claim_of, launch, make_campaign, statuses

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
ROOT = Path(__file__).resolve().parent.parent
READ = re.compile(r"""config\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]""")
FALLBACK = re.compile(r"""config\.get\(""")


def _sources() -> list[Path]:
    """Code that reads settings: everything but app/config.py, which defines them."""
    paths = [*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("jobs").rglob("*.py"),
             *(ROOT / name for name in ("worker.py", "scheduler.py", "wsgi.py"))]
    return [path for path in paths if path != ROOT / "app" / "config.py"]


def _config(**environ: str) -> Config:
    return Config({"SECRET_KEY": "test", **environ})  # a given SECRET_KEY: nothing is written to instance/


def test_every_setting_the_code_reads_has_its_default_in_config():
    names = {name for path in _sources() for name in READ.findall(path.read_text())}
    # Read by name in loops and by WhatsAppSettings.from_mapping.
    names |= {*settings.SECRETS, *settings.IDENTIFIERS, *library.REQUIRED_CONFIG, *whatsapp_settings._KEYS}
    assert len(names) > 20  # the scan found the reads
    config = _config()
    assert sorted(name for name in names if not hasattr(config, name)) == []


def test_code_reads_settings_without_a_fallback_of_its_own():
    fallbacks = [f"{path.relative_to(ROOT)}:{number}" for path in _sources()
                 for number, line in enumerate(path.read_text().splitlines(), 1) if FALLBACK.search(line)]
    assert fallbacks == []


def test_a_zero_from_the_environment_stays_zero():
    config = _config(SEND_RETRY_BASE_SECONDS="0", SEND_SETTLE_GRACE_SECONDS="0")
    assert (config.SEND_RETRY_BASE_SECONDS, config.SEND_SETTLE_GRACE_SECONDS) == (0, 0)


@pytest.mark.parametrize("name", ["SEND_RATE_PER_SECOND", "SEND_MAX_ATTEMPTS", "SEND_BATCH_SIZE"])
def test_a_zero_that_means_nothing_is_refused_by_name(name):
    with pytest.raises(ValueError, match=f"{name} must be more than 0"):
        _config(**{name: "0"})


def test_a_setting_that_is_not_a_number_is_refused_by_name():
    with pytest.raises(ValueError, match="SEND_MAX_ATTEMPTS should be a number"):
        _config(SEND_MAX_ATTEMPTS="five")


def test_the_test_config_ignores_the_machine_environment(monkeypatch):
    monkeypatch.setenv("SEND_MAX_ATTEMPTS", "9")
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "a-real-token")
    config = TestConfig("sqlite://", "redis://127.0.0.1:1/0")
    assert (config.SEND_MAX_ATTEMPTS, config.WHATSAPP_ACCESS_TOKEN) == (5, None)


def test_a_zero_retry_base_retries_as_soon_as_whatsapp_allows(app):
    app.config["SEND_RETRY_BASE_SECONDS"] = 0
    throttled = classify(130429)  # WhatsApp asks for at least 1 s
    with app.app_context():
        assert 1 <= results.retry_delay(3, throttled) <= 1.25  # the 2 s default would give 8 s


def test_a_zero_grace_period_settles_an_unanswered_send_at_the_next_sweep(app, sim):
    app.config["SEND_SETTLE_GRACE_SECONDS"] = 0
    add_contacts(app, 2)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        claim_of(campaign_id, 10, datetime.now(UTC))  # then the worker died
        report = sweep()
    run_jobs(app)
    assert report["returned"] == 2
    assert statuses(app, campaign_id) == {"sent": 2}
    assert_counters_match(app, campaign_id)


def test_trusted_proxy_hops_default_to_none_and_refuse_a_negative_count():
    assert _config().TRUSTED_PROXY_HOPS == 0
    assert _config(TRUSTED_PROXY_HOPS="2").TRUSTED_PROXY_HOPS == 2
    with pytest.raises(ValueError, match="TRUSTED_PROXY_HOPS must be 0 or more"):
        _config(TRUSTED_PROXY_HOPS="-1")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_instance_folder_and_the_secret_key_are_private(tmp_path, umask_022):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)  # as an earlier version left it
    persistent_secret_key(instance)
    assert _mode(instance) == 0o700 and _mode(instance / "secret_key") == 0o600
    fresh = tmp_path / "fresh" / "instance"
    persistent_secret_key(fresh)
    assert _mode(fresh) == 0o700


def test_what_the_launched_processes_create_is_private(tmp_path, umask_022):
    instance = launcher.private_instance(tmp_path / "instance")
    # A child process, as the database, Redis and the workers are.
    subprocess.run([sys.executable, "-c", "open('broadcaster.db', 'w').close(); import os; os.mkdir('redis')"],
                   cwd=instance, check=True)
    assert _mode(instance) == 0o700 and _mode(instance / "broadcaster.db") == 0o600
    assert _mode(instance / "redis") == 0o700
