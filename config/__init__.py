"""Configuration: the settings model (environment variables ``PAYMENTS_*``) and the engine's data files."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
