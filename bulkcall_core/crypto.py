"""Twilio auth tokens at rest: Fernet encryption with the settings' key, and masking.

The key is BULKCALL_SECRET_KEY, or one generated once into DATA_DIR (see Settings.secret_key).
Decrypting with another key than the one a token was stored with fails with a message that
says so, instead of a cryptography traceback.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from bulkcall_core.errors import SettingsError
from bulkcall_core.settings import Settings

MASK = "••••••••"
# Characters of a secret left visible when masked, enough to tell two tokens apart.
VISIBLE_CHARACTERS = 4


def encrypt_secret(settings: Settings, plaintext: str) -> str:
    """The Fernet token (text) of `plaintext` under the settings' key."""
    return Fernet(settings.secret_key()).encrypt(plaintext.encode()).decode()


def decrypt_secret(settings: Settings, token: str) -> str:
    """The plaintext of a token made by `encrypt_secret`.

    Raises SettingsError when the key is not the one the token was stored with (or the
    stored value is damaged).
    """
    try:
        return Fernet(settings.secret_key()).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise SettingsError(
            "BULKCALL_SECRET_KEY does not match the key the tokens were stored with; set it "
            "back to that key (or copy data/secret.key from the machine that stored them), "
            "or add the channels again with their auth tokens",
            field="BULKCALL_SECRET_KEY",
        ) from None


def mask_secret(secret: str | None) -> str:
    """'••••••••1234': only the last four characters; the mask alone for short secrets."""
    if not secret or len(secret) <= VISIBLE_CHARACTERS * 2:
        return MASK
    return MASK + secret[-VISIBLE_CHARACTERS:]
