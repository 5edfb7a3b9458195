"""Storage tables and the API result shapes; imports neither Playwright nor aiohttp."""
