"""The notify planner: pure, clock-injected decisions about what to send, where and when.

Place in the data flow: the engine's notifications come in (through the store's inbox);
messages (channel, title, body) go out to the outbox and the senders. Nothing here does
I/O or reads the clock.

- ``planner.py``: the facade over the stages (``stages/``: silence -> quiet -> group, one
  file each), with ``next_deadline``/``on_timer``; ``alertmanager.py`` is the stage that
  Alertmanager channels take instead.
- ``plan.py``: what goes in (``Entry``, ``Settled``) and out (``Plan``, ``Message``,
  ``Outgoing``); ``decision.py``: ``Decision``/``Reason`` and their words (``describe``).
- ``silences.py``: which silence covers an alert.
- ``mute.py``: quiet hours in a channel's time zone.
- ``message.py`` and ``templates.py``: the words, alone, grouped and as a digest.
- ``schedule.py``: when a failed delivery is tried again, and when it is given up
  (``after_attempt``: one decision per attempt).
"""
