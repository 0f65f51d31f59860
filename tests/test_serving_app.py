"""The JSON API of `gcahng serve` (FastAPI's test client): search by id and upload, limits, errors."""
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serving_world import CLASSES, PER_CLASS, build_world

from gcahng.retrieval import Index
from gcahng.serving.app import create_app


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("serving_app"))


@pytest.fixture(scope="module")
def client(world):
    return TestClient(create_app(world["index_onnx"], default_k=4, max_upload_bytes=200_000))


def test_info_and_openapi(client):
    info = client.get("/api/info").json()
    assert info["model"]["kind"] == "onnx" and info["model"]["backbone"] == "tiny_cnn"
    assert (info["embedding_dim"], info["index_type"], info["gallery_size"]) == (8, "flat", len(CLASSES) * PER_CLASS)
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/info", "/api/image/{item}", "/api/gallery"} <= set(paths)
    assert set(paths["/api/search"]) == {"get", "post"}
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="dropzone"' in page.text
    assert client.get("/static/app.js").status_code == 200


def test_search_by_id_frames_matches_and_finds_itself(client, world):
    index = Index.load(world["index_onnx"])
    for item in (0, 7, 14):
        body = client.get(f"/api/search?id={item}&k=3").json()
        assert body["query"] == {"id": item, "label": index.label(item)}
        assert [r["rank"] for r in body["results"]] == [1, 2, 3] and body["results"][0]["id"] == item
        assert body["results"][0]["match"] is True
        assert all(r["match"] == (r["label"] == index.label(item)) for r in body["results"])
    assert len(client.get("/api/search?id=0").json()["results"]) == 4  # the default k
    assert client.get("/api/search?id=99").status_code == 404
    assert client.get("/api/search?id=0&k=0").status_code == 422


def test_upload_finds_its_gallery_copy_first(client, world):
    index = Index.load(world["index_onnx"])
    path = world["gallery"] / "plum" / "3.png"
    body = client.post("/api/search?k=5", files={"image": ("q.png", path.read_bytes(), "image/png")}).json()
    assert len(body["results"]) == 5 and index.paths[body["results"][0]["id"]] == str(path)
    assert body["results"][0]["score"] > 0.999 and body["results"][0]["match"] is None


def test_gallery_pages_and_images_by_id(client):
    page = client.get("/api/gallery?offset=10&limit=4").json()
    assert page["total"] == 15 and [item["id"] for item in page["items"]] == [10, 11, 12, 13]
    response = client.get("/api/image/3")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.content)).size) <= 256
    assert client.get("/api/image/15").status_code == 404
    assert client.get("/api/image/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


def test_bad_uploads_get_a_plain_message(client):
    text = client.post("/api/search", files={"image": ("notes.txt", b"hello, not an image", "text/plain")})
    assert text.status_code == 400 and "not a usable image" in text.json()["detail"]
    assert "/tmp" not in text.json()["detail"]
    empty = client.post("/api/search", files={"image": ("e.png", b"", "image/png")})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    buffer = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(buffer, "PNG")  # 144 Mpx, a few kB: a decompression bomb
    bomb = client.post("/api/search", files={"image": ("bomb.png", buffer.getvalue(), "image/png")})
    assert bomb.status_code == 400 and "decompression bomb" in bomb.json()["detail"]


def test_oversized_bodies_get_413_by_header_and_by_count(client):
    big = b"\0" * 300_000
    response = client.post("/api/search", files={"image": ("big.png", big, "image/png")})
    assert response.status_code == 413 and "too large" in response.json()["detail"]

    def chunks():  # no Content-Length: the server must count what arrives
        for _ in range(30):
            yield b"x" * 10_000

    streamed = client.post("/api/search", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=abc"})
    assert streamed.status_code == 413
