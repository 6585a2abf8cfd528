"""Notifications: state changes reach the people who own a connection, once, in their tool.

The flow, one way: ``lifecycle.transition`` records a transition; a signal writes its ``Event``
in the same transaction (the outbox). ``routing.route_events`` claims unrouted events, decides
per channel (rules, quiet reasons, cool-down, recovery pairing) and queues ``Message`` rows;
``delivery.deliver_due`` groups, rate-limits and sends them, logging each ``Delivery``.
"""
