"""A searchable gallery: a faiss index of L2-normalised embeddings plus its sidecar.

The folder format (files, schema, version) is :mod:`gcahng.formats.index_folder`.

    index = Index.load("gallery_index")
    results = index.search(query_embeddings, k=10)   # or index.query(["q.jpg"], k=10)
    for hit in results[0]:
        print(hit.rank, hit.score, hit.path)
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from gcahng.errors import CheckpointError, InputError
from gcahng.formats.index_folder import (
    SCORE_TOLERANCE,
    IndexContents,
    ModelRecord,
    read_index_folder,
    resolves_inside,
    write_index_folder,
)
from gcahng.retrieval.ann import apply_search_params, build_faiss_index, default_params, recall_against_exact
from gcahng.user_paths import non_regular_reason

if TYPE_CHECKING:
    from PIL import Image

    from gcahng.retrieval.embedder import Embedder
    from gcahng.serving.onnx_embedder import OnnxEmbedder

    AnyEmbedder = Embedder | OnnxEmbedder

RECALL_K = 10
FEW_QUERIES = 20


def load_model(path: str | Path, device: str = "cpu") -> AnyEmbedder:
    """A checkpoint as an :class:`Embedder`, or an ``.onnx`` file as an ``OnnxEmbedder`` (no torch import)."""
    from gcahng.serving.onnx_format import is_onnx_path

    if is_onnx_path(path):
        from gcahng.serving.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(path)
    from gcahng.retrieval.embedder import load

    return load(path, device=device)


PREPROCESSING_KEYS = ("image_size", "resize_size", "mean", "std")
"""The model-spec fields that fix how an image becomes the network's input: a query model and the
index's model must agree on them (an export at another ``--image-size`` is the same network, but
its embeddings are not comparable)."""


def _preprocessing(spec: Any) -> dict[str, Any]:
    """The :data:`PREPROCESSING_KEYS` of a model spec, with the default resize spelled out."""
    values = {key: spec[key] for key in PREPROCESSING_KEYS if key in spec}
    if values.get("resize_size") is None and isinstance(values.get("image_size"), int):
        from gcahng.preprocess import default_resize

        values["resize_size"] = default_resize(values["image_size"])
    for key in ("mean", "std"):
        if isinstance(values.get(key), list | tuple) and all(isinstance(v, int | float) for v in values[key]):
            values[key] = [float(v) for v in values[key]]
    return values


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
        directory: Path | None = None,
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
        self.directory = directory  # the folder it was loaded from, if any
        self._ids_by_path: dict[str, int] | None = None  # built on first label_of()
        self._label_set: set[str] = set()
        self._dataset: tuple[Any, dict[str, int]] | None = None  # a dataset gallery's loader, on first use

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

        Existing files are kept as absolute paths (links not followed). ``source`` names the
        gallery (``{"images": FOLDER}`` or ``{"dataset", "split", "data_root"}``); by default
        the folder holding all ``paths``. Raises :class:`InputError` when an embedding is not
        finite: such a vector is never indexed.

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
        not_finite = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
        if len(not_finite):
            raise InputError(f"{len(not_finite)} embedding(s) are not finite (NaN or infinite), e.g. of "
                             f"{paths[not_finite[0]]}; is the model broken? Nothing was indexed")
        embeddings = l2_normalise(embeddings)
        all_params = {**default_params(index_type, len(paths)), **(params or {})}
        faiss_index = build_faiss_index(embeddings, index_type, all_params)
        recall = None if index_type == "flat" else recall_against_exact(faiss_index, embeddings, k=RECALL_K)
        # files are kept as absolute paths; identifiers of in-memory images (digits/0042) as given
        stored = [os.path.abspath(Path(p).expanduser()) if Path(p).expanduser().exists() else str(p) for p in paths]
        if source is None or not ({"images", "dataset"} & set(source)):
            files = [p for p in stored if os.path.isabs(p)]
            root = os.path.commonpath([os.path.dirname(p) for p in files]) if len(files) == len(stored) else None
            source = {**(source or {}), **({"images": root} if root else {})}
        return cls(faiss_index, stored, labels if labels is None else list(labels), model,
                   index_type=index_type, params=all_params, recall=recall, source=source)

    def save(self, directory: str | Path) -> Path:
        """Write the index folder (see :mod:`gcahng.formats.index_folder`); returns the directory."""
        return write_index_folder(directory, IndexContents(
            self.faiss_index, self.paths, self.labels, self.model, self.index_type, self.params, self.recall,
            self.source))

    @classmethod
    def load(cls, directory: str | Path) -> Index:
        """Read an index folder written by :meth:`save` (or ``gcahng index``), validated.

        Raises :class:`CheckpointError` naming the file (and field) when it is missing or corrupt.
        """
        contents = read_index_folder(directory)
        apply_search_params(contents.faiss_index, contents.index_type, contents.params)
        return cls(contents.faiss_index, contents.paths, contents.labels, contents.model,
                   index_type=contents.index_type, params=contents.params, recall=contents.recall,
                   source=contents.source, directory=Path(directory))

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

    def gallery_image(self, item: int) -> Image.Image:
        """Gallery item ``item`` as RGB, read now: from the gallery folder, where it must still be a
        regular file inside that folder (links followed), or from the dataset's loader.

        Raises :class:`~gcahng.data.images.UnreadableImageError` naming the image otherwise.
        """
        from gcahng.data.images import UnreadableImageError, load_rgb

        path = self.paths[item]
        if "dataset" in self.source:
            if self._dataset is None:
                from gcahng.data.registry import create_dataset

                data = create_dataset(self.source["dataset"], self.source.get("data_root"), self.source["split"])
                self._dataset = (data, {p: i for i, p in enumerate(data.paths)})
            data, positions = self._dataset
            if path not in positions:
                raise UnreadableImageError(f"{path}: no longer an item of {self.source['dataset']}")
            return data.load_image(positions[path])
        root = self.source.get("images")
        if root is not None and not resolves_inside(path, root):
            raise UnreadableImageError(f"{path}: now resolves to {os.path.realpath(path)}, outside the gallery "
                                       f"folder {root}")
        reason = non_regular_reason(path)
        if reason is not None:
            raise UnreadableImageError(f"{path}: {reason}")
        return load_rgb(path)

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
        item = self._ids_by_path.get(os.path.abspath(Path(path).expanduser()), self._ids_by_path.get(str(resolved)))
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
        found = scores[ids >= 0]
        outside = found[~(np.abs(found) <= 1 + SCORE_TOLERANCE)]  # NaN included
        if len(outside):
            where = "the index" if self.directory is None else f"the vector store of index {self.directory}"
            raise CheckpointError(f"{where} is corrupt: a cosine similarity of {outside[0]:g} is outside [-1, 1]; "
                                  "rebuild it with `gcahng index`")
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
        indexed, given = _preprocessing(self.model.model_spec or {}), _preprocessing(embedder.model_spec)
        differ = [key for key in PREPROCESSING_KEYS if key in indexed and key in given and indexed[key] != given[key]]
        if differ:
            shown = ", ".join(f"{key} {indexed[key]} (index) against {given[key]}" for key in differ)
            raise CheckpointError(f"{embedder.kind} {embedder.path} preprocesses images differently from the model "
                                  f"that built the index ({shown}); its embeddings would not be comparable: rebuild "
                                  "the index with it or pass the matching model")

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
