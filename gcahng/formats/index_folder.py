"""The index folder format (version 2): its files, one schema for its sidecars, its reader and writer.

An index folder holds

- ``index.faiss``: the faiss index of L2-normalised embeddings (inner product = cosine);
- ``index.json``: ``format``, ``version``, ``gcahng_version``, ``num_items``, ``embedding_dim``,
  ``normalisation`` ("l2"), ``metric`` ("inner_product"), ``index_type`` (flat|hnsw|ivf, matching
  the faiss file), ``params`` (name -> int), ``recall@10_vs_exact`` (number or null), ``model``
  (``kind`` "checkpoint" | "onnx", ``path``, ``fingerprint``, optional ``model_spec``) and
  ``source``: the gallery, either ``{"images": ROOT}`` (an absolute folder) or ``{"dataset",
  "split", "data_root"}``, plus ``skipped`` (images left out as unreadable), and ``files``: the size
  and SHA-256 of ``index.faiss`` and ``gallery.json`` (so a folder whose files do not belong together
  is refused; indexes written before this field existed are read without the check);
- ``gallery.json``: ``items`` (one string per vector) and ``labels`` (strings or null). For a
  folder gallery an item is a path relative to ROOT that must resolve (links followed) to a
  regular file inside ROOT; for a dataset it is the item id the dataset's loader gives (its
  path relative to ``data_root``, or ``digits/0005`` for in-memory sets);
- ``skipped.txt`` (written by ``gcahng index`` when images were left out): ``PATH<TAB>reason`` lines;
- ``.gcahng.lock``: the folder lock its writer held (:mod:`gcahng.locking`).

Every file is written by :func:`gcahng.formats.atomic.write_atomically` (a unique temporary name,
``.index.faiss.XXXXXXXX.tmp``, renamed into place). A writer removes ``index.json`` once the new
``index.faiss`` is in place (a full disk before that leaves the old index whole) and writes it last,
so a folder whose writer was killed holds no ``index.json`` (an incomplete index, which readers
refuse and ``--force`` replaces) or one whose recorded SHA-256 does not match (refused as corrupt).
Anything that does not match the schema is
refused as corrupt, naming the file and the field. A folder is written only when it is new,
empty, or (``force``) an index folder that holds nothing but these files: :func:`check_index_output`.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import faiss

from gcahng import __version__
from gcahng.errors import CheckpointError, InputError
from gcahng.formats.atomic import is_temporary_of, write_atomically, write_bytes
from gcahng.locking import LOCK_FILE
from gcahng.serving.onnx_format import file_sha256
from gcahng.user_paths import describe, non_regular_reason, regular_file

INDEX_FORMAT = "gcahng-index"
INDEX_VERSION = 2
FAISS_FILE, META_FILE, GALLERY_FILE, SKIPPED_FILE = "index.faiss", "index.json", "gallery.json", "skipped.txt"
INDEX_FILES = (FAISS_FILE, META_FILE, GALLERY_FILE, SKIPPED_FILE, LOCK_FILE)
RECALL_KEY = "recall@10_vs_exact"
ModelKind = Literal["checkpoint", "onnx"]
_FAISS_CLASSES = {"flat": faiss.IndexFlat, "hnsw": faiss.IndexHNSWFlat, "ivf": faiss.IndexIVFFlat}
_SEARCH_PARAMS = {"flat": (), "hnsw": ("ef_search",), "ivf": ("nprobe",)}
SCORE_TOLERANCE = 1e-3
"""How far (float32 rounding) a stored cosine similarity may leave [-1, 1] before the index is corrupt."""


@dataclass(frozen=True)
class ModelRecord:
    """The model that embedded a gallery.

    kind:               ``"checkpoint"`` (a gcahng checkpoint) or ``"onnx"`` (``gcahng export``'s file);
    path:               where the model file was;
    fingerprint:        the checkpoint's fingerprint, or the SHA-256 of the ONNX file;
    model_spec:         the ``ModelSpec.to_dict()`` of the network;
    source_fingerprint: for ``onnx``, the fingerprint of the checkpoint it was exported from.
    """

    kind: ModelKind
    path: str
    fingerprint: str
    model_spec: dict[str, Any] | None = None
    source_fingerprint: str | None = None

    @classmethod
    def of(cls, embedder: Any) -> ModelRecord:
        """The record of the model an ``Embedder`` or ``OnnxEmbedder`` runs."""
        source = embedder.source_fingerprint if embedder.kind == "onnx" else None
        return cls(embedder.kind, str(embedder.path), embedder.fingerprint, dict(embedder.model_spec), source)

    @property
    def fingerprints(self) -> set[str]:
        """Fingerprints of the models accepted as this one (the checkpoint and its exports)."""
        return {f for f in (self.fingerprint, self.source_fingerprint) if f}

    @property
    def embedding_dim(self) -> int | None:
        return (self.model_spec or {}).get("embedding_dim")


@dataclass(frozen=True)
class IndexContents:
    """What an index folder holds, validated: ``paths`` are the gallery's resolved image paths
    (or a dataset's item paths), one per vector of ``faiss_index``."""

    faiss_index: Any
    paths: list[str]
    labels: list[str] | None
    model: ModelRecord
    index_type: str
    params: dict[str, int]
    recall: float | None
    source: dict[str, Any]


class _Corrupt:
    """Raises ``CheckpointError("corrupt index file FILE: field: problem")``."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def __call__(self, field: str, problem: str) -> CheckpointError:
        return CheckpointError(f"corrupt index file {self.file}: {field}: {problem}; rebuild it with `gcahng index`")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(corrupt: _Corrupt, record: Mapping, field: str, test: Callable[[Any], bool], expected: str,
           optional: bool = False) -> Any:
    if field not in record:
        if optional:
            return None
        raise corrupt(field, "missing")
    value = record[field]
    if not test(value):
        raise corrupt(field, f"must be {expected}, got {json.dumps(value)[:80]}")
    return value


def _read_json(path: Path) -> Any:
    regular_file(path, "index file", CheckpointError)
    try:
        return json.loads(path.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"corrupt index file {path}: not valid JSON ({err}); rebuild it with `gcahng index`"
                              ) from None
    except OSError as err:
        raise CheckpointError(f"cannot read index file {path}: {err.strerror}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def is_index_folder(directory: Path) -> bool:
    """True when ``directory/index.json`` is a regular file that declares a gcahng index (of any version)."""
    meta_file = directory / META_FILE
    if non_regular_reason(meta_file) is not None:  # a FIFO would block the read
        return False
    try:
        meta = json.loads(meta_file.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == INDEX_FORMAT


def _is_temporary(name: str) -> bool:
    """A temporary file of an index file's write (left behind by a killed writer)."""
    return any(is_temporary_of(name, file) for file in INDEX_FILES)


def is_incomplete_index(directory: Path) -> bool:
    """True when ``directory`` holds what a killed index writer leaves: ``index.faiss`` but no ``index.json``."""
    return not os.path.lexists(directory / META_FILE) and os.path.isfile(directory / FAISS_FILE)


def check_index_output(directory: str | Path, *, force: bool) -> None:
    """Raise :class:`InputError` unless an index may be written into ``directory``: it does not exist,
    holds nothing but a lock and leftover temporaries, or, with ``force``, is an index folder (or an
    incomplete one) holding only the files of an index (so no file of the user's is ever replaced or deleted)."""
    directory = Path(directory).expanduser()
    if not os.path.lexists(directory):
        return
    if not directory.is_dir():
        raise InputError(f"--out {describe(directory)} exists and is not a folder")
    names = sorted(p.name for p in directory.iterdir())
    foreign = [n for n in names if n not in INDEX_FILES and not _is_temporary(n)]
    files = [n for n in names if n in INDEX_FILES and n != LOCK_FILE]
    if not foreign and not files:
        return
    listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    if not foreign and is_incomplete_index(directory):
        if not force:
            raise InputError(f"--out {describe(directory)} holds an incomplete index ({', '.join(files)}, no "
                             f"{META_FILE}: its build was interrupted); pass --force to replace it")
        return
    if not is_index_folder(directory):
        held = listed or ", ".join(files)
        raise InputError(f"--out {describe(directory)} exists and is not a gcahng index (it holds {held}); "
                         "give a new or empty folder")
    if foreign:
        raise InputError(f"--out {describe(directory)} holds an index and files that are not part of one "
                         f"({listed}); refusing to replace it: give a new or empty folder")
    if not force:
        raise InputError(f"--out {describe(directory)} already holds an index; pass --force to replace it")


def remove_leftover_temporaries(directory: str | Path) -> int:
    """Delete the temporary files killed writers left in the index folder ``directory`` (call it while
    holding the folder's lock); returns how many."""
    leftovers = [p for p in Path(directory).iterdir() if _is_temporary(p.name) and p.is_file()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


def _check_meta(meta: Any, corrupt: _Corrupt, directory: Path) -> None:
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise CheckpointError(f"{corrupt.file} is not a gcahng index description")
    version = meta.get("version")
    if _is_int(version) and version < INDEX_VERSION:
        raise CheckpointError(f"{directory} is an index in an older format (version {version}, absolute image "
                              f"paths); rebuild it with `gcahng index`")
    if version != INDEX_VERSION:
        raise CheckpointError(f"{corrupt.file} has index version {version!r}; this gcahng reads version "
                              f"{INDEX_VERSION}")
    _check(corrupt, meta, "num_items", lambda v: _is_int(v) and v >= 0, "a count")
    _check(corrupt, meta, "embedding_dim", lambda v: _is_int(v) and v > 0, "a positive integer")
    _check(corrupt, meta, "normalisation", lambda v: v == "l2", '"l2"')
    _check(corrupt, meta, "metric", lambda v: v == "inner_product", '"inner_product"')
    index_type = _check(corrupt, meta, "index_type", lambda v: v in _FAISS_CLASSES, " or ".join(_FAISS_CLASSES))
    params = _check(corrupt, meta, "params", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _is_int(x) and x > 0 for k, x in v.items()), "a mapping of names to positive integers")
    for name in _SEARCH_PARAMS[index_type]:
        if name not in params:
            raise corrupt(f"params.{name}", f"missing (needed by a {index_type} index)")
    _check(corrupt, meta, RECALL_KEY, lambda v: v is None or (isinstance(v, float | int) and not isinstance(
        v, bool) and 0 <= v <= 1), "null or a number in [0, 1]", optional=True)
    model = _check(corrupt, meta, "model", lambda v: isinstance(v, dict), "a mapping")
    _check(corrupt, model, "kind", lambda v: v in get_args(ModelKind), " or ".join(get_args(ModelKind)))
    _check(corrupt, model, "path", lambda v: isinstance(v, str) and v != "", "a path")
    _check(corrupt, model, "fingerprint", lambda v: isinstance(v, str) and v != "", "a string")
    _check(corrupt, model, "model_spec", lambda v: v is None or isinstance(v, dict), "a mapping", optional=True)
    _check(corrupt, model, "source_fingerprint", lambda v: v is None or (isinstance(v, str) and v != ""),
           "null or a string", optional=True)
    source = _check(corrupt, meta, "source", lambda v: isinstance(v, dict), "a mapping")
    _check(corrupt, source, "skipped", lambda v: _is_int(v) and v >= 0, "a count", optional=True)
    if "images" in source:
        _check(corrupt, source, "images", lambda v: isinstance(v, str) and os.path.isabs(v), "an absolute folder")
    elif "dataset" in source:
        _check(corrupt, source, "dataset", lambda v: isinstance(v, str) and v != "", "a dataset name")
        _check(corrupt, source, "split", lambda v: isinstance(v, str) and v != "", "a split name")
        _check(corrupt, source, "data_root", lambda v: v is None or isinstance(v, str), "null or a folder")
    else:
        raise corrupt("source", "names neither a gallery folder (images) nor a dataset")


def file_record(path: Path) -> dict[str, Any]:
    """``{"bytes": size, "sha256": hex digest}`` of the file ``path``."""
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _check_file_records(meta: dict, corrupt: _Corrupt, *paths: Path) -> None:
    """Refuse files that are not the ones ``index.json`` was written with (another index's, or a
    rebuild's that was interrupted, or changed since)."""
    records = _check(corrupt, meta, "files", lambda v: isinstance(v, dict), "a mapping", optional=True)
    if records is None:  # written before the field existed
        return
    for path in paths:
        record = records.get(path.name)
        if not (isinstance(record, dict) and _is_int(record.get("bytes")) and isinstance(record.get("sha256"), str)):
            raise corrupt(f"files.{path.name}", "must be a mapping with bytes and sha256")
        regular_file(path, "index file", CheckpointError)
        try:
            actual = file_record(path)
        except OSError as err:
            raise CheckpointError(f"cannot read index file {path}: {err.strerror}") from None
        if actual != record:
            raise CheckpointError(f"corrupt index file {path}: not the file {corrupt.file.name} was written with "
                                  f"({actual['bytes']} bytes, SHA-256 {actual['sha256'][:12]}..., expected "
                                  f"{record['bytes']} bytes, {record['sha256'][:12]}...): the folder was changed "
                                  "since; rebuild it with `gcahng index ... --force`")


def _check_faiss(faiss_index: Any, meta: dict, corrupt: _Corrupt, faiss_file: Path) -> None:
    index_type = meta["index_type"]
    if not isinstance(faiss_index, _FAISS_CLASSES[index_type]):
        raise corrupt("index_type", f"says {index_type} but {faiss_file} holds a {type(faiss_index).__name__}")
    if faiss_index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise corrupt("metric", f"{faiss_file} does not use the inner product")
    if faiss_index.d != meta["embedding_dim"]:
        raise corrupt("embedding_dim", f"says {meta['embedding_dim']} but {faiss_file} holds {faiss_index.d}-d vectors")
    if faiss_index.ntotal != meta["num_items"]:
        raise corrupt("num_items", f"says {meta['num_items']} but {faiss_file} holds {faiss_index.ntotal} vectors")


def _resolve_folder_items(root: str, items: list[str], corrupt: _Corrupt) -> list[str]:
    """Absolute paths of the gallery ``items``: each must resolve inside ``root`` to a regular file."""
    real_root = os.path.realpath(root)
    if not os.path.isdir(real_root):
        raise CheckpointError(f"the gallery folder {root} of index {corrupt.file.parent} no longer exists; "
                              "rebuild the index with `gcahng index`")
    paths = []
    for number, item in enumerate(items):
        path = os.path.join(root, item)
        if os.path.isabs(item) or not resolves_inside(path, real_root):
            raise corrupt(f"items[{number}]", f"{item!r} resolves to {os.path.realpath(path)}, outside the "
                                              f"gallery folder {root}")
        reason = non_regular_reason(path)
        if reason is not None:
            raise corrupt(f"items[{number}]", f"{describe(path)}: {reason}")
        paths.append(path)
    return paths


def resolves_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` (links followed) is inside the folder ``root``: the only images an index reads."""
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def _resolve_dataset_items(source: dict, items: list[str], corrupt: _Corrupt) -> list[str]:
    """The dataset item paths of ``items``, each looked up in the split its loader gives."""
    from gcahng.data.registry import create_dataset

    data = create_dataset(source["dataset"], source.get("data_root"), source["split"])
    known = {_item_id(path, source.get("data_root")): path for path in data.paths}
    for number, item in enumerate(items):
        if item not in known:
            raise corrupt(f"items[{number}]", f"{item!r} is not an item of {source['dataset']}/{source['split']}")
    return [known[item] for item in items]


def _item_id(path: str, root: str | None) -> str:
    """A dataset item's id: its path relative to ``root`` when it is a file there, else the path itself."""
    return os.path.relpath(path, root) if root is not None and os.path.isabs(path) else path


def gallery_items(paths: Sequence[str], source: Mapping[str, Any]) -> list[str]:
    """What ``gallery.json`` stores for ``paths``: relative to the gallery folder, or dataset item ids.

    Raises :class:`InputError` for a path outside the gallery folder.
    """
    if "images" in source:
        root = source["images"]
        items = [os.path.relpath(os.path.abspath(p), root) for p in paths]
        outside = [p for p, item in zip(paths, items, strict=True) if item.startswith("..")]
        if outside:
            raise InputError(f"gallery image {outside[0]} is outside the gallery folder {root}")
        return items
    if "dataset" in source:
        return [_item_id(p, source.get("data_root")) for p in paths]
    raise InputError("an index needs a gallery folder (source images=...) or a dataset (source dataset=...)")


def read_index_folder(directory: str | Path) -> IndexContents:
    """Read and validate an index folder; raises :class:`CheckpointError` naming the file and field."""
    directory = Path(directory).expanduser()
    files = [directory / name for name in (META_FILE, GALLERY_FILE, FAISS_FILE)]
    missing = [f.name for f in files if not os.path.lexists(f)]
    if META_FILE in missing and is_incomplete_index(directory):
        raise CheckpointError(f"{directory} holds an incomplete index (no {META_FILE}: its build was interrupted); "
                              "rebuild it with `gcahng index ... --force`")
    if missing:
        raise CheckpointError(
            f"no gcahng index at {directory} (missing {', '.join(missing)}); build one with `gcahng index`"
        )
    meta_file, gallery_file, faiss_file = files
    meta = _read_json(meta_file)
    _check_meta(meta, _Corrupt(meta_file), directory)
    gallery = _read_json(gallery_file)
    corrupt = _Corrupt(gallery_file)
    if not isinstance(gallery, dict):
        raise corrupt("(top level)", "must be a mapping")
    items = _check(corrupt, gallery, "items", lambda v: isinstance(v, list) and all(
        isinstance(x, str) and x and "\0" not in x for x in v), "a list of paths")
    labels = _check(corrupt, gallery, "labels", lambda v: v is None or (isinstance(v, list) and all(
        isinstance(x, str) for x in v)), "null or a list of strings")
    for field, values in (("items", items), ("labels", labels)):
        if values is not None and len(values) != meta["num_items"]:
            raise corrupt(field, f"{len(values)} entries but {meta_file} says num_items {meta['num_items']}")
    regular_file(faiss_file, "index file", CheckpointError)
    try:
        faiss_index = faiss.read_index(str(faiss_file))
    except RuntimeError as err:
        raise CheckpointError(f"corrupt index file {faiss_file}: faiss cannot read it ({str(err).splitlines()[0]})"
                              ) from None
    _check_faiss(faiss_index, meta, _Corrupt(meta_file), faiss_file)
    source = meta["source"]
    if "images" in source:
        paths = _resolve_folder_items(source["images"], items, corrupt)
    else:
        paths = _resolve_dataset_items(source, items, corrupt)
    _check_file_records(meta, _Corrupt(meta_file), gallery_file, faiss_file)  # each valid, but together?
    model = meta["model"]
    return IndexContents(faiss_index, paths, labels,
                         ModelRecord(model["kind"], model["path"], model["fingerprint"], model.get("model_spec"),
                                     model.get("source_fingerprint")),
                         meta["index_type"], dict(meta["params"]), meta.get(RECALL_KEY), dict(source))


def write_index_folder(directory: str | Path, contents: IndexContents) -> Path:
    """Write ``contents`` into ``directory`` (created if needed); returns the directory."""
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    recall = contents.recall
    meta = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "gcahng_version": __version__,
        "num_items": len(contents.paths),
        "embedding_dim": int(contents.faiss_index.d),
        "normalisation": "l2",
        "metric": "inner_product",
        "index_type": contents.index_type,
        "params": contents.params,
        RECALL_KEY: None if recall is None or math.isnan(recall) else float(recall),
        "model": asdict(contents.model),
        "source": contents.source,
    }
    gallery = {"items": gallery_items(contents.paths, contents.source), "labels": contents.labels}
    write_atomically(directory / FAISS_FILE, lambda tmp: faiss.write_index(contents.faiss_index, tmp))
    (directory / META_FILE).unlink(missing_ok=True)  # until the last write, the folder is an incomplete index
    write_atomically(directory / GALLERY_FILE, write_bytes(json.dumps(gallery).encode()))
    meta["files"] = {name: file_record(directory / name) for name in (FAISS_FILE, GALLERY_FILE)}
    write_atomically(directory / META_FILE, write_bytes(json.dumps(meta, indent=1).encode()))
    return directory


def write_skipped(directory: str | Path, skipped: Sequence[tuple[str, str]]) -> Path | None:
    """``skipped.txt`` of an index folder: one ``PATH<TAB>reason`` line per image left out, or no
    file when none was; returns the file written, if any."""
    target = Path(directory).expanduser() / SKIPPED_FILE
    if not skipped:
        target.unlink(missing_ok=True)
        return None
    write_atomically(target, write_bytes("".join(f"{path}\t{reason}\n" for path, reason in skipped).encode()))
    return target
