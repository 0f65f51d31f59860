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


def test_gallery_files_changed_after_start_are_never_sent(tmp_path):
    from click.testing import CliRunner
    from serving_world import make_checkpoint, make_gallery

    from gcahng.cli.main import cli

    gallery, checkpoint = make_gallery(tmp_path / "gallery"), make_checkpoint(tmp_path / "model.pt")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    for index_type in ("flat", "ivf"):
        out = tmp_path / f"index_{index_type}"
        result = CliRunner().invoke(cli, ["index", str(checkpoint), "--images", str(gallery), "--out", str(out),
                                          "--workers", "0", "--index-type", index_type])
        assert result.exit_code == 0, result.output
    clients = {t: TestClient(create_app(tmp_path / f"index_{t}", default_k=3)) for t in ("flat", "ivf")}
    index = Index.load(tmp_path / "index_flat")
    full = clients["flat"].get("/api/image/0?full=true")
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(full.content)).size == Image.open(index.paths[0]).size
    linked, texted, gone = (index.paths.index(str(gallery / "pear" / f"{i}.png")) for i in (1, 2, 3))
    (gallery / "pear" / "1.png").unlink()
    (gallery / "pear" / "1.png").symlink_to(secret)  # now a link out of the gallery
    (gallery / "pear" / "2.png").write_text("not an image any more\n")
    (gallery / "pear" / "3.png").unlink()
    for item in (linked, texted, gone):
        for query in ("", "?full=true"):
            response = clients["flat"].get(f"/api/image/{item}{query}")
            assert response.status_code == 404 and b"root:" not in response.content, (item, query)
        for client in clients.values():  # search by id reads the stored vector, not the file
            body = client.get(f"/api/search?id={item}").json()
            assert body["results"][0]["id"] == item
    with pytest.raises(Exception, match="the default k must be between 1 and 100, got 1000"):
        create_app(tmp_path / "index_flat", default_k=1000)


def test_a_very_long_thin_upload_is_refused_before_it_is_resized(client):
    buffer = io.BytesIO()
    Image.new("L", (600_000, 1)).save(buffer, "PNG")  # 0.6 Mpx in a few hundred bytes
    response = client.post("/api/search", files={"image": ("wide.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 400 and "more than 100 times as long as it is wide" in response.json()["detail"]


def test_a_dataset_index_serves_its_images(tmp_path):
    from click.testing import CliRunner
    from serving_world import make_checkpoint

    from gcahng.cli.main import cli

    checkpoint, out = make_checkpoint(tmp_path / "model.pt"), tmp_path / "digits_index"
    result = CliRunner().invoke(cli, ["index", str(checkpoint), "digits", "--split", "test", "--out", str(out),
                                      "--workers", "0", "--index-type", "ivf"])
    assert result.exit_code == 0, result.output
    client = TestClient(create_app(out, default_k=3))
    index = Index.load(out)
    for query in ("", "?full=true"):
        response = client.get(f"/api/image/5{query}")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", response.text
    assert Image.open(io.BytesIO(client.get("/api/image/5?full=true").content)).size == \
        index.gallery_image(5).size
    assert client.get("/api/search?id=5").json()["results"][0]["id"] == 5
