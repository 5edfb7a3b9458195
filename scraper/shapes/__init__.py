"""What the platforms' JSON looks like, and how it becomes shortvid's result shapes.

* ``values``: coercions (string numbers, ids, URL lists) both sites need;
* ``media``: renditions, which one to download, URL expiry;
* ``common``: the parts of a post (author, counters, music, images, media), ``Video``
  assembly with its ``missing`` fields, and ``PostPage`` / ``Profile``;
* ``tiktok`` / ``douyin``: each platform's key tables and shapes (item → ``Video``,
  page documents in every layout, statuses, post lists, profiles, "is this a post?");
* ``payload``: place any payload by its own keys (post, listing, profile, status).

Pure functions, no I/O. The real pages and responses are described in
``../shared/platforms.md`` and saved in ``../shared/real-captures/``.
"""
