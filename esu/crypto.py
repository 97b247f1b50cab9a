"""Encryption at rest for business tokens and PINs.

``ESU_ENCRYPTION_KEYS`` holds one or more Fernet keys: the first encrypts, all decrypt, so a new key
goes first and the old ones stay until ``flask --app wsgi keys rotate`` has re-encrypted every value.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy.types import Text, TypeDecorator


class Vault:
    """Encrypts and decrypts with the configured keys."""

    def __init__(self, keys: list[bytes]):
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError(
                "a stored secret cannot be decrypted with ESU_ENCRYPTION_KEYS (was a key removed too early?)"
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """The same secret, encrypted under the first key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError("a stored secret cannot be decrypted with any key of ESU_ENCRYPTION_KEYS") from None


class DecryptionError(RuntimeError):
    """No configured key opens a stored value."""


def init_app(app) -> None:
    app.extensions["esu_vault"] = Vault(app.config["ESU_ENCRYPTION_KEY_LIST"])


def vault() -> Vault:
    return current_app.extensions["esu_vault"]


class EncryptedText(TypeDecorator):
    """A text column stored as Fernet ciphertext; Python code only ever sees the plaintext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else vault().encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else vault().decrypt(value)
