"""The FastAPI application of ``gcahng serve``: a retrieval page and its JSON API over one index.

    GET  /                  the page (static/index.html, app.js, app.css)
    GET  /api/info          model, embedding size, index type, gallery size, limits
    GET  /api/gallery       a page of gallery items (``offset``, ``limit``): ids and labels
    GET  /api/image/{id}    a gallery image by id (a JPEG thumbnail, or the whole image with ``full=true``)
    GET  /api/search?id=N   the top-k of gallery image N (its label is known: results say match)
    POST /api/search        the top-k of an uploaded image (multipart field ``image``)

Gallery images are addressed by id only; no request names a path. Bodies over
``max_upload_bytes`` get 413, checked on Content-Length and counted as they arrive (neither
FastAPI nor uvicorn limits a body). Uploads are decoded with the loaders' limits
(:func:`gcahng.data.images.load_rgb`: decompression-bomb guard, any mode to RGB). One model
(an onnxruntime session, whose ``run`` is thread-safe) serves every request.
"""
from __future__ import annotations

import io
import os
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import faiss
import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image

from gcahng import __version__
from gcahng.data.images import UnreadableImageError, load_rgb
from gcahng.errors import InputError
from gcahng.retrieval.index import Index

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""Default largest accepted request body (an uploaded image), bytes."""
THUMB_SIDE = 256
"""Longest side in pixels of the thumbnails ``/api/image/{id}`` serves."""
MAX_K = 100
"""Largest k a search may ask for."""


class _BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by Content-Length and by counting chunks."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await Response(content=b'{"detail":"' + self._message().encode() + b'"}', status_code=413,
                           media_type="application/json")(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(status_code=413, detail=self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"the upload is too large (limit {self.limit / 1e6:.0f} MB)"


def _decode_upload(data: bytes) -> Image.Image:
    """An uploaded file as RGB, with the loaders' limits; HTTP 400 with a plain reason otherwise."""
    if not data:
        raise HTTPException(status_code=400, detail="the upload is empty; choose an image file")
    with tempfile.TemporaryDirectory(prefix="gcahng-upload-") as folder:
        path = os.path.join(folder, "upload")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            return load_rgb(path)
        except UnreadableImageError as err:
            reason = str(err).removeprefix(f"{path}: ").replace(f"'{path}'", "the file").replace(path, "the file")
            raise HTTPException(status_code=400, detail=f"the upload is not a usable image: {reason}") from None


def _jpeg(image: Image.Image, side: int | None, quality: int) -> bytes:
    """``image`` as JPEG bytes, shrunk to fit ``side`` x ``side`` pixels unless ``side`` is None."""
    if side is not None:
        image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def create_app(index_dir: str | Path, *, model: str | Path | None = None, default_k: int = 12,
               max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The application serving ``index_dir``, embedding queries with ``model`` (default: the index's)."""
    if not 1 <= default_k <= MAX_K:
        raise InputError(f"the default k must be between 1 and {MAX_K}, got {default_k}")
    index = Index.load(index_dir)
    embedder = index.load_embedder(model)
    app = FastAPI(title="gcahng retrieval", version=__version__,
                  description="Search a gcahng index by image upload or by gallery id.")
    app.add_middleware(_BodyLimit, limit=max_upload_bytes)
    static = resources.files("gcahng.serving") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    info = {
        "model": {"kind": embedder.kind, "name": Path(str(embedder.path)).name,
                  "backbone": embedder.model_spec.get("backbone"), "fingerprint": embedder.fingerprint},
        "embedding_dim": index.dim,
        "index_type": index.index_type,
        "gallery_size": len(index),
        "labelled": index.labels is not None,
        "default_k": default_k,
        "max_k": MAX_K,
        "max_upload_bytes": max_upload_bytes,
    }

    def results(vector: np.ndarray, k: int, query_label: str | None) -> list[dict]:
        return [
            {"rank": hit.rank, "id": hit.id, "score": round(hit.score, 6), "label": hit.label,
             "match": None if query_label is None or hit.label is None else hit.label == query_label}
            for hit in index.search(vector, k)[0]
        ]

    if index.index_type == "ivf":  # so that its stored vectors can be read back by id
        faiss.extract_index_ivf(index.faiss_index).make_direct_map()

    def gallery_vector(item: int) -> np.ndarray:
        return index.faiss_index.reconstruct(item)[None, :]

    def check_id(item: int) -> None:
        if not 0 <= item < len(index):
            raise HTTPException(status_code=404, detail=f"no gallery image {item} (ids are 0..{len(index) - 1})")

    @lru_cache(maxsize=2048)
    def thumbnail(item: int) -> bytes:
        return _jpeg(index.gallery_image(item), THUMB_SIDE, quality=88)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    @app.get("/api/info", summary="The index and model being served")
    def get_info() -> dict:
        return info

    @app.get("/api/gallery", summary="A page of gallery items (ids and labels)")
    def get_gallery(offset: int = Query(0, ge=0), limit: int = Query(48, ge=1, le=500)) -> dict:
        ids = range(offset, min(offset + limit, len(index)))
        return {"total": len(index), "offset": offset, "items": [{"id": i, "label": index.label(i)} for i in ids]}

    @app.get("/api/image/{item}", summary="A gallery image by id", response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    def get_image(item: int, full: bool = False) -> Response:
        check_id(item)
        try:  # decoded and encoded again: only a readable image of the gallery is ever sent
            if full:
                return Response(_jpeg(index.gallery_image(item), None, quality=95), media_type="image/jpeg")
            return Response(thumbnail(item), media_type="image/jpeg",
                            headers={"Cache-Control": "public, max-age=3600"})
        except (UnreadableImageError, OSError) as err:
            raise HTTPException(status_code=404, detail=f"gallery image {item} cannot be read") from err

    @app.get("/api/search", summary="Top-k of a gallery image, by id")
    def search_by_id(id: int = Query(..., description="gallery id"),  # noqa: A002
                     k: int = Query(default_k, ge=1, le=MAX_K)) -> dict:
        check_id(id)
        label = index.label(id)
        return {"query": {"id": id, "label": label}, "k": k, "results": results(gallery_vector(id), k, label)}

    @app.post("/api/search", summary="Top-k of an uploaded image")
    def search_by_upload(image: Annotated[UploadFile, File(description="an image file")],
                         k: int = Query(default_k, ge=1, le=MAX_K)) -> dict:
        picture = _decode_upload(image.file.read())
        return {"query": {"id": None, "label": None, "filename": image.filename}, "k": k,
                "results": results(embedder.embed(picture), k, None)}

    return app
