"""Settings registry, migrations, index, model manifest, and the workers' ordered map."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO

from nomina.errors import ChecksumMismatch, InvalidField, ModelError, ModelMissing, NotFound
from nomina.imaging import decoded
from nomina.index import ExactIndex
from nomina.models import MODELS, load_model, locate_files
from nomina.parallel import AnalyzerPool, ordered_map
from nomina.settings import SETTINGS, Settings, load_settings


def test_every_setting_is_documented_and_matches_the_settings_class():
    doc = (REPO / "docs" / "cli.md").read_text()
    fields = {f.name: f.default for f in dataclasses.fields(Settings) if f.name != "sources"}
    assert set(fields) == {s.name for s in SETTINGS}
    for s in SETTINGS:
        assert s.env_var in doc, f"{s.env_var} is not documented in docs/cli.md"
        assert fields[s.name] == s.default
        assert s.help.strip()


def test_settings_precedence_and_bad_values():
    env = {"NOMINA_TOP": "7", "NOMINA_HOME": "/data/ws"}
    s = load_settings(env, top=9)
    assert (s.top, s.home, s.sources["top"], s.sources["home"]) == (9, Path("/data/ws"), "argument", "NOMINA_HOME")
    with pytest.raises(InvalidField, match="setting NOMINA_TOP: 'many' is not a valid int"):
        load_settings({"NOMINA_TOP": "many"})
    with pytest.raises(
        InvalidField, match="setting NOMINA_ORIENTATION_SEARCH: 'sometimes' is not one of cases, all, off"
    ):
        load_settings({"NOMINA_ORIENTATION_SEARCH": "sometimes"})


def test_migrations_build_exactly_the_declared_schema(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from nomina.store.schema import Base

    with engine.connect() as conn:  # the engine fixture's database, made by the migrations
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert diff == []


def test_a_constraint_the_checks_missed_is_a_conflict_named_alike_on_both_engines(engine):
    """A write that breaks a constraint (two processes racing past the same check) is Conflict, and the
    constraint is named in the same words whichever engine refused it, without the values."""
    from datetime import datetime

    from nomina.errors import Conflict
    from nomina.store import Database
    from nomina.store import schema as db

    database, now = Database(engine), datetime(2026, 12, 1, 10, 0)
    with database.write() as s:
        s.add(db.Case(id="UP-1", kind="deceased", created_at=now))
    rows = {
        "UNIQUE constraint failed: cases.id": db.Case(id="UP-1", kind="deceased", created_at=now),
        "NOT NULL constraint failed: cases.created_at": db.Case(id="UP-2", kind="deceased", created_at=None),
        "FOREIGN KEY constraint failed": db.CasePhoto(
            case_id="UP-3", photo_sha256="0" * 64, file_name="a.jpg", added_at=now, added_by="ana"
        ),
    }
    for named, row in rows.items():
        with pytest.raises(Conflict) as refused, database.write() as s:
            s.add(row)
        assert str(refused.value) == f"not saved: it conflicts with a record saved at the same time ({named})"


@pytest.mark.parametrize("top", [10, 60])  # 10: via the best faces; 60: via every reference's best
def test_exact_index_matches_brute_force(top):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    refs = [f"r{i % 97:03d}" for i in range(500)]
    index = ExactIndex.build([(refs[i], 1000 + i, vectors[i]) for i in range(500)], 16)
    probes = vectors[[3, 250]] + rng.normal(scale=0.1, size=(2, 16)).astype(np.float32)
    hits = index.search(probes, top=top)
    scores = vectors @ probes.T
    best = {}
    for i, ref in enumerate(refs):
        for p in range(2):
            if ref not in best or scores[i, p] > best[ref][0]:
                best[ref] = (float(scores[i, p]), 1000 + i, p)
    expected = sorted(best.items(), key=lambda kv: -kv[1][0])[:top]
    assert [h.reference_id for h in hits] == [ref for ref, _ in expected]
    for h, (_, (score, face, probe)) in zip(hits, expected, strict=True):
        assert h.score == pytest.approx(score, abs=1e-5) and (h.face_id, h.probe) == (face, probe)


def test_index_files_round_trip_and_go_stale(tmp_path):
    index = ExactIndex.build([("a", 1, np.ones(4, np.float32) / 2), ("b", 2, np.eye(4, dtype=np.float32)[0])], 4)
    index.save(tmp_path / "exact", "gen-1")
    loaded = ExactIndex.load(tmp_path / "exact", "gen-1")
    assert loaded is not None and loaded.ref_ids == ["a", "b"]
    assert ExactIndex.load(tmp_path / "exact", "gen-2") is None


def test_model_files_are_checked_by_sha256(tmp_path, monkeypatch):
    manifest = MODELS["sface"]
    # a package holding a tampered copy of the detector file
    package = tmp_path / "site" / "tamperedmodels"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('a model package is never imported')\n")
    for path in locate_files(manifest).values():
        shutil.copy(path, package / "models" / path.name)
    detector = package / "models" / manifest.file("detector").name
    detector.write_bytes(detector.read_bytes()[:-1] + b"\0")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(MODELS, "tampered", dataclasses.replace(manifest, name="tampered", package="tamperedmodels"))
    with pytest.raises(
        ChecksumMismatch, match=r"face_detection_yunet_2023mar_int8bq.onnx: SHA-256 [0-9a-f]{64} differs"
    ):
        load_model("tampered")


def test_model_from_a_folder_records_its_hashes_and_refuses_broken_files(tmp_path):
    manifest = MODELS["sface"]
    for path in locate_files(manifest).values():
        shutil.copy(path, tmp_path / path.name)
    model = load_model("sface", str(tmp_path))
    assert model.identity["files"] == {f.name: f.sha256 for f in manifest.files}
    (tmp_path / manifest.file("embedder").name).write_bytes(b"not a network")
    with pytest.raises(ModelError, match="cannot load its files from .*face_recognition_sface_2021dec_int8bq.onnx"):
        load_model("sface", str(tmp_path))
    with pytest.raises(
        ModelMissing, match="face_detection_yunet_2023mar_int8bq.onnx not found in model folder .*empty$"
    ):
        load_model("sface", str(tmp_path / "empty"))
    with pytest.raises(NotFound, match="model 'arcface' is not known"):
        load_model("arcface")


def test_packaged_model_hashes_are_those_in_the_manifest():
    for f in MODELS["sface"].files:
        path = locate_files(MODELS["sface"])[f.role]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
    assert re.fullmatch(r"[0-9a-f]{64}", MODELS["sface"].files[0].sha256)


def test_every_workspace_setting_is_documented_and_the_gate_modes_agree():
    from nomina.quality import GATE_MODES
    from nomina.settings import WORKSPACE_SETTINGS

    doc = (REPO / "docs" / "cli.md").read_text().split("## Workspace settings", 1)[1]
    for s in WORKSPACE_SETTINGS:
        assert f"`{s.name}`" in doc and f"`{s.default}`" in doc
    gate = next(s for s in WORKSPACE_SETTINGS if s.name == "quality_gate")
    assert gate.choices == GATE_MODES


class Recorded:
    """A function for ordered_map that records, thread-safely, which items it was called with."""

    def __init__(self, fn: Callable[[int], Any]) -> None:
        self.fn = fn
        self.started: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, i: int) -> Any:
        with self._lock:
            self.started.append(i)
        return self.fn(i)


def _square_but_7(i: int) -> int:
    if i == 7:
        raise InvalidField(f"item {i}")
    return i * i


@pytest.mark.parametrize("ahead", [0, 5])
def test_ordered_map_keeps_order_and_runs_at_most_its_window_ahead(ahead):
    """While the caller holds a result (writing a batch), the workers go on with at most 4 per worker plus
    ``ahead`` items; results come in the given order, errors in place of theirs."""
    work = Recorded(_square_but_7)
    results = []
    for n, r in enumerate(ordered_map(work, list(range(40)), workers=2, ahead=ahead)):
        if n == 0:
            time.sleep(0.3)  # the caller is busy: the workers finish what was handed to them, and no more
            assert len(work.started) == 4 * 2 + ahead
        results.append(r)
    assert [r if isinstance(r, int) else str(r) for r in results] == ["item 7" if i == 7 else i * i for i in range(40)]


@pytest.mark.slow
def test_ordered_map_runs_ahead_only_as_far_as_its_byte_budget_holds():
    """Large results (photo files waiting for the writer) shorten the window to what the budget holds."""
    for budget, extra in ((2500, 2), (0, 0), (10**9, 32)):
        work = Recorded(lambda i: bytes(1000 if i < 20 else 10))
        results = ordered_map(work, list(range(60)), workers=2, ahead=32, size=len, budget=budget)
        assert next(results) == bytes(1000)
        time.sleep(0.2)
        assert len(work.started) == 4 * 2  # the one taken and the rest of a window with nothing extra yet
        for _ in range(5):
            next(results)
        time.sleep(0.2)
        # the 6 taken and the rest of a window of a few per worker and what the budget holds of the largest
        assert len(work.started) == 6 + (4 * 2 + extra) - 1
        assert [len(r) for r in results] == [1000] * 14 + [10] * 40
        assert sorted(work.started) == list(range(60))


def test_ordered_map_stopped_early_does_not_run_the_rest_of_its_window():
    """A caller that stops (an error while writing a batch) waits only for the items already running."""
    work = Recorded(lambda i: time.sleep(0.05) or i)
    results = ordered_map(work, list(range(40)), workers=2, ahead=32)  # a window of 40
    assert next(results) == 0
    results.close()
    assert len(work.started) <= 4  # the two running when it stopped, and at most the next two; not 40


def test_worker_networks_are_built_once_and_lent_to_the_next_operations_workers(
    model, settings, faces_dir, monkeypatch
):
    """Two workers build a set of networks each on their first photo; when they end, the sets go back to the
    pool and the next operation's workers use them instead of building their own. The pool keeps no more
    sets than there are workers, however many threads once asked for one."""
    built: list[int] = []
    make_parts = model.make_parts

    def counted() -> Any:
        built.append(1)
        return make_parts()

    monkeypatch.setattr(model, "make_parts", counted)
    pool = AnalyzerPool(model, dataclasses.replace(settings, workers=2))
    photos = [faces_dir / "london" / f"00{n}" / f"00{n}_neutral.jpg" for n in range(1, 7)]

    def embed(photo: Path) -> np.ndarray:
        with decoded(photo.read_bytes(), photo.name, settings.max_pixels, 1) as image:
            return pool.get().analyze(image)[0].embedding

    first = list(ordered_map(embed, photos, 2))
    assert 1 <= len(built) <= 2  # two unless one worker took every photo
    before = len(built)
    again = list(ordered_map(embed, photos, 2))
    assert len(built) == before, "the second operation's workers built networks again"
    np.testing.assert_array_equal(np.stack(first), np.stack(again))  # lent networks give the same embeddings
    with ThreadPoolExecutor(4) as threads:  # four threads at once: two more sets built, two kept afterwards
        list(threads.map(lambda _: (pool.get(), time.sleep(0.3)), range(4)))
    assert len(built) == 4 and len(pool._spare) == 2


def test_stale_temporary_folders_of_killed_requests_are_overwritten_and_removed(tmp_path):
    """A request's uploads go to a temporary folder removed when it ends, but not when its process is killed:
    the server's start and maintenance remove such folders once no request can still be using them."""
    from nomina.files import remove_stale_temporaries

    old, young, other = tmp_path / "nomina-upload-old", tmp_path / "nomina-upload-young", tmp_path / "unrelated-x"
    for folder in (old, young, other):
        (folder / "1").mkdir(parents=True)
        (folder / "1" / "face.jpg").write_bytes(b"\xff\xd8 a face" * 100)
    outside = tmp_path / "kept.txt"
    outside.write_text("not Nomina's")
    (old / "1" / "link").symlink_to(outside)
    held = (old / "1" / "face.jpg").open("rb")  # the bytes as a process still holding the file would see them
    # someone else's folder, linked into the temporary folder under the name Nomina uses: never followed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "theirs.txt").write_text("theirs")
    (tmp_path / "nomina-upload-link").symlink_to(elsewhere, target_is_directory=True)
    hour_ago = time.time() - 3700
    for folder in (old, other, elsewhere, tmp_path / "nomina-upload-link"):
        os.utime(folder, (hour_ago, hour_ago), follow_symlinks=False)
    assert remove_stale_temporaries(where=tmp_path) == 1
    assert not old.exists() and young.exists() and other.exists()
    assert (elsewhere / "theirs.txt").read_text() == "theirs"
    assert held.read() == bytes(len(b"\xff\xd8 a face" * 100))  # overwritten before it was unlinked
    held.close()
    assert outside.read_text() == "not Nomina's"
