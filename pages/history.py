"""History: every campaign, its calls and outcomes, with charts and downloads."""

from pages._common import page_header

page_header("History", "Every campaign, its calls and their outcomes.")
