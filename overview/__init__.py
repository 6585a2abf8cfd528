"""The overview at "/": a monitoring home page over what the signed-in user may see.

Every figure comes from ``Connection.objects.restrict(user)`` (and ``all_objects`` for the
history of tombstones) and ``Environment.objects.restrict(user)``: a stranger learns nothing of
anyone else's connections, not even how many there are. The page costs a fixed number of
queries whatever the fleet's size (``summary.build``), with PostgreSQL's JIT off for them:
compiling the grouped passes cost more than running them.

- **Tiles.** A total, one per environment the user can see, and one for the connections in none
  of those environments (hidden when empty). Each counts the live connections per state (a
  connection in two environments counts in both tiles, once in the total); each count links to
  the table filtered by that environment and state (the no-environment tile's counts are not
  links: the table has no filter for "in no environment").
- **Uptime, last 24 h**: the share of the last 24 hours that the tile's connections spent
  reachable (Registered or Connected) out of the time they spent either reachable or lost
  (Disconnected or Not Found). Time in Discovered (not verified yet), Maintenance and Ignored
  counts neither way. It is read from the audit log, not the probe results: a connection whose
  state did not change within the window (``status_changed_at``, set by every transition, is
  older) spent it all in its current state, which the grouped count pass sums in SQL; only the
  connections that changed within the window are walked through their ``ConnectionTransition``
  rows (the state before the first change, then each change). So it costs the count pass plus
  work in proportion to the day's changes, not to the fleet or its probe history, and agrees with
  the states the table shows. A tile with no counted time says "no data", never 100 %; any lost
  time never rounds up to 100 %. Deleted connections are left out; a connection moved between
  environments takes its whole day with it. Why not the probe results: the newest
  ``PROBE_HISTORY_KEEP`` raw results of each connection are not rolled up yet (at a 30 s interval,
  the last 100 minutes), so a probe-based day must read up to 200 raw rows per connection on
  every refresh, on top of 24 roll-ups each; bench/overview.py times the roll-up part alone.
- **Needs attention**: Disconnected, Not Found, and failing authentication (the last probe
  failed with error class "auth", recorded as ``last_probe_class``, in any probed
  state). Worst first (authentication failures, then Disconnected, then Not Found), the
  longest-standing first within each; at most ``ATTENTION_LIMIT`` rows, then "and N more" with
  a link to the filtered table. Each row gives the reason recorded with the transition into its
  state, the last probe's error when it differs, and how long it has been in that state
  (``status_changed_at``). Connections in maintenance are not listed; they are counted beside.
- **Latest transitions**: the newest ``TRANSITIONS_LIMIT`` state changes of visible
  connections (deleted ones included, as the detail page keeps their history).

htmx polls the content every 15 s while the tab is visible and gets only the fragment back.
"""
