"""Rate limiter benchmark: what the developer-key limiter adds to an API
request, measured inside the portal's own Flask app. Each request's time in
the portal's hooks (the limit check before the view, the usage count after
it) is taken for anonymous and keyed calls of ``status_show``, and beside it,
request by request in turn, the same work done by flask-limiter 4.1 (PyPI;
fixed window, Redis storage, the same caller identity) on the same app, and
the limit: one Redis round trip of the same INCR and TTL with nothing
around it. Full request times with each (and with no limiter) are in the
detail. A benchmark, not a test.

    CKAN_INI=.local/bench.ini python bench/keys_bench.py [--requests 1500]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

# flask-limiter's own package is named `limits`, as is bench/limits.py: take
# flask-limiter first, and the bench's module under another name.
BENCH = Path(__file__).resolve().parent
_path = sys.path[:]
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]
try:
    from flask_limiter import Limiter
except ImportError as error:
    Limiter, LIMITER_MISSING = None, error
sys.path[:] = [str(BENCH)] + _path
_spec = importlib.util.spec_from_file_location("bench_limits", BENCH / "limits.py")
limits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(limits)

import harvest_bench  # noqa: E402
import report as bench_report  # noqa: E402

URL = "/api/3/action/status_show"


class Timed:
    """A Flask hook that adds its own time to the current request's tally."""

    def __init__(self, hook, tally: list[float]):
        self.hook, self.tally = hook, tally
        self.__name__ = getattr(hook, "__name__", "hook")

    def __call__(self, *args):
        started = time.perf_counter()
        try:
            return self.hook(*args)
        finally:
            self.tally[0] += time.perf_counter() - started


def _wrap(funcs: list, match, tally: list[float]) -> int:
    wrapped = 0
    for n, hook in enumerate(funcs):
        if match(hook):
            funcs[n] = Timed(hook, tally)
            wrapped += 1
    return wrapped


def _module_of(hook) -> str:
    return getattr(getattr(hook, "__func__", hook), "__module__", "") or ""


def flask_limiter_on(app, tally: list[float]):
    """flask-limiter on the same app, with the same caller identity and a
    limit no run reaches; None when it is not installed."""
    if Limiter is None:
        print(f"flask-limiter cannot be imported ({LIMITER_MISSING}): its figure is left out")
        return None
    import ckan.plugins.toolkit as tk
    from ckanext.shanghai.keys import limiter

    before = set(map(id, app.before_request_funcs.get(None, []))) | set(map(id, app.after_request_funcs.get(None, [])))
    instance = Limiter(key_func=lambda: (limiter.caller() or limiter.Caller("invalid", "", 0, True)).bucket,
                       app=app, storage_uri=tk.config["ckan.redis.url"], strategy="fixed-window",
                       default_limits=["100000000 per minute"], headers_enabled=True,
                       default_limits_exempt_when=lambda: not limiter.is_limited(), key_prefix="bench-flask-limiter")
    new = lambda hook: id(hook) not in before  # noqa: E731
    hooks = _wrap(app.before_request_funcs[None], new, tally) + _wrap(app.after_request_funcs[None], new, tally)
    if not hooks:
        raise RuntimeError("flask-limiter registered no request hook on the app")
    return instance


def a_key() -> str:
    import ckan.plugins.toolkit as tk

    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    return tk.get_action("api_token_create")({"user": site_user, "ignore_auth": True},
                                             {"user": site_user, "name": "bench key"})["token"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests of each kind")
    args, _others = parser.parse_known_args()  # the other benchmarks' options

    import ckan.plugins.toolkit as tk
    from ckanext.shanghai.keys import limiter, usage

    app = harvest_bench.ckan_app()
    ours, theirs, bare = [0.0], [0.0], []
    found = _wrap(app.before_request_funcs[None], lambda h: _module_of(h) == limiter.__name__, ours) \
        + _wrap(app.after_request_funcs[None], lambda h: _module_of(h) == usage.__name__, ours)
    if found != 2:
        raise RuntimeError("the portal's limiter hooks are not on the app (plugin shanghai_keys?)")
    other = flask_limiter_on(app, theirs)
    client = app.test_client()
    with app.test_request_context():
        key = a_key()
    redis = usage.redis()
    modes = ["none", "ours"] + (["flask-limiter"] if other else [])
    hook_times: dict[str, list[float]] = {mode: [] for mode in modes}
    request_times: dict[str, list[float]] = {mode: [] for mode in modes}
    window = tk.config.get("ckanext.shanghai.ratelimit.window_seconds")
    for n in range(args.requests):
        headers = {"Authorization": key} if n % 2 else {}
        for mode in modes:
            tk.config["ckanext.shanghai.ratelimit.enabled"] = mode == "ours"
            if other:
                other.enabled = mode == "flask-limiter"
            ours[0] = theirs[0] = 0.0
            started = time.perf_counter()
            response = client.get(URL, headers=headers)
            request_times[mode].append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{mode}: {URL} answered {response.status_code}")
            hook_times[mode].append(ours[0] if mode == "ours" else theirs[0])
        started = time.perf_counter()
        limiter.hit(redis, "bench:bare", window)
        bare.append(time.perf_counter() - started)
    tk.config["ckanext.shanghai.ratelimit.enabled"] = True

    engine = limits.percentiles(bare)
    own = limits.percentiles(hook_times["ours"])
    detail = {"requests_per_mode": args.requests, "url": URL, "half_with_key": True,
              "hooks": {mode: limits.percentiles(hook_times[mode]) for mode in modes if mode != "none"},
              "request": {mode: limits.percentiles(request_times[mode]) for mode in modes},
              "bare_redis_round_trip": engine}
    results = [bench_report.figure(
        "ratelimit_overhead_p95", own["p95_ms"], "ms", better="lower", limit=engine["p95_ms"],
        limit_of="one Redis round trip (INCR and TTL pipelined), nothing else",
        target="value <= 1 ms (limit check and usage count together)", detail=detail)]
    if other:
        results.append(bench_report.figure(
            "ratelimit_flask_limiter_overhead_p95", limits.percentiles(hook_times["flask-limiter"])["p95_ms"], "ms",
            better="lower", limit=engine["p95_ms"], limit_of="one Redis round trip (INCR and TTL pipelined)",
            detail={"package": "flask-limiter 4.1.1 (limits 5.8.0), fixed window, Redis storage; "
                               "its limit check only, no usage count"}))
    bench_report.publish("keys", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
