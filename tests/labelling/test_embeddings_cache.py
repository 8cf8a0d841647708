"""The embedding cache next to labels.csv, and a query round with an encoder (first round and later ones)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_encoder_models import TinyCNN, colour_folder, export_pt2

from seqgcn.checks import InputError
from seqgcn.labelling import embeddings as cache_module
from seqgcn.labelling.embeddings import cache_folder, embed_images
from seqgcn.labelling.images import find_images, load_images
from seqgcn.labelling.labels import csv_text
from seqgcn.labelling.query import SEED_METHOD_ENCODER, run_query
from seqgcn.learners.encoder import load_encoder
from seqgcn.samplers import CoreSet

META = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_pt2(TinyCNN(), tmp_path_factory.mktemp("model") / "cnn.pt2", metadata=META)


@pytest.fixture
def project(tmp_path):
    truth = colour_folder(tmp_path / "images", n_per_class=8)
    return tmp_path / "images", tmp_path / "labels.csv", truth


def counting(encoder):
    """Wrap `encoder.embed_batch` to count the images it is run on."""
    seen = []
    original = encoder.embed_batch
    encoder.embed_batch = lambda pixels: (seen.append(len(pixels)), original(pixels))[1]
    return seen


def test_first_pass_streams_in_batches_and_equals_embedding_the_decoded_images(project, model):
    images, labels, _ = project
    encoder = load_encoder(model, batch_size=5)
    seen = counting(encoder)
    paths = find_images(images)
    result = embed_images(images, paths, encoder, cache_folder(labels, encoder))
    assert seen == [5, 5, 5, 5, 4] and result.encoded == 24  # 24 images, batches of 5
    direct = encoder.embed(load_images(images, paths, size=32).pixels)
    np.testing.assert_allclose(result.embeddings, direct, rtol=1e-5, atol=1e-6)
    assert len(list(result.cache.glob("part-*.npz"))) == 5 and (result.cache / "encoder.json").is_file()


def test_later_passes_encode_only_new_images_and_follow_content_not_names(project, model):
    images, labels, _ = project
    encoder = load_encoder(model)
    first = embed_images(images, find_images(images), encoder, cache_folder(labels, encoder))
    (images / "red" / "000.png").rename(images / "red" / "renamed.png")  # same bytes, new name: not re-encoded
    shutil.copy(images / "blue" / "001.png", images / "blue" / "copy.png")  # same bytes twice
    colour_folder(images / "more", n_per_class=1, seed=5)  # three new images
    seen = counting(encoder)
    second = embed_images(images, find_images(images), encoder, cache_folder(labels, encoder))
    assert sum(seen) == 3 and second.encoded == 3
    old = dict(zip(first.paths, first.embeddings))
    new = dict(zip(second.paths, second.embeddings))
    np.testing.assert_array_equal(new["red/renamed.png"], old["red/000.png"])
    np.testing.assert_array_equal(new["blue/copy.png"], old["blue/001.png"])


def test_an_interrupted_pass_resumes_without_recomputing_finished_batches(project, model, monkeypatch):
    images, labels, _ = project
    encoder = load_encoder(model, batch_size=5)
    written = []
    real_write = cache_module._write_part

    def write_then_die(path, hashes, embeddings):
        if len(written) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the third batch
        written.append(path)
        real_write(path, hashes, embeddings)

    monkeypatch.setattr(cache_module, "_write_part", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        embed_images(images, find_images(images), encoder, cache_folder(labels, encoder))
    monkeypatch.setattr(cache_module, "_write_part", real_write)
    seen = counting(encoder)
    result = embed_images(images, find_images(images), encoder, cache_folder(labels, encoder))
    assert sum(seen) == 24 - 10 and result.encoded == 14  # the two finished batches are not encoded again


def test_a_damaged_part_is_dropped_and_its_images_encoded_again(project, model):
    images, labels, _ = project
    encoder = load_encoder(model, batch_size=8)
    cache = cache_folder(labels, encoder)
    embed_images(images, find_images(images), encoder, cache)
    sorted(cache.glob("part-*.npz"))[0].write_bytes(b"truncated")
    assert embed_images(images, find_images(images), encoder, cache).encoded == 8


def test_another_encoder_setting_has_its_own_cache(project, model):
    images, labels, _ = project
    a, b = load_encoder(model), load_encoder(model, std=(0.5, 0.5, 0.5))
    embed_images(images, find_images(images), a, cache_folder(labels, a))
    assert cache_folder(labels, a) != cache_folder(labels, b)
    assert embed_images(images, find_images(images), b, cache_folder(labels, b)).encoded == 24


def test_an_unreadable_image_is_one_line_or_skipped(project, model):
    images, labels, _ = project
    (images / "red" / "broken.png").write_bytes(b"not a png")
    encoder = load_encoder(model)
    with pytest.raises(InputError, match="broken.png.*--skip-unreadable"):
        embed_images(images, find_images(images), encoder, cache_folder(labels, encoder))
    result = embed_images(images, find_images(images), encoder, cache_folder(labels, encoder), skip_unreadable=True)
    assert result.skipped == ("red/broken.png",) and len(result.paths) == 24


def test_query_rounds_with_an_encoder(project, model):
    images, labels, truth = project
    encoder = load_encoder(model)
    first = run_query(images, labels, budget=6, method="CoreGCN", encoder=encoder, seed=1)
    assert first.first_round and first.method == SEED_METHOD_ENCODER and first.encoded == 24
    # the cold start is k-Center greedy on the embeddings
    embedded = embed_images(images, find_images(images), encoder, cache_folder(labels, encoder))
    seeds = np.random.SeedSequence([1, 0]).spawn(3)
    sampler_seed = int(seeds[2].generate_state(1)[0])
    expected = CoreSet(seed=sampler_seed).select(embedded.embeddings, np.zeros(0, np.int64), 6,
                                                 candidates=np.arange(24))
    assert first.picked == [embedded.paths[i] for i in expected]

    labels.write_text(csv_text([(p, truth[p]) for p in first.picked]))
    test = labels.with_name("test.csv")
    held_out = [p for p in sorted(truth) if p not in first.picked][:6]
    test.write_text(csv_text([(p, truth[p]) for p in held_out]))
    for method in ("CoreGCN", "UncertainGCN", "CoreSet", "Random"):
        again = run_query(images, labels, budget=4, method=method, encoder=encoder, test_labels=test, seed=2,
                          predict_all=True)
        assert not again.first_round and again.encoded == 0  # every embedding came from the cache
        assert len(again.picked) == 4 and not set(again.picked) & (set(first.picked) | set(held_out))
        assert 0.0 <= again.accuracy <= 1.0 and set(again.predicted) == set(truth)
