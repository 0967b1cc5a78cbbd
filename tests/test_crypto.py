"""Auth tokens are encrypted at rest, decrypt only with their key, and show only 4 characters."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bulkcall_core.crypto import decrypt_secret, encrypt_secret, mask_secret
from bulkcall_core.errors import SettingsError

TOKEN = "0123456789abcdef0123456789abcdef"


def test_round_trip_gives_back_the_plaintext(settings_factory) -> None:
    settings = settings_factory()
    assert decrypt_secret(settings, encrypt_secret(settings, TOKEN)) == TOKEN


def test_ciphertext_does_not_contain_the_plaintext(settings_factory) -> None:
    stored = encrypt_secret(settings_factory(), TOKEN)
    assert TOKEN not in stored and TOKEN[-8:] not in stored


def test_each_encryption_differs(settings_factory) -> None:
    """Fernet adds a random IV: equal tokens do not give equal stored values."""
    settings = settings_factory()
    assert encrypt_secret(settings, TOKEN) != encrypt_secret(settings, TOKEN)


def test_wrong_key_names_the_setting(settings_factory) -> None:
    stored = encrypt_secret(settings_factory(), TOKEN)
    other = settings_factory(bulkcall_secret_key=Fernet.generate_key().decode())
    with pytest.raises(SettingsError, match="BULKCALL_SECRET_KEY does not match"):
        decrypt_secret(other, stored)


def test_damaged_value_is_refused_the_same_way(settings_factory) -> None:
    with pytest.raises(SettingsError, match="BULKCALL_SECRET_KEY"):
        decrypt_secret(settings_factory(), "not a fernet token")


def test_generated_key_is_kept_between_settings(tmp_path) -> None:
    """Without BULKCALL_SECRET_KEY the key generated into data_dir is reused."""
    from bulkcall_core.settings import load_settings

    first = load_settings(data_dir=tmp_path, bulkcall_secret_key="")
    stored = encrypt_secret(first, TOKEN)
    again = load_settings(data_dir=tmp_path, bulkcall_secret_key="")
    assert decrypt_secret(again, stored) == TOKEN


def test_mask_shows_the_last_four_only() -> None:
    assert mask_secret(TOKEN) == "••••••••cdef"
    assert TOKEN[:-4] not in mask_secret(TOKEN)


@pytest.mark.parametrize("secret", [None, "", "short", "12345678"])
def test_mask_of_short_or_missing_secret_shows_nothing(secret) -> None:
    assert mask_secret(secret) == "••••••••"
