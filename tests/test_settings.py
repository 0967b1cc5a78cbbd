"""Settings: one object, bad values named at start."""

import pytest

from bulkcall_core.errors import SettingsError
from bulkcall_core.settings import load_settings


def test_bad_database_url_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="DATABASE_URL must start with postgresql://"):
        load_settings(data_dir=tmp_path, database_url="mysql://x")


def test_bad_secret_key_says_how_to_make_one(tmp_path):
    with pytest.raises(SettingsError, match="BULKCALL_SECRET_KEY must be a Fernet key"):
        load_settings(data_dir=tmp_path, bulkcall_secret_key="short")


def test_postgres_url_is_mapped_to_psycopg3(tmp_path):
    s = load_settings(data_dir=tmp_path, database_url="postgresql://u@h:5432/db")
    assert s.sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"


def test_default_database_is_a_sqlite_file_under_data_dir(tmp_path):
    assert (
        load_settings(data_dir=tmp_path).sqlalchemy_url == f"sqlite:///{tmp_path}/bulkcall.sqlite3"
    )


def test_environment_variable_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://calls.example.com/")
    assert load_settings(data_dir=tmp_path).public_base_url == "https://calls.example.com"


def test_secrets_toml_is_read_case_insensitively(tmp_path, monkeypatch):
    toml = tmp_path / "secrets.toml"
    toml.write_text('PUBLIC_BASE_URL = "https://x.example.org"\n[auth]\nredirect_uri = "y"\n')
    monkeypatch.setenv("BULKCALL_SECRETS_TOML", str(toml))
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    assert load_settings(data_dir=tmp_path).public_base_url == "https://x.example.org"


def test_generated_secret_key_is_stable_and_private(tmp_path):
    s = load_settings(data_dir=tmp_path)
    key = s.secret_key()
    assert key == load_settings(data_dir=tmp_path).secret_key()
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_login_is_configured_by_password_or_an_oidc_section(tmp_path, monkeypatch):
    """Without either, the launcher keeps the dashboard on localhost."""
    toml = tmp_path / "secrets.toml"
    monkeypatch.setenv("BULKCALL_SECRETS_TOML", str(toml))
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    assert not load_settings(data_dir=tmp_path).login_configured
    assert load_settings(data_dir=tmp_path, dashboard_password="s3cret").login_configured
    toml.write_text('[auth]\nredirect_uri = "x"\n')
    assert not load_settings(data_dir=tmp_path).login_configured
    toml.write_text('[auth.google]\nclient_id = "abc"\n')
    assert load_settings(data_dir=tmp_path).login_configured
