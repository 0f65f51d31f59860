import numpy as np
import pytest
import torch
from PIL import Image

from gcahng.data import UnreadableImageError, build_transforms, load_rgb
from gcahng.errors import CheckpointError
from gcahng.models.embedding import create_embedding_model
from gcahng.preprocess import TestPreprocess
from gcahng.retrieval import embed_files, load


@pytest.mark.parametrize("size, image_size, resize_size", [
    ((500, 375), 224, None), ((375, 500), 224, 256), ((224, 224), 224, None), ((33, 90), 32, None),
    ((1000, 999), 224, 300), ((8, 8), 32, 36), ((7, 300), 16, None),
])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_test_preprocess_equals_torchvision_pipeline(size, image_size, resize_size, mode):
    # Tolerance 0: torchvision's Resize on a PIL image calls the same PIL bilinear antialiased
    # resize, and ToTensor/Normalize are the same float32 operations in the same order.
    pixels = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA")
    image = image.convert(mode) if mode != "P" else image.convert("RGB").quantize(64)
    rgb = image.convert("RGB")
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    expected = build_transforms(False, image_size, resize_size, mean=mean, std=std)(rgb)
    got = TestPreprocess(image_size, resize_size, mean, std)(rgb)
    assert got.dtype == np.float32 and got.shape == (3, image_size, image_size)
    assert float(np.abs(got - expected.numpy()).max()) == 0.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedder")
    torch.manual_seed(0)
    model = create_embedding_model("tiny_cnn", 6, pretrained=False, image_size=32)
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict()}, root / "m.pt")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        paths.append(root / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (20 + 9 * i, 40, 3), dtype=np.uint8)).save(paths[-1])
    return root, model.eval(), paths


def test_embed_matches_model_on_reference_preprocessing(setup):
    root, model, paths = setup
    embedder = load(root / "m.pt")
    transform = build_transforms(False, 32)
    with torch.no_grad():
        raw = model(torch.stack([transform(load_rgb(p)) for p in paths])).numpy()
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    got = embedder.embed(paths, batch_size=2)
    assert got.dtype == np.float32 and got.shape == (5, 6)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(Image.open(paths[1])), expected[1:2], atol=1e-5)
    np.testing.assert_allclose(embedder.embed(str(paths[2])), expected[2:3], atol=1e-5)
    batch = torch.stack([transform(load_rgb(p)) for p in paths])
    np.testing.assert_allclose(embedder.embed(batch), expected, atol=1e-5)
    files = embed_files(embedder, paths, batch_size=3, progress=False)
    np.testing.assert_allclose(files.embeddings, expected, atol=1e-5)
    assert files.kept == list(range(5)) and files.skipped == []


def test_unreadable_images_raise_in_embed_and_are_skipped_in_embed_files(setup, tmp_path):
    root, _, paths = setup
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    embedder = load(root / "m.pt")
    with pytest.raises(UnreadableImageError, match="bad.png"):
        embedder.embed([paths[0], bad])
    files = embed_files(embedder, [paths[0], bad, paths[1]], batch_size=2, progress=False)
    assert files.kept == [0, 2] and files.embeddings.shape == (2, 6)
    assert files.skipped[0][0] == str(bad) and "cannot read image" in files.skipped[0][1]


def test_weights_that_do_not_fit_the_spec_are_a_checkpoint_error(setup, tmp_path):
    root, model, _ = setup
    spec = {**model.spec.to_dict(), "embedding_dim": 7}
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": spec, "model": model.state_dict()},
               tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load(tmp_path / "bad.pt")
    spec = {**model.spec.to_dict(), "colour": "blue"}
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": spec, "model": model.state_dict()},
               tmp_path / "spec.pt")
    with pytest.raises(CheckpointError, match="spec.pt.*colour"):
        load(tmp_path / "spec.pt")


def test_few_images_are_embedded_on_one_thread_and_threads_are_restored(setup, monkeypatch):
    root, _, paths = setup
    embedder = load(root / "m.pt")
    threads = torch.get_num_threads()
    seen = []
    monkeypatch.setattr(embedder, "embed_batch", lambda batch: seen.append(torch.get_num_threads()) or
                        np.zeros((len(batch), 6), np.float32))
    torch.set_num_threads(2)
    try:
        embedder.embed(paths[:1])
        embedder.embed(paths * 2, batch_size=100)  # 10 images: the caller's thread count
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
