"""Thin aiohttp handlers, one module per group of vendor routes."""
