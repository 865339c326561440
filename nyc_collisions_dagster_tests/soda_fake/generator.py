"""Deterministic, realistic rows for the NYC collisions crashes, persons and vehicles datasets.

Rows are tuples aligned with ``FIELDS[dataset]`` (values are strings as the API sends them,
``Location`` for the location column, ``None`` for an absent field), which keeps 700k crashes
lean in memory. Every day is generated from its own seeded streams, so a day's rows are the same
whatever range it is generated in, and ids are unique across the whole dataset.
"""

from __future__ import annotations

import gc
import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, NamedTuple


class Location(NamedTuple):
    latitude: str
    longitude: str


Value = str | Location | None
Row = tuple[Value, ...]

DATASET_IDS: dict[str, str] = {
    "crashes": "h9gi-nx95",
    "persons": "f55k-p6yu",
    "vehicles": "bm4k-52h4",
}
DATASET_NAMES: dict[str, str] = {v: k for k, v in DATASET_IDS.items()}
UNIQUE_KEYS: dict[str, str] = {
    "crashes": "collision_id",
    "persons": "unique_id",
    "vehicles": "unique_id",
}
DATE_FIELD = "crash_date"
HUMAN_ADDRESS = '{"address": "", "city": "", "state": "", "zip": ""}'

_N, _T, _TS = "number", "text", "floating_timestamp"
_SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "crashes": [
        ("crash_date", _TS),
        ("crash_time", _T),
        ("borough", _T),
        ("zip_code", _T),
        ("latitude", _N),
        ("longitude", _N),
        ("location", "location"),
        ("on_street_name", _T),
        ("off_street_name", _T),
        ("cross_street_name", _T),
    ]
    + [
        (f"number_of_{who}_{what}", _N)
        for who in ("persons", "pedestrians", "cyclist", "motorist")
        for what in ("injured", "killed")
    ]
    + [(f"contributing_factor_vehicle_{i}", _T) for i in range(1, 6)]
    + [
        ("collision_id", _N),
        ("vehicle_type_code1", _T),
        ("vehicle_type_code2", _T),
        ("vehicle_type_code_3", _T),
        ("vehicle_type_code_4", _T),
        ("vehicle_type_code_5", _T),
    ],
    "persons": [("unique_id", _N), ("collision_id", _N), ("crash_date", _TS)]
    + [(f, _T) for f in ("crash_time", "person_id", "person_type", "person_injury", "vehicle_id")]
    + [("person_age", _N)]
    + [
        (f, _T)
        for f in (
            "ejection",
            "emotional_status",
            "bodily_injury",
            "position_in_vehicle",
            "safety_equipment",
            "ped_location",
            "ped_action",
            "complaint",
            "ped_role",
            "contributing_factor_1",
            "contributing_factor_2",
            "person_sex",
        )
    ],
    "vehicles": [("unique_id", _N), ("collision_id", _N), ("crash_date", _TS)]
    + [
        (f, _T)
        for f in (
            "crash_time",
            "vehicle_id",
            "state_registration",
            "vehicle_type",
            "vehicle_make",
            "vehicle_model",
        )
    ]
    + [("vehicle_year", _N), ("travel_direction", _T), ("vehicle_occupants", _N)]
    + [
        (f, _T)
        for f in (
            "driver_sex",
            "driver_license_status",
            "driver_license_jurisdiction",
            "pre_crash",
            "point_of_impact",
            "vehicle_damage",
            "vehicle_damage_1",
            "vehicle_damage_2",
            "vehicle_damage_3",
            "public_property_damage",
            "public_property_damage_type",
            "contributing_factor_1",
            "contributing_factor_2",
        )
    ],
}
FIELDS: dict[str, tuple[str, ...]] = {k: tuple(f for f, _ in v) for k, v in _SCHEMAS.items()}
TYPES: dict[str, tuple[str, ...]] = {k: tuple(t for _, t in v) for k, v in _SCHEMAS.items()}

# Ids are laid out in fixed per-day blocks so that they do not depend on the generated range.
_EPOCH = date(2012, 7, 1)  # first crash_date of the real dataset
_CRASH_BASE, _CRASH_STRIDE, _MAX_CRASHES = 1_000_000, 2_000, 1_000
_LATE_DAYS = 90  # late reports take ids from the upper half of the block of a day this much later
_PERSON_BASE, _PERSON_STRIDE = 100_000_000, 50_000
_VEHICLE_BASE, _VEHICLE_STRIDE = 20_000_000, 5_000
_DETAIL_START = date(2016, 4, 1)  # persons and vehicles are sparse before this, as upstream
_PADDED_UNTIL = date(2019, 1, 1)  # older street names carry fixed-width trailing spaces
_NUMS = [str(i) for i in range(200)]  # shared string objects keep 700k rows small


def _bag(weights: Mapping[Any, int]) -> list[Any]:
    """Expand integer weights into a list so that ``rng.choice`` draws with those weights."""
    return [value for value, weight in weights.items() for _ in range(weight)]


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split("|")]


_HOURS = _bag(
    {
        h: w
        for h, w in enumerate(
            [5, 3, 3, 2, 3, 3, 5, 6, 8, 5, 5, 5, 6, 5, 7, 8, 5, 7, 6, 6, 5, 4, 4, 3]
        )
    }
)
_BOROUGHS: dict[str, tuple[list[str], float, float, float, float]] = {
    "BROOKLYN": (
        [
            "11207",
            "11208",
            "11203",
            "11212",
            "11226",
            "11233",
            "11234",
            "11236",
            "11220",
            "11206",
            "11211",
            "11218",
            "11222",
            "11209",
            "11221",
            "11230",
        ],
        40.598,
        40.711,
        -74.015,
        -73.88,
    ),
    "QUEENS": (
        [
            "11385",
            "11368",
            "11373",
            "11434",
            "11377",
            "11101",
            "11413",
            "11691",
            "11432",
            "11435",
            "11420",
            "11429",
            "11372",
            "11375",
        ],
        40.657,
        40.771,
        -73.923,
        -73.735,
    ),
    "MANHATTAN": (
        [
            "10029",
            "10002",
            "10032",
            "10035",
            "10019",
            "10016",
            "10022",
            "10001",
            "10027",
            "10013",
            "10033",
            "10065",
            "10018",
            "10128",
        ],
        40.715,
        40.848,
        -74.008,
        -73.933,
    ),
    "BRONX": (
        [
            "10467",
            "10466",
            "10469",
            "10472",
            "10461",
            "10457",
            "10459",
            "10462",
            "10458",
            "10456",
            "10451",
            "10468",
        ],
        40.81,
        40.895,
        -73.922,
        -73.83,
    ),
    "STATEN ISLAND": (
        ["10301", "10312", "10306", "10310", "10305", "10304", "10309", "10314"],
        40.521,
        40.642,
        -74.224,
        -74.076,
    ),
}
_BOROUGH_NAMES = list(_BOROUGHS)
_BOROUGH_BAG = _bag(
    {None: 32, "BROOKLYN": 24, "QUEENS": 20, "MANHATTAN": 11, "BRONX": 11, "STATEN ISLAND": 2}
)
_STREETS = _words(
    "BELT PARKWAY|LONG ISLAND EXPRESSWAY|BROOKLYN QUEENS EXPRESSWAY|BROADWAY|"
    "CROSS ISLAND PARKWAY|FDR DRIVE|HENRY HUDSON PARKWAY|MYRTLE AVENUE|"
    "OCEAN PARKWAY|NORTHERN BOULEVARD|GRAND CENTRAL PKWY|65 STREET|"
    "QUEENS BOULEVARD|EAST 233 STREET|1 AVENUE|BRUCKNER EXPRESSWAY|"
    "ROCKAWAY PARKWAY|3 AVENUE|43 STREET|MADISON AVENUE|LINDEN BOULEVARD|"
    "BOSTON ROAD|8 AVENUE|5 AVENUE|AVENUE D|18 AVENUE|FULTON STREET|EAST 92 STREET|"
    "LEXINGTON AVENUE|37 AVENUE|ATLANTIC AVENUE|GRAND CONCOURSE|JEROME AVENUE|"
    "WEBSTER AVENUE|EASTERN PARKWAY|PENNSYLVANIA AVENUE|CROSS BRONX EXPY|"
    "VAN WYCK EXPWY|AMSTERDAM AVENUE|BEDFORD AVENUE|CONEY ISLAND AVENUE|"
    "UTICA AVENUE|NOSTRAND AVENUE|ROOSEVELT AVENUE|CHURCH AVENUE|FLATBUSH AVENUE|"
    "PARK AVENUE"
)
_FACTORS = _bag(
    {
        "Unspecified": 25,
        "Driver Inattention/Distraction": 24,
        "Following Too Closely": 8,
        "Failure to Yield Right-of-Way": 7,
        "Passing or Lane Usage Improper": 4,
        "Passing Too Closely": 4,
        "Unsafe Speed": 3,
        "Driver Inexperience": 3,
        "Backing Unsafely": 3,
        "Traffic Control Disregarded": 3,
        "Other Vehicular": 2,
        "Alcohol Involvement": 2,
        "Turning Improperly": 2,
        "Unsafe Lane Changing": 1,
        "Pavement Slippery": 1,
        "Reaction to Uninvolved Vehicle": 1,
        "Aggressive Driving/Road Rage": 1,
        "View Obstructed/Limited": 1,
        "Pedestrian/Bicyclist/Other Pedestrian Error/Confusion": 1,
        "Fell Asleep": 1,
    }
)
_LATER_FACTORS = ["Unspecified"] * 300 + _FACTORS  # other vehicles' factor: mostly unspecified
_VEHICLE_TYPES = _bag(
    {
        "Sedan": 45,
        "Station Wagon/Sport Utility Vehicle": 32,
        "Pick-up Truck": 3,
        "Taxi": 2,
        "Bus": 2,
        "Bike": 2,
        "Box Truck": 2,
        "Van": 1,
        "Moped": 1,
        "E-Scooter": 1,
        "E-Bike": 1,
        "Motorcycle": 1,
        "Ambulance": 1,
        "Tractor Truck Diesel": 1,
        None: 1,
    }
)
_MINUTES = [0] * 20 + [30] * 8 + [15, 45] * 4 + [5, 10, 20, 40, 50] * 3 + list(range(60))
_N_VEHICLES = _bag({1: 25, 2: 60, 3: 10, 4: 4, 5: 1})
_MOTORIST_INJURED = _bag({0: 77, 1: 15, 2: 5, 3: 2, 4: 1})
_STATES = _bag({"NY": 64, None: 18, "NJ": 5, "PA": 3, "FL": 1, "CT": 1, "VA": 1, "ZZ": 1})
_MAKES = _bag(
    {
        None: 20,
        "TOYT -CAR/SUV": 14,
        "HOND -CAR/SUV": 10,
        "FORD -CAR/SUV": 7,
        "NISS -CAR/SUV": 6,
        "CHEV -CAR/SUV": 4,
        "BMW -CAR/SUV": 4,
        "MERZ -CAR/SUV": 3,
        "HYUN -CAR/SUV": 3,
        "JEEP -CAR/SUV": 2,
        "FORD-TRUCK/BUS": 1,
        "FRHT-TRUCK/BUS": 1,
    }
)
_DIRECTIONS = _bag(
    {
        "North": 23,
        "West": 21,
        "East": 21,
        "South": 19,
        None: 7,
        "Unknown": 3,
        "Northeast": 2,
        "Southwest": 1,
        "Southeast": 1,
        "Northwest": 1,
    }
)
_PRE_CRASH = _bag(
    {
        "Going Straight Ahead": 47,
        "Parked": 20,
        None: 8,
        "Making Left Turn": 5,
        "Making Right Turn": 4,
        "Stopped in Traffic": 4,
        "Slowing or Stopping": 3,
        "Backing": 2,
        "Changing Lanes": 1,
        "Making U Turn": 1,
        "Merging": 1,
        "Passing": 1,
    }
)
_DAMAGE = _words(
    "Center Front End|Left Front Bumper|Center Back End|Right Front Bumper|"
    "Left Front Quarter Panel|Left Rear Quarter Panel|Right Front Quarter Panel|"
    "Left Rear Bumper|Left Side Doors|Right Rear Bumper|Right Side Doors|"
    "Right Rear Quarter Panel|No Damage|Other"
)
_EXTRA_DAMAGE = _bag({None: 45, "No Damage": 25}) + _DAMAGE * 2
_PUBLIC_DAMAGE = _bag({"N": 83, "Unspecified": 16, "Y": 1})
_LICENSE = _bag({"Licensed": 92, "Unlicensed": 5, "Permit": 3})
_SEX = _bag({"M": 66, "F": 31, "U": 3})
_BODY = _words(
    "Back|Head|Knee-Lower Leg Foot|Neck|Entire Body|Elbow-Lower-Arm-Hand|"
    "Shoulder - Upper Arm|Face|Hip-Upper Leg|Chest"
)
_COMPLAINTS = _bag(
    {
        "Complaint of Pain or Nausea": 60,
        "None Visible": 9,
        "Minor Bleeding": 7,
        "Contusion - Bruise": 6,
        "Whiplash": 5,
        "Unknown": 4,
        "Abrasion": 2,
        "Fracture - Distorted - Dislocation": 2,
        "Severe Bleeding": 1,
        "Concussion": 1,
    }
)
_EMOTION = _bag({"Conscious": 90, "Shock": 6, "Unknown": 4, "Unconscious": 1})
_SAFETY = _bag({"Lap Belt & Harness": 55, "Lap Belt": 19, "Unknown": 18, None: 8})
_PASSENGER_SEATS = _words(
    "Front passenger, if two or more persons, including the driver, are in the front seat|"
    "Any person in the rear of a station wagon, pick-up truck, all passengers on a bus, etc|"
    "Left rear passenger, or rear passenger on a bicycle, motorcycle, snowmobile|"
    "Right rear passenger or motorcycle sidecar passenger"
)
_PED_LOCATIONS = _words(
    "Pedestrian/Bicyclist/Other Pedestrian at Intersection|"
    "Pedestrian/Bicyclist/Other Pedestrian Not at Intersection"
)
_PED_ACTIONS = _words(
    "Crossing With Signal|Crossing, No Signal, or Crosswalk|"
    "Crossing, No Signal, Marked Crosswalk|Crossing Against Signal|"
    "Emerging from in Front of/Behind Parked Vehicle|Not in Roadway"
)
_TWO_WHEELERS = {
    "Bike": "Bicyclist",
    "E-Bike": "Bicyclist",
    "E-Scooter": "Other Motorized",
    "Moped": "Other Motorized",
}


class _Crash(NamedTuple):
    collision_id: str
    time: str
    vehicle_types: tuple[str | None, ...]
    vehicle_ids: tuple[str, ...]  # unique_ids of its vehicles rows; empty when it has none
    injured: tuple[int, int, int]  # pedestrians, cyclists, motorists
    killed: tuple[int, int, int]
    has_persons: bool


def generate(
    start: date,
    end: date,
    *,
    seed: int = 0,
    datasets: Iterable[str] = ("crashes", "persons", "vehicles"),
    crashes_per_day: tuple[int, int] = (250, 700),
) -> dict[str, list[Row]]:
    """Rows of each requested dataset for crash dates in [start, end), in date order."""
    wanted = tuple(datasets)
    unknown = set(wanted) - set(DATASET_IDS)
    if unknown:
        raise ValueError(f"unknown datasets: {sorted(unknown)}")
    if start < _EPOCH or not 0 < crashes_per_day[0] <= crashes_per_day[1] <= _MAX_CRASHES:
        raise ValueError("dates start at 2012-07-01 and crashes_per_day must lie within 1..1000")
    out: dict[str, list[Row]] = {name: [] for name in wanted}
    with gc_paused():
        day = start
        while day < end:
            crashes = _crash_cores(day, seed, crashes_per_day)
            stamp = day.isoformat() + "T00:00:00.000"
            if "crashes" in out:
                out["crashes"].extend(_crash_rows(day, stamp, seed, crashes))
            if "vehicles" in out:
                out["vehicles"].extend(_vehicle_rows(day, stamp, seed, crashes))
            if "persons" in out:
                out["persons"].extend(_person_rows(day, stamp, seed, crashes))
            day += timedelta(days=1)
    return out


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building millions of acyclic rows: its repeated scans of the
    growing heap would otherwise take longer than the building itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def drop_field(dataset: str, rows: Sequence[Row], field: str) -> list[Row]:
    """The rows with ``field`` absent everywhere, to model a day where a column is all null."""
    i = FIELDS[dataset].index(field)
    return [row[:i] + (None,) + row[i + 1 :] for row in rows]


def crash_date(dataset: str, row: Row) -> str:
    """The row's crash_date as the API sends it (`2024-01-02T00:00:00.000`)."""
    return row[FIELDS[dataset].index("crash_date")]


def to_api_dict(dataset: str, row: Row) -> dict[str, Any]:
    """The row as the JSON API sends it: strings, nested location, absent fields omitted."""
    out: dict[str, Any] = {}
    for name, value in zip(FIELDS[dataset], row):
        if isinstance(value, Location):
            out[name] = {
                "latitude": value.latitude,
                "longitude": value.longitude,
                "human_address": HUMAN_ADDRESS,
            }
        elif value is not None:
            out[name] = value
    return out


def from_api_dict(dataset: str, record: Mapping[str, Any]) -> Row:
    """Inverse of ``to_api_dict``; missing keys and ``None`` become absent fields."""
    values: list[Value] = []
    for name in FIELDS[dataset]:
        value = record.get(name)
        if isinstance(value, Mapping):
            values.append(Location(str(value["latitude"]), str(value["longitude"])))
        elif value is None or value == "":
            values.append(None)
        else:
            values.append(value if isinstance(value, Location) else str(value))
    return tuple(values)


class _Stream(random.Random):
    """A day's seeded stream for one dataset, with cheaper draws than ``Random.choice``."""

    def __init__(self, seed: int, day: date, name: str) -> None:
        super().__init__(f"{seed}/{day.isoformat()}/{name}")

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.random() * len(options))]

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))


def _crash_cores(day: date, seed: int, per_day: tuple[int, int]) -> list[_Crash]:
    """What all three datasets of a day must agree on, drawn from a stream of its own."""
    stream = _Stream(seed, day, "core")
    rnd, pick = stream.random, stream.pick
    index = (day - _EPOCH).days
    detail = 0.995 if day >= _DETAIL_START else 0.04
    next_vehicle = _VEHICLE_BASE + index * _VEHICLE_STRIDE
    crashes = []
    for i in range(per_day[0] + int(rnd() * (per_day[1] - per_day[0] + 1))):
        late = rnd() < 0.03
        block = index + _LATE_DAYS if late else index
        collision_id = _CRASH_BASE + block * _CRASH_STRIDE + (_MAX_CRASHES if late else 0) + i
        minute = pick(_MINUTES)
        types = tuple(pick(_VEHICLE_TYPES) for _ in range(pick(_N_VEHICLES)))
        vehicle_ids: tuple[str, ...] = ()
        if rnd() < detail:
            vehicle_ids = tuple(str(next_vehicle + k) for k in range(len(types)))
            next_vehicle += len(types)
        fatal = rnd()
        crashes.append(
            _Crash(
                str(collision_id),
                f"{pick(_HOURS)}:{minute:02d}",
                types,
                vehicle_ids,
                (int(rnd() < 0.1), int(rnd() < 0.035), pick(_MOTORIST_INJURED)),
                (int(fatal < 0.002), 0, int(0.002 <= fatal < 0.004)),
                rnd() < detail,
            )
        )
    return crashes


def _coordinate(rnd: Callable[[], float], low: float, high: float) -> str:
    # Upstream values are float32 reprs: mostly 5 or 6 decimals, never trailing zeros.
    text = f"{low + rnd() * (high - low):.{6 if rnd() < 0.6 else 5}f}".rstrip("0")
    return text.rstrip(".")


def _crash_rows(day: date, stamp: str, seed: int, crashes: list[_Crash]) -> list[Row]:
    stream = _Stream(seed, day, "crashes")
    rnd, pick = stream.random, stream.pick
    padded = day < _PADDED_UNTIL
    rows: list[Row] = []
    for c in crashes:
        borough = pick(_BOROUGH_BAG)
        zips, lat0, lat1, lon0, lon1 = _BOROUGHS[borough or pick(_BOROUGH_NAMES)]
        roll = rnd()
        if roll < 0.067:
            lat = lon = location = None
        elif roll < 0.072:
            lat, lon, location = "0", "0", Location("0", "0")
        else:
            lat, lon = _coordinate(rnd, lat0, lat1), _coordinate(rnd, lon0, lon1)
            location = Location(lat, lon)
        on = off = address = None
        if rnd() < 0.3:
            number = (
                f"{int(rnd() * 250) + 1}-{int(rnd() * 99) + 1:02d}"
                if borough == "QUEENS"
                else str(int(rnd() * 4000) + 1)
            )
            address = f"{number:<10}{pick(_STREETS)}".ljust(40 if padded else 0)
        else:
            on = pick(_STREETS).ljust(32 if padded else 0)
            off = pick(_STREETS) if rnd() < 0.67 else None
        n = len(c.vehicle_types)
        factors = [pick(_FACTORS)] + [pick(_LATER_FACTORS) for _ in range(n - 1)]
        (p_inj, c_inj, m_inj), (p_kill, c_kill, m_kill) = c.injured, c.killed
        counts = (
            p_inj + c_inj + m_inj,
            p_kill + c_kill + m_kill,
            p_inj,
            p_kill,
            c_inj,
            c_kill,
            m_inj,
            m_kill,
        )
        rows.append(
            (
                stamp,
                c.time,
                borough,
                pick(zips) if borough else None,
                lat,
                lon,
                location,
                on,
                off,
                address,
                *(_NUMS[v] for v in counts),
                *factors,
                *([None] * (5 - n)),
                c.collision_id,
                *c.vehicle_types,
                *([None] * (5 - n)),
            )
        )
    return rows


def _vehicle_rows(day: date, stamp: str, seed: int, crashes: list[_Crash]) -> list[Row]:
    stream = _Stream(seed, day, "vehicles")
    rnd, pick = stream.random, stream.pick
    rows: list[Row] = []
    for c in crashes:
        for vid, vtype in zip(c.vehicle_ids, c.vehicle_types):
            pre_crash = pick(_PRE_CRASH)
            parked = pre_crash == "Parked"
            driven = not parked and rnd() < 0.75
            year = None if rnd() < 0.21 else str(day.year + 1 - int(rnd() * rnd() * 30))
            occupants = None if rnd() < 0.13 else _NUMS[0 if parked else pick((1, 1, 1, 1, 2, 3))]
            impact = pick(_DAMAGE)
            public = pick(_PUBLIC_DAMAGE)
            rows.append(
                (
                    vid,
                    c.collision_id,
                    stamp,
                    c.time,
                    stream.uuid(),
                    pick(_STATES),
                    vtype,
                    pick(_MAKES),
                    None,
                    year,
                    pick(_DIRECTIONS),
                    occupants,
                    pick(_SEX) if driven else None,
                    pick(_LICENSE) if driven else None,
                    pick(("NY", "NY", "NY", "NJ")) if driven else None,
                    pre_crash,
                    impact,
                    impact if rnd() < 0.8 else pick(_DAMAGE),
                    pick(_EXTRA_DAMAGE),
                    pick(_EXTRA_DAMAGE),
                    pick(_EXTRA_DAMAGE),
                    public,
                    "LIGHT POLE" if public == "Y" else None,
                    pick(_FACTORS),
                    pick(_LATER_FACTORS),
                )
            )
    return rows


def _person_rows(day: date, stamp: str, seed: int, crashes: list[_Crash]) -> list[Row]:
    stream = _Stream(seed, day, "persons")
    rnd, pick = stream.random, stream.pick
    next_id = _PERSON_BASE + (day - _EPOCH).days * _PERSON_STRIDE
    rows: list[Row] = []
    for c in crashes:
        if not c.has_persons:
            continue
        # [ped_role, person_type, vehicle_id, injury]; injuries are then set to match the counts
        people: list[list[Any]] = []
        for vid, vtype in zip(c.vehicle_ids, c.vehicle_types):
            if rnd() < 0.64:
                driver_type = _TWO_WHEELERS.get(vtype or "", "Occupant")
                people.append(["Driver", driver_type, vid, "Unspecified"])
            for _ in range(pick((0, 0, 0, 1))):
                people.append(["Passenger", "Occupant", vid, "Unspecified"])
        occupants = people[:]
        for vid in c.vehicle_ids:
            if rnd() < 0.73:
                people.append(["Registrant", "Occupant", vid, "Unspecified"])
        spare = c.vehicle_ids[-1] if c.vehicle_ids else None
        for status, (peds, cyclists, motorists) in (("Injured", c.injured), ("Killed", c.killed)):
            people += [["Pedestrian", "Pedestrian", None, status] for _ in range(peds)]
            people += [["Driver", "Bicyclist", spare, status] for _ in range(cyclists)]
            free = [p for p in occupants if p[3] == "Unspecified" and p[1] == "Occupant"]
            for k in range(motorists):
                if k < len(free):
                    free[k][3] = status
                else:
                    people.append(["Passenger", "Occupant", spare, status])
        if rnd() < 0.037:
            people.append(["Witness", "Occupant", None, "Unspecified"])
        for role, ptype, vid, injury in people:
            rows.append(_person(stream, str(next_id), c, stamp, role, ptype, vid, injury))
            next_id += 1
    return rows


def _person(
    stream: _Stream,
    uid: str,
    c: _Crash,
    stamp: str,
    role: str,
    ptype: str,
    vid: str | None,
    injury: str,
) -> Row:
    rnd, pick = stream.random, stream.pick
    if role in ("Registrant", "Witness"):
        registrant = role == "Registrant"
        age = _NUMS[18 + int(rnd() * 62)] if registrant and rnd() < 0.66 else None
        return (
            uid,
            c.collision_id,
            stamp,
            c.time,
            stream.uuid(),
            ptype,
            injury,
            vid,
            age,
            *([None] * 8),
            role,
            None,
            None,
            pick(_SEX) if registrant else None,
        )
    hurt = injury != "Unspecified"
    pedestrian = role == "Pedestrian"
    seat = "Driver" if role == "Driver" else pick(_PASSENGER_SEATS)
    return (
        uid,
        c.collision_id,
        stamp,
        c.time,
        stream.uuid(),
        ptype,
        injury,
        vid,
        _NUMS[(16 if role == "Driver" else 1) + int(rnd() * 70)],
        None if pedestrian else "Not Ejected",
        pick(_EMOTION) if hurt else "Does Not Apply",
        pick(_BODY) if hurt else "Does Not Apply",
        None if pedestrian else seat,
        None if pedestrian else pick(_SAFETY),
        pick(_PED_LOCATIONS) if pedestrian else None,
        pick(_PED_ACTIONS) if pedestrian else None,
        pick(_COMPLAINTS) if hurt else "Does Not Apply",
        role,
        "Unspecified" if pedestrian else None,
        "Unspecified" if pedestrian else None,
        pick(_SEX),
    )
