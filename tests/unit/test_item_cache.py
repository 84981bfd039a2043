"""The local forge's item cache is shared by claim-task's seats, which run in threads."""

from __future__ import annotations

import json
import sys
import threading

from agentmesh.forge.local.item_cache import ItemCache


def test_seats_putting_metas_while_one_saves_never_break_the_cache(tmp_path):
    """Before its lock, a save (json.dumps of every meta) or a `keep` ran while another seat's PR put a
    meta: "dictionary changed size during iteration", and the tick raised (seen in the hostile corpus)."""
    cache = ItemCache(tmp_path / "items.json")
    meta = {"kind": "issue", "title": "x" * 200, "labels": ["a", "b"], "body": "y" * 2000}
    for n in range(300):
        cache.put(f"old{n}", meta)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def seat(name: str) -> None:
        start.wait()
        try:
            for n in range(600):
                cache.put(f"{name}{n}", meta, save=n % 5 == 0)
                if n % 4 == 0:
                    cache.keep({f"{name}{m}" for m in range(n)})
        except Exception as exc:  # noqa: BLE001 -- what the test is looking for
            errors.append(exc)

    threads = [threading.Thread(target=seat, args=(name,)) for name in "abcd"]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two bytecodes: the race shows every run
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert isinstance(json.loads((tmp_path / "items.json").read_text())["metas"], dict)  # a whole file


def test_a_meta_handed_out_is_a_deep_copy_as_deepcopy_makes_it(tmp_path):
    """json_copy replaced copy.deepcopy on the listing path: the same value, and nothing shared that a caller
    could change in the cache."""
    import copy

    from agentmesh.forge.local.item_cache import json_copy

    meta = {"kind": "pull", "labels": ["a", "b"], "review": {"by": ["x"], "at": None, "n": 2, "ok": True, "w": 1.5},
            "pairs": (["p"], "q"), "title": "ünï"}
    copied = json_copy(meta)
    assert copied == copy.deepcopy(meta) and type(copied["pairs"]) is tuple
    copied["labels"].append("c")
    copied["review"]["by"].append("y")
    copied["pairs"][0].append("r")
    assert meta["labels"] == ["a", "b"] and meta["review"]["by"] == ["x"] and meta["pairs"][0] == ["p"]
    cache = ItemCache(tmp_path / "items.json")
    cache.put("s1", meta)
    meta["labels"].append("later")  # the caller's dict changes after the put: the cache keeps what was put
    got = cache.get("s1")
    assert got is not None and got["labels"] == ["a", "b"]
    got["labels"].append("mine")
    assert cache.get("s1")["labels"] == ["a", "b"]
