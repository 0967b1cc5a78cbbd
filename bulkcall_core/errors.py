"""The one exception family of the core.

Every message names the bad value and says what to do about it, so that a page can show it
beside the field concerned and the command line can print it as one line.
"""

from __future__ import annotations


class BulkCallError(Exception):
    """Base of every error the core raises on purpose.

    `field` names the input the error is about (a form field, a CLI option, a setting), so a
    caller can place the message next to it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class SettingsError(BulkCallError):
    """A setting (environment variable or secrets.toml entry) is missing or bad."""


class SourceError(BulkCallError):
    """A contact file cannot be read: not a spreadsheet, empty, encrypted, bad headers..."""


class ColumnNotFoundError(SourceError):
    """A named column is not in the file."""


class PlanError(BulkCallError):
    """The planning options do not fit the file (for example an unknown country)."""


class ContactListError(BulkCallError):
    """A contact list operation cannot be done (duplicate name, unknown list...)."""


class ChannelError(BulkCallError):
    """A Twilio channel is invalid, cannot be verified, or is unknown."""


class AudioError(BulkCallError):
    """A recording is not an accepted audio file."""


class ScheduleError(BulkCallError):
    """A campaign's time is in the past, too far ahead, or otherwise unusable."""


class CampaignError(BulkCallError):
    """A campaign cannot be created or cannot take the requested action."""


class TelephonyError(BulkCallError):
    """Twilio refused or failed a request; `code` and `status` carry Twilio's own values."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.code = code
        self.status = status
