"""Thin Telegram handlers: read the update, call one thing, reply."""
