from evals.split import side, split


def test_split_is_stable_and_partitions():
    keys = [f"doc-{i}" for i in range(1000)]
    sides = split("example", keys, key=str)
    assert sorted(sides["dev"] + sides["heldout"]) == sorted(keys)
    assert 0.25 < len(sides["heldout"]) / len(keys) < 0.35
    assert all(side("example", k) == "heldout" for k in sides["heldout"])


def test_split_depends_on_set_and_salt():
    keys = [f"doc-{i}" for i in range(200)]
    a = split("one", keys, key=str)["heldout"]
    assert a != split("two", keys, key=str)["heldout"]
    assert a != split("one", keys, key=str, salt="other")["heldout"]
