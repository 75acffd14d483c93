"""Vigil: Telegram channel monitoring for analysts."""

from bot import lazy_aiogram

__version__ = "0.1.0"

# Before anything imports aiogram: its Telegram models are built on first use (aiogram #1513).
# This only adds an import hook; nothing is imported or built here.
lazy_aiogram.install()
