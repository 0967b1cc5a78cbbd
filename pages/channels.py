"""Channels: the Twilio accounts and numbers campaigns call from."""

from pages._common import page_header

page_header("Channels", "The Twilio accounts and numbers campaigns call from.")
