"""Live refresh that costs nothing when nothing changed.

Every open tab polls its table or overview every few seconds. A poll carries the ETag of what it
shows; the server answers 304 after one small query when nothing it could show has changed since.

What "changed" means: the sum of the change stamps of the scopes the user may see (stamp.py:
bumped after the commit of every write to those scopes), the user and their rights, the exact
URL asked for, and the release (a digest of templates, scripts and styles). A write that no
signal sees and no writer names still shows within ``LIVE_STAMP_HEAL_SECONDS``: the ETag
includes the current time slice of that length (shifted per user and page, so that open tabs do
not all render again in the same second).
"""
