"""Fake ELEMENT IoT and Navixy servers on 127.0.0.1, standing in for the real services.

In the data flow they sit where the internet would: ``sources/`` connects to them exactly
as it connects to ELEMENT and Navixy, so alertd's end-to-end tests and ``alertd demo``
run offline, without accounts. Each fake speaks its protocol as the seed pages and
PROTOCOL-NOTES describe it, and exposes its state (keys, devices, trackers, stored data,
open sockets) and controls (add data, drop or refuse connections, send raw frames) to
the test or scenario that drives it.

- ``element.py``: ``FakeElement``, the readings/packets sockets with replay and keep-alive.
- ``navixy.py``: ``FakeNavixy``, the Atmosphere endpoint with ``iot_monitor``.
- ``windows.py``: the pure per-tracker windows the Navixy fake keeps.
- ``base.py``: the loopback server, per-socket outboxes, abrupt drops.
- ``scenario.py``: the site and timeline that ``alertd demo`` plays against both fakes, with
  ``demo_rules.yaml``, a copy of ``rules.example.yaml`` shipped inside the package.
"""
