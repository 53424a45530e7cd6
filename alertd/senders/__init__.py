"""Senders: the I/O edge where planned deliveries leave alertd.

``apprise_sender`` is the only module of alertd that imports apprise; ``console://`` is
alertd's own and prints to the daemon's stdout.
"""
