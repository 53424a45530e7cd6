"""The ``alertd demo`` scenario: a cold-chain site and four trucks, and a timeline of mishaps.

The site matches ``demo_rules.yaml`` (a copy of ``rules.example.yaml``): ELEMENT devices in
stream ``2f6c4b3e`` plus the blast freezer ``8a1d0f``, and Navixy trackers 21080, 21081,
21082 and 21085. ``Site`` holds what every device and truck reads *now*; ``tick()``
reports it to the fakes (trucks every 70 s, ELEMENT sensors every 2 minutes), and the
steps of ``TIMELINE`` change it. Each step's caption says what happens and which rule it
should wake, so a reader can follow the notifications that the daemon prints in between.

Between them the steps make every rule of the file fire and resolve within ``LENGTH``:

- threshold: cold-room-warm, freezer-out-of-band, sensor-battery-low, door-sensor-fault
- change: heat-spike; all (change + threshold): fuel-drain; any: overspeed-or-overheat
- missing: fuel-gap, gps-unstable; silent: sensor-silent, truck-offline
- status: tracker-blocked; source_down: stream-down
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alertd.simulator.element import FakeElement
from alertd.simulator.navixy import FakeNavixy

API_KEY = "demo-element-key"
HASH = "demo-navixy-hash"
STREAM = "2f6c4b3e"  # the cold-room stream subscribed to in the rule file
FREEZER = "8a1d0f"
MINUTE = 60.0
LENGTH = 56 * MINUTE  # simulated seconds from the first step to the end of the demo
TICK = 10.0  # the scenario's resolution, simulated seconds
TRUCK_PERIOD = 60.0  # seconds between a truck's messages
SENSOR_PERIOD = 120.0


@dataclass
class Sensor:
    """An ELEMENT device: the values of its next reading. ``temperature`` moves towards
    ``target`` by at most ``slope`` per reading, as a room warms or cools."""

    name: str
    temperature: float
    target: float
    slope: float = 1.5
    battery: float = 3.6
    door: str = "closed"
    online: bool = True

    def reading(self) -> dict[str, Any]:
        step = max(-self.slope, min(self.slope, self.target - self.temperature))
        self.temperature = round(self.temperature + step, 1)
        return {"temperature": self.temperature, "battery": {"voltage": self.battery},
                "door": self.door}


@dataclass
class Truck:
    """A Navixy tracker: its next message. ``fuel_rate`` is litres per minute (negative
    while it burns or leaks fuel); of the next ``2 * gps_dropouts`` messages, every other
    one has no GPS fix."""

    speed: float
    fuel: float
    fuel_rate: float = -0.3
    fuel_sensor: bool = True
    gps_dropouts: int = 0
    online: bool = True
    _minute: int = field(default=0, repr=False)

    def message(self) -> dict[str, Any]:
        self._minute += 1
        self.fuel = round(max(0.0, self.fuel + self.fuel_rate * TRUCK_PERIOD / MINUTE), 1)
        latitude: float | None = 53.55 + self._minute * 0.001
        if self.gps_dropouts and self._minute % 2 == 0:
            self.gps_dropouts -= 1
            latitude = None  # no fix: the field is null in this message
        return {"speed": self.speed, "lls_level_1": self.fuel if self.fuel_sensor else None,
                "latitude": latitude, "longitude": 9.99, "engine_temp": 88}


class Site:
    """The simulated world the fakes report; steps change it, ``tick`` reports it."""

    def __init__(self) -> None:
        self.sensors: dict[str, Sensor] = {
            "3c91a2": Sensor("Cold room 1", 3.0, 3.0),
            "3c91a3": Sensor("Cold room 2", 3.0, 3.0),
            "3c91a5": Sensor("Cold room 3", 2.5, 2.5),
            "3c91d0": Sensor("Loading dock door", 6.0, 6.0),
            FREEZER: Sensor("Blast freezer", -22.0, -22.0, slope=3.0),
        }
        self.trucks: dict[int, Truck] = {
            21080: Truck(speed=62, fuel=180.0),
            21081: Truck(speed=74, fuel=220.0),
            21082: Truck(speed=0, fuel=300.0, fuel_rate=0.0),  # parked at the depot
            21085: Truck(speed=55, fuel=150.0),
        }
        self.element_down = False

    def fakes(self, clock: Callable[[], float]) -> tuple[FakeElement, FakeNavixy]:
        """The two servers, knowing this site's devices and trackers, stamping messages
        with ``clock`` (the daemon's clock, so message and daemon times agree)."""
        element = FakeElement(
            api_keys={API_KEY}, clock=clock,
            device_names={device: sensor.name for device, sensor in self.sensors.items()},
            streams={STREAM: {device for device in self.sensors if device != FREEZER}})
        navixy = FakeNavixy(hashes={HASH}, clock=clock,
                            trackers={tracker: "normal" for tracker in self.trucks})
        return element, navixy

    def tick(self, at: float, element: FakeElement, navixy: FakeNavixy) -> None:
        """Report what is due at ``at`` (seconds after the start): every truck that has
        signal, every sensor in radio range (the fake stores readings while ELEMENT is down
        and replays them when the client reconnects)."""
        if at % TRUCK_PERIOD == 0:
            for tracker, truck in self.trucks.items():
                if truck.online:
                    navixy.add_message(tracker, truck.message())
        if at % SENSOR_PERIOD == 0:
            for device, sensor in self.sensors.items():
                if sensor.online:
                    element.add_reading(device, sensor.reading())


@dataclass(frozen=True, slots=True)
class Step:
    at: float  # simulated seconds after the start
    caption: str
    action: Callable[[Site, FakeElement, FakeNavixy], None]


def _sensor(device: str, **changes: Any) -> Callable[[Site, FakeElement, FakeNavixy], None]:
    def act(site: Site, element: FakeElement, navixy: FakeNavixy) -> None:
        for name, value in changes.items():
            setattr(site.sensors[device], name, value)
    return act


def _truck(tracker: int, **changes: Any) -> Callable[[Site, FakeElement, FakeNavixy], None]:
    def act(site: Site, element: FakeElement, navixy: FakeNavixy) -> None:
        for name, value in changes.items():
            setattr(site.trucks[tracker], name, value)
    return act


def _status(tracker: int, status: str) -> Callable[[Site, FakeElement, FakeNavixy], None]:
    def act(site: Site, element: FakeElement, navixy: FakeNavixy) -> None:
        navixy.set_status(tracker, status)
    return act


def _element_down(site: Site, element: FakeElement, navixy: FakeNavixy) -> None:
    element.pause()  # new connections get HTTP 503 ...
    element.drop_all()  # ... and the open ones are cut


def _element_up(site: Site, element: FakeElement, navixy: FakeNavixy) -> None:
    element.resume()


def _nothing(site: Site, element: FakeElement, navixy: FakeNavixy) -> None:
    pass


def _at(minutes: int) -> float:
    return minutes * MINUTE


TIMELINE: tuple[Step, ...] = (
    Step(_at(0), "cold rooms 1-3, the loading dock door sensor and the blast freezer report "
                 "every 2 min; trucks 21080, 21081, 21082 and 21085 every 70 s", _nothing),
    Step(_at(2), "cold room 1's sensor battery runs low: 3.0 V (sensor-battery-low)",
         _sensor("3c91a2", battery=3.0)),
    Step(_at(3), "the door of cold room 2 is left open and the room warms up (heat-spike "
                 "once it rose 4 °C, cold-room-warm after 10 min above 8 °C)",
         _sensor("3c91a3", target=10.5)),
    Step(_at(4), "cold room 3's sensor goes quiet: a pallet blocks its radio "
                 "(sensor-silent after 20 min)", _sensor("3c91a5", online=False)),
    Step(_at(5), "truck 21080's fuel-level sensor drops out: its messages carry null "
                 "(fuel-gap at the third null)", _truck(21080, fuel_sensor=False)),
    Step(_at(6), "truck 21081 drives through the Elbe tunnel and loses every other GPS fix "
                 "(gps-unstable at 4 nulls in 12 messages)", _truck(21081, gps_dropouts=4)),
    Step(_at(8), "the operator blocks tracker 21085 (tracker-blocked, seen at the next "
                 "status refresh, every 5 min)", _status(21085, "blocked")),
    Step(_at(9), "the loading dock door sensor reports a fault (door-sensor-fault)",
         _sensor("3c91d0", door="fault")),
    Step(_at(11), "truck 21080's fuel sensor is back", _truck(21080, fuel_sensor=True)),
    Step(_at(14), "truck 21081 speeds on the A7 at 125 km/h (overspeed-or-overheat after "
                  "30 s)", _truck(21081, speed=125)),
    Step(_at(15), "the loading dock door sensor is repaired", _sensor("3c91d0", door="closed")),
    Step(_at(16), "truck 21081 slows down to 85 km/h", _truck(21081, speed=85)),
    Step(_at(18), "the blast freezer's compressor fails (freezer-out-of-band after 5 min "
                  "above -15 °C; heat-spike)", _sensor(FREEZER, target=-8.0)),
    Step(_at(19), "the operator unblocks tracker 21085", _status(21085, "normal")),
    Step(_at(22), "someone closes the door of cold room 2; it cools down",
         _sensor("3c91a3", target=3.0)),
    Step(_at(24), "truck 21082 stands at the depot and fuel drains from its tank, 10 l a "
                  "minute (fuel-drain: a 30 l drop within 10 min while standing)",
         _truck(21082, fuel_rate=-10.0)),
    Step(_at(28), "the driver of 21082 finds the open drain valve and closes it",
         _truck(21082, fuel_rate=0.0)),
    Step(_at(29), "truck 21080 parks in an underground garage: no signal (truck-offline "
                  "after 15 min)", _truck(21080, online=False)),
    Step(_at(30), "a technician repairs the blast freezer's compressor (resolves after "
                  "2 min back in band)", _sensor(FREEZER, target=-22.0, slope=4.0)),
    Step(_at(32), "a technician replaces cold room 1's battery",
         _sensor("3c91a2", battery=3.6)),
    Step(_at(38), "the pallet is moved: cold room 3's sensor reports again",
         _sensor("3c91a5", online=True)),
    Step(_at(40), "the ELEMENT server goes down: every socket is cut, reconnects are refused "
                  "(stream-down after 2 min)", _element_down),
    Step(_at(46), "the ELEMENT server is back; alertd reconnects and the readings of the "
                  "outage are replayed", _element_up),
    Step(_at(50), "truck 21080 leaves the garage and reports again",
         _truck(21080, online=True)),
)
