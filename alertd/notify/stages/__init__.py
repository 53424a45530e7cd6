"""The planner's stages, one file each, in the order a notice meets them (Alertmanager's
``notify/`` pipeline, smaller). Pure: ``now`` is passed in, results are values
(``Plan``, ``Decision``), and each stage owns only its own state.

- ``silence.py``: a silence covering the alert drops the notice; an alert still firing when
  its silence ends is released as a fresh notice.
- ``quiet.py``: while a channel's quiet hours are open its notices wait; when they end, one
  digest of what still fires.
- ``group.py``: a channel's notices within the rule's ``group_wait`` become one message.

``notify/planner.py`` runs them (and ``notify/alertmanager.py``, which Alertmanager
channels take instead).
"""
