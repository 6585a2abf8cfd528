"""Live refresh that costs nothing when nothing changed.

Every open tab polls its table or overview every few seconds. A poll carries the ETag of what it
shows; the server answers 304 after one small query when nothing it could show has changed since.

What "changed" means: the change stamp (``ChangeStamp``, bumped after the commit of any write to
the models the pages show, see ``stamp.WATCHED_APPS``), the newest probe result and the newest
transition (both read from their primary-key index, so probe rounds and state changes count even
when they write in bulk), the user and their rights, the exact URL asked for, and the release.
A write that no signal sees still shows within ``STAMP_HEAL_SECONDS``: the stamp includes the
current time slice of that length (shifted per user and page, so that open tabs do not all
render again in the same second).
"""
