"""The demo's car-park feed simulator: a few thousand car parks placed at
real Shanghai addresses and coordinates (those of the city's elderly-care
institutions, config/demo/tables), whose free spaces change every interval,
pushed through the public push endpoint with a push key like any
department's system would. The product it feeds is labelled simulated on
its page (the resource's ``realtime_simulated``)."""
from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["FIELDS", "PRODUCT_NAME", "PRODUCT_TITLE", "RESOURCE_NAME", "SIMULATED_FLAG", "SECTIONS",
           "CarPark", "car_parks", "FeedState", "push_batch", "prepare", "run"]

FIELDS = [{"id": "carpark_id", "type": "text"}, {"id": "observed_at", "type": "timestamp"},
          {"id": "name", "type": "text"}, {"id": "free_spaces", "type": "int"},
          {"id": "capacity", "type": "int"}, {"id": "district", "type": "text"},
          {"id": "address", "type": "text"}, {"id": "lng", "type": "float8"}, {"id": "lat", "type": "float8"}]
PRODUCT_NAME = "sh-carpark-free-spaces-simulated"
PRODUCT_TITLE = "上海市公共停车场剩余泊位（模拟数据）"
RESOURCE_NAME = "实时剩余泊位（模拟）"
# The resource field that labels a real-time table as simulated on its pages.
SIMULATED_FLAG = "realtime_simulated"
# Car parks placed at each address: a ground lot and basement levels.
SECTIONS = (("1", "地面停车场"), ("2", "地下一层"), ("3", "地下二层"), ("4", "访客停车区"))


@dataclass(frozen=True)
class CarPark:
    carpark_id: str
    name: str
    capacity: int
    district: str
    address: str
    lng: float
    lat: float


def car_parks(places_csv: Path, seed: int = 2026) -> list[CarPark]:
    """Car parks at the addresses and coordinates of a table of places
    (columns id, district, name, address, lng, lat; UTF-8, BOM or not):
    one per section in ``SECTIONS``, with a capacity drawn from ``seed``."""
    chance = random.Random(seed)
    parks = []
    with places_csv.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                lng, lat = float(row["lng"]), float(row["lat"])
            except (KeyError, TypeError, ValueError):
                continue
            for section, label in SECTIONS:
                parks.append(CarPark(
                    carpark_id=f"P{int(row['id']):04d}-{section}", name=f"{row['name']}{label}",
                    capacity=chance.randrange(30, 400, 5), district=row.get("district") or "",
                    address=row.get("address") or "", lng=lng, lat=lat))
    return parks


class FeedState:
    """Free spaces of every car park, moved a little each interval (busier
    by day than by night); ``tick`` returns the records of the car parks
    whose free spaces changed, all of them the first time."""

    def __init__(self, parks: list[CarPark], seed: int = 2026, share_changing: float = 0.3):
        self.parks = parks
        self.chance = random.Random(seed)
        self.share_changing = share_changing
        self.free = {park.carpark_id: self.chance.randint(0, park.capacity) for park in parks}
        self.started = False

    def tick(self, at: dt.datetime) -> list[dict]:
        records = []
        for park in self.parks:
            if self.started and self.chance.random() >= self.share_changing:
                continue
            step = max(park.capacity // 12, 1)
            before = self.free[park.carpark_id]
            after = min(max(before + self.chance.randint(-step, step), 0), park.capacity)
            if self.started and after == before:
                after = before - 1 if before > 0 else before + 1
            self.free[park.carpark_id] = after
            records.append({"carpark_id": park.carpark_id, "observed_at": at.isoformat(), "name": park.name,
                            "free_spaces": after, "capacity": park.capacity, "district": park.district,
                            "address": park.address, "lng": park.lng, "lat": park.lat})
        self.started = True
        return records


def push_batch(base_url: str, resource_id: str, key: str, records: list[dict], timeout: float = 60) -> dict:
    """POST one batch to the public push endpoint; the answer's ``result``
    (raises ``urllib.error.URLError`` / ``HTTPError`` on failure)."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/realtime/{resource_id}/push",
        data=json.dumps({"records": records}, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json", "X-Push-Key": key}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["result"]


def _site_context() -> dict:
    import ckan.plugins.toolkit as tk

    return {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}


def _wait_for_department(title_or_name: str, wait_seconds: float):
    import ckan.model as model

    deadline = time.monotonic() + wait_seconds
    while True:
        model.Session.remove()
        group = model.Group.get(title_or_name) or (
            model.Session.query(model.Group).filter(model.Group.title == title_or_name,
                                                    model.Group.is_organization == True,  # noqa: E712
                                                    model.Group.state == "active").first())
        if group is not None or time.monotonic() >= deadline:
            return group
        log.info("simulator: waiting for the department %s (the demo harvest creates it)", title_or_name)
        time.sleep(10)


def prepare(department: str, key_file: Path, refresh_seconds: int, wait_seconds: float = 0) -> dict:
    """The simulated product (created on first run in ``department``, a
    title or name, waited for while the demo harvest creates it) and a push
    key for it, kept in ``key_file`` (mode 0600) between runs and replaced
    when revoked. An existing product keeps the interval it was declared
    with. Returns ``{"resource_id", "key", "package", "refresh_seconds"}``."""
    import ckan.model as model
    import ckan.plugins.toolkit as tk

    from ckanext.shanghai.realtime import store

    group = _wait_for_department(department, wait_seconds)
    if group is None:
        raise RuntimeError(f"no department {department!r}: the simulator has nowhere to publish")
    site = _site_context()
    package = model.Package.get(PRODUCT_NAME)
    if package is None or package.state != "active":
        tk.get_action("package_create")(dict(site), {
            "type": "transport", "network_scope": "parking",
            "name": PRODUCT_NAME, "title": PRODUCT_TITLE, "owner_org": group.id,
            "data_domain": "road-transport", "update_frequency": "realtime", "open_condition": "unconditional",
            "notes": f"演示用的模拟数据：全市公共停车场的剩余泊位，每 {refresh_seconds} 秒更新。停车场位置取自上海市养老机构名录的真实地址和坐标，"
                     "泊位数和剩余泊位由模拟器生成，并非真实数据。\n\n"
                     f"Simulated data for the demo: free spaces of public car parks, updated every {refresh_seconds} "
                     "seconds. The car "
                     "parks are placed at the real addresses and coordinates of Shanghai's elderly-care "
                     "institutions; capacities and free spaces are made up by the simulator."})
        package = model.Package.get(PRODUCT_NAME)
    product = next((p for p in store.products_of([package.id])), None)
    if product is None:
        product = tk.get_action("shanghai_realtime_product_create")(dict(site), {
            "package_id": package.id, "name": RESOURCE_NAME, "fields": FIELDS, "key_field": "carpark_id",
            "time_field": "observed_at", "refresh_seconds": refresh_seconds})
        # The coordinates come from AMap's geocoder (GCJ-02), as the table they were taken from.
        tk.get_action("resource_patch")(dict(site), {"id": product["resource_id"], SIMULATED_FLAG: "true",
                                                      "coordinate_crs": "gcj02"})
    key = key_file.read_text().strip() if key_file.exists() else ""
    row = store.find_push_key(key) if key else None
    if row is None or row["resource_id"] != product["resource_id"]:
        key = tk.get_action("shanghai_realtime_key_create")(dict(site), {
            "id": product["resource_id"], "label": "演示模拟器 / demo simulator"})["key"]
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        os.chmod(key_file, 0o600)
        key_file.write_text(key)
        model.Session.commit()
    return {"resource_id": product["resource_id"], "key": key, "package": package.name,
            "refresh_seconds": int(product["refresh_seconds"])}


def run(base_url: str, resource_id: str, key: str, parks: list[CarPark], interval: float,
        rounds: int | None = None, clock=time.monotonic, sleep=time.sleep) -> int:
    """Push a batch every ``interval`` seconds (``rounds`` times, or until
    stopped); a failed push is logged and the next interval tries again.
    Returns the number of rounds pushed."""
    state = FeedState(parks)
    done = 0
    next_at = clock()
    while rounds is None or done < rounds:
        records = state.tick(dt.datetime.now(dt.timezone.utc))
        try:
            result = push_batch(base_url, resource_id, key, records)
            log.info("simulator: pushed %s car parks: %s", len(records), result)
        except urllib.error.HTTPError as error:
            log.error("simulator: push refused (HTTP %s): %s", error.code, error.read()[:2000].decode(errors="replace"))
        except (urllib.error.URLError, OSError) as error:
            log.error("simulator: push failed: %s", error)
        done += 1
        next_at += interval
        if rounds is None or done < rounds:
            sleep(max(next_at - clock(), 0))
    return done
