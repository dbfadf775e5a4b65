"""The store keeps every point and purges steps orphaned by a restart, as TensorBoard."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from advisor.model import Batch
from advisor.model import Restart
from advisor.model import Scalars
from advisor.roles import RoleTable
from advisor.store import Store


def block(points: list[tuple[str, int, float]]) -> Scalars:
    tags = tuple(dict.fromkeys(t for t, _, _ in points))
    return Scalars(
        tags=tags,
        tag_index=np.array([tags.index(t) for t, _, _ in points], np.int32),
        step=np.array([s for _, s, _ in points], np.int64),
        wall_time=np.array([float(s) for _, s, _ in points], np.float64),
        value=np.array([v for _, _, v in points], np.float64),
    )


def reference(points: list[tuple[str, int, float]]) -> dict[str, list[tuple[int, float]]]:
    """Point by point: a step below the tag's last kept step drops every kept step >= it."""
    kept: dict[str, list[tuple[int, float]]] = {}
    for tag, step, value in points:
        series = kept.setdefault(tag, [])
        if series and step < series[-1][0]:
            series[:] = [p for p in series if p[0] < step]
        series.append((step, value))
    return kept


def contents(store: Store, run: str = "r") -> dict[str, list[tuple[int, float]]]:
    out = {}
    for tag in store.tags(run):
        s, _, v = store.series(run, tag).arrays()
        out[tag] = list(zip(s.tolist(), v.tolist(), strict=True))
    return out


def test_restart_purges_orphaned_steps_of_that_tag_only() -> None:
    """Steps 0..9, then a restart at 5: the old 5..9 go, the other tag is untouched."""
    pts = [("a", s, float(s)) for s in range(10)] + [("b", s, 1.0) for s in range(10)]
    pts += [("a", s, 100.0 + s) for s in range(5, 8)]
    store = Store()
    store.add("r", Batch(block(pts)))
    got = contents(store)
    assert got["a"] == [(s, float(s)) for s in range(5)] + [(s, 100.0 + s) for s in range(5, 8)]
    assert len(got["b"]) == 10


def test_duplicate_steps_are_kept() -> None:
    """A step logged twice is not a restart."""
    store = Store()
    store.add("r", Batch(block([("a", 1, 1.0), ("a", 1, 2.0), ("a", 2, 3.0)])))
    assert contents(store)["a"] == [(1, 1.0), (1, 2.0), (2, 3.0)]


def test_session_start_purges_every_tag_at_its_position() -> None:
    """A START marker drops all tags' points at or after its step, then later points stay."""
    pts = [("a", s, 0.0) for s in range(10)] + [("b", s, 0.0) for s in range(10)]
    after = [("a", 6, 1.0), ("b", 7, 1.0)]
    batch = Batch(block(pts + after), restarts=(Restart(position=20, step=5),))
    store = Store()
    store.add("r", batch)
    got = contents(store)
    assert [s for s, _ in got["a"]] == [0, 1, 2, 3, 4, 6]
    assert [s for s, _ in got["b"]] == [0, 1, 2, 3, 4, 7]


def test_reset_replaces_what_the_file_gave() -> None:
    """A file read again from its start replaces its points, even at an equal first step."""
    store = Store()
    store.add("r", Batch(block([("a", 0, 1.0)])))
    store.add("r", Batch(block([("a", 0, 2.0), ("a", 1, 3.0)]), reset=True))
    assert contents(store)["a"] == [(0, 2.0), (1, 3.0)]


def test_curves_carry_roles_and_hparams() -> None:
    """RunCurves gives each tag its role and the run's hyper-parameters."""
    store = Store()
    store.add("r", Batch(block([("val_loss", 1, 0.5)]), hparams={"lr": 0.1}))
    rc = store.curves("r", RoleTable())
    assert rc.curves["val_loss"].role.role.value == "val_loss"
    assert rc.hparams == {"lr": 0.1}


steps_strategy = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 30), st.floats(-5, 5)),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(points=steps_strategy, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_any_chunking_matches_point_by_point_reference(
    points: list[tuple[str, int, float]], cuts: list[int]
) -> None:
    """Adding the points in any blocks keeps exactly what point-by-point purging keeps."""
    bounds = sorted({0, len(points), *(c for c in cuts if c < len(points))})
    store = Store()
    for lo, hi in itertools.pairwise(bounds):
        store.add("r", Batch(block(points[lo:hi])))
    assert contents(store) == {k: v for k, v in reference(points).items() if v}


def test_many_restarts_in_one_block_stay_linear() -> None:
    """Descending steps (every point a restart) are handled without quadratic blow-up."""
    n = 50_000
    pts = [("a", n - i, float(i)) for i in range(n)]
    store = Store()
    store.add("r", Batch(block(pts)))
    assert contents(store)["a"] == [(1, float(n - 1))]
