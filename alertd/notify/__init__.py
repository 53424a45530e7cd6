"""The notify planner: pure, clock-injected decisions about what to send, where and when.

Place in the data flow: engine transitions come in; deliveries (channel, title, body) go out
to the senders. Nothing here does I/O or reads the clock.
"""
