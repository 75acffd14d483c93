"""Vigil: Telegram channel monitoring for analysts."""

__version__ = "0.1.0"
