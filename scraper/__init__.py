"""Everything that touches Douyin and TikTok: URLs, the browser pool, extractors, normalizing."""
