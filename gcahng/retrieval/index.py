"""A searchable gallery: a faiss index of L2-normalised embeddings plus its sidecar.

An index directory holds

- ``index.faiss``: the faiss index (inner product over L2-normalised embeddings = cosine);
- ``index.json``: format, embedding size, normalisation, index type and parameters, the
  recall measured at build time, and the model that embedded the gallery (see :class:`ModelRecord`);
- ``gallery.json``: the gallery's image paths (absolute) and class labels when known.

    index = Index.load("gallery_index")
    results = index.search(query_embeddings, k=10)   # or index.query(["q.jpg"], k=10)
    for hit in results[0]:
        print(hit.rank, hit.score, hit.path)
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from gcahng import __version__
from gcahng.errors import CheckpointError, InputError
from gcahng.retrieval.ann import apply_search_params, build_faiss_index, default_params, recall_against_exact

if TYPE_CHECKING:
    from PIL import Image

    from gcahng.retrieval.embedder import Embedder
    from gcahng.serving.onnx_embedder import OnnxEmbedder

    AnyEmbedder = Embedder | OnnxEmbedder

INDEX_FORMAT = "gcahng-index"
INDEX_VERSION = 1
FAISS_FILE, META_FILE, GALLERY_FILE = "index.faiss", "index.json", "gallery.json"
RECALL_K = 10
FEW_QUERIES = 20


# ---- ONNX support (task D): the model record names a checkpoint or an exported ONNX model ----
MODEL_KINDS = ("checkpoint", "onnx")


@dataclass(frozen=True)
class ModelRecord:
    """The model that embedded a gallery.

    kind:               ``"checkpoint"`` (a gcahng checkpoint) or ``"onnx"`` (``gcahng export``'s file);
    path:               where the model file was;
    fingerprint:        the checkpoint's fingerprint, or the SHA-256 of the ONNX file;
    model_spec:         the ``ModelSpec.to_dict()`` of the network;
    source_fingerprint: for ``onnx``, the fingerprint of the checkpoint it was exported from.
    """

    kind: str
    path: str
    fingerprint: str
    model_spec: dict[str, Any]
    source_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise CheckpointError(f"model kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")

    @classmethod
    def of(cls, embedder: AnyEmbedder) -> ModelRecord:
        """The record of the model ``embedder`` runs."""
        source = embedder.source_fingerprint if embedder.kind == "onnx" else None
        return cls(embedder.kind, str(embedder.path), embedder.fingerprint, dict(embedder.model_spec), source)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecord:
        """Read a sidecar's ``model`` entry; version-1 sidecars without ``kind`` named a ``checkpoint``."""
        if "kind" not in data and "checkpoint" in data:
            data = {"kind": "checkpoint", "path": data["checkpoint"],
                    **{k: v for k, v in data.items() if k != "checkpoint"}}
        return cls(**data)

    @property
    def fingerprints(self) -> set[str]:
        """Fingerprints of the models accepted as this one (the checkpoint and its exports)."""
        return {f for f in (self.fingerprint, self.source_fingerprint) if f}

    @property
    def embedding_dim(self) -> int | None:
        return self.model_spec.get("embedding_dim")


def load_model(path: str | Path, device: str = "cpu") -> AnyEmbedder:
    """A checkpoint as an :class:`Embedder`, or an ``.onnx`` file as an ``OnnxEmbedder`` (no torch import)."""
    from gcahng.serving.onnx_format import is_onnx_path

    if is_onnx_path(path):
        from gcahng.serving.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(path)
    from gcahng.retrieval.embedder import load

    return load(path, device=device)
# ---- end of ONNX support in ModelRecord ----


@dataclass(frozen=True)
class Hit:
    """One search result; ``score`` is the cosine similarity in [-1, 1]."""

    rank: int
    id: int
    path: str
    score: float
    label: str | None


@dataclass(frozen=True)
class SearchResults:
    """Top-k results of Q queries: ``scores`` (Q, k) float32 and gallery ``ids`` (Q, k) int64.

    Where fewer than k results were found (approximate indexes), ids are -1; ``results[q]``
    lists only the real hits of query q.
    """

    scores: np.ndarray
    ids: np.ndarray
    index: Index = field(repr=False)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, query: int) -> list[Hit]:
        hits = []
        for rank, (item, score) in enumerate(zip(self.ids[query], self.scores[query], strict=False), start=1):
            if item < 0:
                break
            hits.append(Hit(rank, int(item), self.index.paths[item], float(score), self.index.label(int(item))))
        return hits

    def __iter__(self) -> Iterator[list[Hit]]:
        return (self[q] for q in range(len(self)))


@contextmanager
def _threads_for(num_queries: int) -> Iterator[None]:
    """faiss on one OpenMP thread while searching fewer than ``FEW_QUERIES`` queries."""
    if num_queries >= FEW_QUERIES:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows of ``vectors`` (N, D) scaled to unit L2 norm, as contiguous float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


class Index:
    """A gallery of embedded images that can be searched by embedding or by image."""

    def __init__(
        self,
        faiss_index: Any,
        paths: Sequence[str],
        labels: Sequence[str] | None,
        model: ModelRecord,
        *,
        index_type: str,
        params: dict[str, int],
        recall: float | None,
        source: dict[str, Any] | None = None,
    ) -> None:
        if faiss_index.ntotal != len(paths):
            raise CheckpointError(f"index holds {faiss_index.ntotal} vectors but {len(paths)} image paths")
        if labels is not None and len(labels) != len(paths):
            raise CheckpointError(f"index has {len(labels)} labels for {len(paths)} image paths")
        self.faiss_index = faiss_index
        self.paths = list(paths)
        self.labels = None if labels is None else [str(label) for label in labels]
        self.model = model
        self.index_type = index_type
        self.params = dict(params)
        self.recall = recall
        self.source = dict(source or {})
        self._ids_by_path: dict[str, int] | None = None  # built on first label_of()
        self._label_set: set[str] = set()

    # ------------------------------------------------------------------ building and storage
    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        paths: Sequence[str | Path],
        labels: Sequence[str | int] | None,
        model: ModelRecord,
        *,
        index_type: str = "flat",
        params: dict[str, int] | None = None,
        source: dict[str, Any] | None = None,
    ) -> Index:
        """Index ``embeddings`` (N, D) of the images at ``paths`` (L2-normalised here).

        Existing files are stored as absolute paths, so the index works from any folder.

        ``params`` override :func:`~gcahng.retrieval.ann.default_params`. For ``hnsw`` and
        ``ivf`` the recall@10 against exact search is measured and kept in ``.recall``.
        """
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[0] == 0:
            raise InputError(f"embeddings must be a non-empty (N, D) array, got shape {embeddings.shape}")
        if embeddings.shape[0] != len(paths):
            raise InputError(f"{embeddings.shape[0]} embeddings for {len(paths)} paths")
        if model.embedding_dim is not None and model.embedding_dim != embeddings.shape[1]:
            raise InputError(f"embeddings have size {embeddings.shape[1]}, the model {model.embedding_dim}")
        bad = [str(p) for p in paths if "\n" in str(p)]
        if bad:
            raise InputError(f"image path contains a line break: {bad[0]!r}")
        embeddings = l2_normalise(embeddings)
        all_params = {**default_params(index_type, len(paths)), **(params or {})}
        faiss_index = build_faiss_index(embeddings, index_type, all_params)
        recall = None if index_type == "flat" else recall_against_exact(faiss_index, embeddings, k=RECALL_K)
        # files are kept as absolute paths; identifiers of in-memory images (digits/0042) as given
        stored = [str(Path(p).expanduser().resolve()) if Path(p).expanduser().exists() else str(p) for p in paths]
        return cls(faiss_index, stored, labels if labels is None else list(labels), model,
                   index_type=index_type, params=all_params, recall=recall, source=source)

    def save(self, directory: str | Path) -> Path:
        """Write the index files into ``directory`` (created if needed); returns the directory."""
        directory = Path(directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "gcahng_version": __version__,
            "num_items": len(self.paths),
            "embedding_dim": self.dim,
            "normalisation": "l2",
            "metric": "inner_product",
            "index_type": self.index_type,
            "params": self.params,
            f"recall@{RECALL_K}_vs_exact": self.recall,
            "model": asdict(self.model),
            "source": self.source,
        }
        faiss.write_index(self.faiss_index, str(directory / (FAISS_FILE + ".tmp")))
        os.replace(directory / (FAISS_FILE + ".tmp"), directory / FAISS_FILE)
        for name, content in ((GALLERY_FILE, {"paths": self.paths, "labels": self.labels}), (META_FILE, meta)):
            tmp = directory / (name + ".tmp")
            tmp.write_text(json.dumps(content, indent=1 if name == META_FILE else None))
            os.replace(tmp, directory / name)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Index:
        """Read an index directory written by :meth:`save` (or ``gcahng index``).

        Raises :class:`CheckpointError` naming the directory when it is missing or malformed.
        """
        directory = Path(directory).expanduser()
        files = [directory / name for name in (META_FILE, GALLERY_FILE, FAISS_FILE)]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(
                f"no gcahng index at {directory} (missing {', '.join(missing)}); build one with `gcahng index`"
            )
        try:
            meta = json.loads(files[0].read_text())
            gallery = json.loads(files[1].read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"cannot read index metadata in {directory}: {err}") from err
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise CheckpointError(f"{files[0]} is not a gcahng index description")
        if meta.get("version") != INDEX_VERSION:
            raise CheckpointError(f"{files[0]} has index version {meta.get('version')!r}; expected {INDEX_VERSION}")
        try:
            faiss_index = faiss.read_index(str(files[2]))
            model = ModelRecord.from_dict(meta["model"])
            apply_search_params(faiss_index, meta["index_type"], meta["params"])
            paths, labels = gallery["paths"], gallery["labels"]
        except (RuntimeError, KeyError, TypeError) as err:
            raise CheckpointError(f"corrupt index in {directory}: {type(err).__name__}: {err}") from err
        if faiss_index.d != meta.get("embedding_dim"):
            raise CheckpointError(
                f"{files[2]} holds {faiss_index.d}-d vectors but {files[0]} says {meta.get('embedding_dim')}"
            )
        return cls(faiss_index, paths, labels, model, index_type=meta["index_type"], params=meta["params"],
                   recall=meta.get(f"recall@{RECALL_K}_vs_exact"), source=meta.get("source"))

    # ------------------------------------------------------------------ searching
    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self.faiss_index.d)

    def __len__(self) -> int:
        return len(self.paths)

    def label(self, item: int) -> str | None:
        """Class label of gallery item ``item``, or None when the gallery has no labels."""
        return None if self.labels is None else self.labels[item]

    def label_of(self, path: str | Path) -> str | None:
        """The class of an image outside or inside the gallery, when it can be known.

        A gallery image has its gallery label; another image whose parent folder is named
        like a gallery class (``queries/<class>/x.jpg``) has that class; otherwise None.
        """
        if self.labels is None:
            return None
        if self._ids_by_path is None:
            self._ids_by_path = {p: i for i, p in enumerate(self.paths)}
            self._label_set = set(self.labels)
        resolved = Path(path).expanduser().resolve()
        item = self._ids_by_path.get(str(resolved))
        if item is not None:
            return self.labels[item]
        return resolved.parent.name if resolved.parent.name in self._label_set else None

    def search(self, queries: np.ndarray, k: int = 10) -> SearchResults:
        """The k most similar gallery images of each query embedding.

        ``queries``: (Q, D) or (D,) embeddings (L2-normalised here). ``k`` larger than the
        gallery is reduced to its size. Fewer than ``FEW_QUERIES`` queries are searched on one
        thread: faiss' OpenMP threads cost more than they save there (on a busy 2-core
        machine, 24 ms instead of 4 ms for one query against 60,000 512-d vectors).
        """
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InputError(f"queries must have shape (Q, {self.dim}), got {queries.shape}")
        with _threads_for(len(queries)):
            scores, ids = self.faiss_index.search(l2_normalise(queries), min(k, len(self)))
        return SearchResults(scores=scores, ids=ids, index=self)

    def check_embedder(self, embedder: AnyEmbedder) -> None:
        """Raise :class:`CheckpointError` unless ``embedder`` runs the model that built this index.

        A checkpoint and the ONNX models exported from it are the same model (matched by the
        source fingerprint an export carries).
        """
        if embedder.embedding_dim != self.dim:
            raise CheckpointError(
                f"the index holds {self.dim}-d embeddings but model {embedder.path} "
                f"produces {embedder.embedding_dim}-d ones"
            )
        if not {embedder.fingerprint, embedder.source_fingerprint} & self.model.fingerprints:
            raise CheckpointError(
                f"the index was built by a different model (fingerprint {self.model.fingerprint}, "
                f"{self.model.kind} {self.model.path}) than {embedder.kind} {embedder.path} "
                f"(fingerprint {embedder.fingerprint}); rebuild the index or pass the matching model"
            )

    def load_embedder(self, model: str | Path | None = None, device: str = "cpu") -> AnyEmbedder:
        """The model that built this index: ``model`` (a checkpoint or ``.onnx`` file) if given,
        else the recorded one; checked. An ONNX model runs on onnxruntime, without PyTorch."""
        path = Path(model) if model is not None else Path(self.model.path)
        if model is None and not path.is_file():
            raise CheckpointError(
                f"the index's {self.model.kind} {path} no longer exists; "
                "pass the model explicitly (--model or --checkpoint)"
            )
        embedder = load_model(path, device=device)
        self.check_embedder(embedder)
        return embedder

    def query(
        self,
        images_or_paths: Sequence[str | Path | Image.Image] | str | Path | Image.Image,
        k: int = 10,
        embedder: AnyEmbedder | None = None,
    ) -> SearchResults:
        """Embed images (paths or PIL images) with ``embedder`` (default: the index's model) and search."""
        embedder = embedder if embedder is not None else self.load_embedder()
        self.check_embedder(embedder)
        return self.search(embedder.embed(images_or_paths), k)
