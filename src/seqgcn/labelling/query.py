"""One round of the cycle with a person as the annotator (paper Fig. 1, phases I–IV; phase V is theirs).

```
load     : find the images, read labels.csv (and the held-out test.csv), decode every image once
I        : re-initialise the learner, train it on the labelled images, accuracy on the held-out set
II       : features of (random subset D_S of the unlabelled images) + (labelled images)
III + IV : the sampler (CoreGCN by default) picks `budget` images of D_S
```

First round: while fewer than two classes are labelled there is nothing to
train a classifier on, so no learner is trained; the batch is a diverse seed
set instead: k-Center greedy (`CoreSet`) on the images downsampled to
``SEED_SIDE × SEED_SIDE`` pixels, with any labelled images as the first centres.

With an encoder (``encoder=``, ``--encoder``): "load" embeds the images through
the cache next to labels.csv (`seqgcn.labelling.embeddings`; the encoder runs only
on images it has not seen), the learner is a `HeadLearner` on the frozen
embeddings, the sampler and the first round's k-Center read the embeddings.

Index space: image ``i`` of the sorted path list is global index ``i`` for the
learner, the pool and the sampler (STYLE §3). Held-out images are in the same
array but never candidates and never trained on. Same inputs and seed, same batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqgcn.checks import InputError
from seqgcn.data.base import CLASSIFICATION, Dataset
from seqgcn.labelling.embeddings import cache_folder, embed_images
from seqgcn.labelling.images import find_images, load_images
from seqgcn.labelling.labels import read_labels
from seqgcn.learners import build_learner
from seqgcn.learners.head import HeadLearner
from seqgcn.pool import PoolState
from seqgcn.loop import learner_outputs
from seqgcn.samplers import CoreSet, FeatureSampler, OutputSampler, build_sampler, query_samplers, sampler_class

SEED_SIDE = 8  # side of the downsampled images the first round's k-Center greedy compares, pixels
SEED_METHOD = f"CoreSet (k-Center greedy) on {SEED_SIDE}x{SEED_SIDE} downsampled pixels, no learner trained"
SEED_METHOD_ENCODER = "CoreSet (k-Center greedy) on the encoder's embeddings, no learner trained"


@dataclass(frozen=True)
class QueryResult:
    """What one round picked and how it went.

    picked : relative paths of the images to label, in the sampler's order
    method : the sampler that picked them (for the first round, `SEED_METHOD`)
    first_round : True when no learner was trained (fewer than 2 classes labelled)
    accuracy : held-out accuracy in [0, 1] of the learner trained this round (None: no test labels or first round)
    n_labelled, n_unlabelled, n_test : image counts (training labels, candidates' pool, held out)
    classes : sorted class names known to the learner (training and held-out labels)
    seconds : wall time of "load", "train", "features", "select" (and "predict" with `predict_all`)
    skipped : images left out because they could not be decoded
    predicted : ``{path: class}`` of every image by the learner trained this round (only with `predict_all`;
        empty in the first round)
    """

    picked: list
    method: str
    first_round: bool
    accuracy: float | None
    n_labelled: int
    n_unlabelled: int
    n_test: int
    classes: list
    seconds: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    predicted: dict = field(default_factory=dict)
    encoded: int | None = None  # with an encoder: images it ran on this round (the others came from the cache)


def run_query(images_dir, labels_path, *, budget: int, method: str = "CoreGCN", test_labels=None,
              image_size: int = 32, subset: int | None = None, seed: int = 0, learner_config=None,
              sampler_params: dict | None = None, device: str = "cpu", skip_unreadable: bool = False,
              progress: bool = False, threads: int = 1, predict_all: bool = False, encoder=None,
              head_config=None) -> QueryResult:
    """Pick the next `budget` images of `images_dir` to label (see the module docstring).

    Parameters
    ----------
    images_dir : the project folder (every image under it, recursively)
    labels_path : the ``path,label`` CSV of the labels so far (missing: none yet)
    budget : images to pick
    method : sampler name (`seqgcn.samplers.available_samplers`) used once two classes are labelled
    test_labels : optional ``path,label`` CSV of held-out images (never picked, never trained on)
    image_size : side the images are resized to, pixels
    subset : size of the random candidate subset D_S (None: every unlabelled image)
    seed : same inputs and seed, same batch
    learner_config : `seqgcn.learners.LearnerConfig` (default: `LearnerConfig.for_task("classification")`,
        the `seqgcn run` defaults)
    sampler_params : sampler options (e.g. ``{"epochs": 50}`` for the GCN), refused when the method takes none of them
    device : where the sampler runs ("cpu", "cuda", "auto")
    skip_unreadable : leave out images that cannot be decoded instead of failing
    progress : progress bars (decoding, training)
    threads : torch CPU threads while training and selecting (float sums, hence picks, depend on it)
    predict_all : also classify every image with the trained learner (`QueryResult.predicted`; the ML backend's pre-labels)
    encoder : a `seqgcn.learners.encoder.Encoder`: the images are embedded once (cached next to `labels_path`,
        `seqgcn.labelling.embeddings`), the learner is a `HeadLearner` on the embeddings (`head_config`), the
        sampler reads the embeddings and the first round's k-Center runs on them; `image_size` and
        `learner_config` are then unused
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise InputError(f"--budget={budget!r} must be a positive integer")
    if subset is not None and subset < budget:
        raise InputError(f"--subset={subset} must be at least --budget={budget} (or 'all')")
    kind = sampler_class(method)  # an unknown name fails here, before any decoding
    if not issubclass(kind, (FeatureSampler, OutputSampler)):
        raise InputError(f"{kind.name} reads {kind.reads}; a query picks with a sampler that reads the trained learner's "
                         f"features or outputs ({', '.join(query_samplers())})")
    build_sampler(method, options=sampler_params)  # options it does not take, or bad values: refused before any work
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _query(images_dir, labels_path, budget=budget, method=method, test_labels=test_labels,
                      image_size=image_size, subset=subset, seed=seed, learner_config=learner_config,
                      sampler_params=sampler_params, device=device, skip_unreadable=skip_unreadable, progress=progress,
                      predict_all=predict_all, encoder=encoder, head_config=head_config)
    finally:
        torch.set_num_threads(previous)


def _query(images_dir, labels_path, *, budget, method, test_labels, image_size, subset, seed, learner_config,
           sampler_params, device, skip_unreadable, progress, predict_all=False, encoder=None,
           head_config=None) -> QueryResult:
    t0 = time.perf_counter()
    paths = find_images(images_dir)
    known = set(paths)
    labels = read_labels(labels_path, images=known)
    test = read_labels(_existing(test_labels), images=known, what="test labels file") if test_labels else {}
    both = sorted(set(labels) & set(test))
    if both:
        raise InputError(f"image {both[0]!r} is in both {str(labels_path)!r} and the held-out {str(test_labels)!r} "
                         f"({len(both)} such image(s)); a held-out image must not be trained on")
    _check_budget(budget, len(paths) - len(labels) - len(test), images_dir)
    if encoder is None:
        images = load_images(images_dir, paths, size=image_size, skip_unreadable=skip_unreadable, progress=progress)
    else:  # embeddings (n, d) instead of pixels; the encoder runs only on images the cache has not seen
        images = embed_images(images_dir, paths, encoder, cache_folder(labels_path, encoder),
                              skip_unreadable=skip_unreadable, progress=progress)
    index = images.index()
    labels = {p: c for p, c in labels.items() if p in index}
    test = {p: c for p, c in test.items() if p in index}
    n = len(images.paths)
    is_pool = np.ones(n, dtype=bool)
    is_pool[[index[p] for p in test]] = False
    labelled = np.sort(np.asarray([index[p] for p in labels], dtype=np.int64))  # (n_labelled,) global
    is_pool[labelled] = False
    unlabelled = np.flatnonzero(is_pool)  # (n_unlabelled,) global
    _check_budget(budget, unlabelled.size, images_dir)
    classes = sorted(set(labels.values()) | set(test.values()))
    seeds = np.random.SeedSequence([seed, len(labels)]).spawn(3)  # learner, candidates, sampler; new each round
    learner_seed, candidates_seed, sampler_seed = (int(s.generate_state(1)[0]) for s in seeds)
    seconds = {"load": time.perf_counter() - t0, "train": 0.0, "features": 0.0, "select": 0.0}
    base = dict(n_labelled=len(labelled), n_unlabelled=int(unlabelled.size), n_test=len(test), classes=classes,
                skipped=list(images.skipped), encoded=getattr(images, "encoded", None))

    if len(set(labels.values())) < 2:
        t = time.perf_counter()
        if encoder is None:
            picked = seed_batch(images.pixels, labelled, unlabelled, budget, seed=sampler_seed)
        else:
            picked = CoreSet(seed=sampler_seed).select(images.embeddings, labelled, budget, candidates=unlabelled)
        seconds["select"] = time.perf_counter() - t
        return QueryResult(picked=[images.paths[i] for i in picked], first_round=True,
                           method=SEED_METHOD if encoder is None else SEED_METHOD_ENCODER,
                           accuracy=None, seconds=seconds, **base)

    t = time.perf_counter()
    class_of = {c: k for k, c in enumerate(classes)}
    if encoder is None:
        dataset = _dataset(images.pixels, [index[p] for p in test], [class_of[c] for c in test.values()], len(classes))
        learner = build_learner(dataset, learner_config, seed=learner_seed)
    else:  # a light head on the frozen embeddings
        test_rows = np.asarray([index[p] for p in test], dtype=np.int64)
        learner = HeadLearner(images.embeddings, images.embeddings[test_rows], [class_of[c] for c in test.values()],
                              n_outputs=len(classes), config=head_config, seed=learner_seed, encoder=encoder)
    targets = np.asarray([class_of[labels[images.paths[i]]] for i in labelled], dtype=np.int64)  # (n_labelled,)
    learner.fit(labelled, targets)  # I (the learner was built, i.e. re-initialised, from learner_seed)
    accuracy = float(learner.evaluate()) if test else None
    seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    pool = PoolState(n)
    pool.label(np.flatnonzero(~is_pool), round=0)  # labelled and held-out images are never candidates
    candidates = pool.draw_candidates(subset, np.random.default_rng(candidates_seed))  # D_S, global
    nodes = np.concatenate([candidates, labelled])  # (N,)
    sampler = build_sampler(method, seed=sampler_seed, device=device, options=sampler_params, progress=progress)
    if isinstance(sampler, OutputSampler):  # II: class probabilities (and features, dropout passes) of D_S ∪ L
        source = learner_outputs(learner, sampler, nodes, n)
    else:
        feats = learner.features(nodes)  # II: (N, d), test-time transforms
        source = np.zeros((n, feats.shape[1]), dtype=np.float32)  # (n, d): row i = image i; only D_S ∪ L filled
        source[nodes] = feats
    seconds["features"] = time.perf_counter() - t

    t = time.perf_counter()
    picked = sampler.select(source, labelled, budget, candidates=candidates)  # III + IV
    seconds["select"] = time.perf_counter() - t
    predicted = {}
    if predict_all:
        t = time.perf_counter()
        inputs = images.pixels if encoder is None else images.embeddings  # (n, c, s, s) or (n, d)
        predicted = dict(zip(images.paths, (classes[k] for k in learner.predict(inputs)), strict=True))
        seconds["predict"] = time.perf_counter() - t
    return QueryResult(picked=[images.paths[i] for i in picked], method=sampler.name, first_round=False,
                       accuracy=accuracy, seconds=seconds, predicted=predicted, **base)


def seed_batch(pixels: np.ndarray, labelled: np.ndarray, unlabelled: np.ndarray, budget: int, *, seed: int) -> np.ndarray:
    """First-round picks: k-Center greedy on `pixels` (n, c, s, s) uint8 downsampled to SEED_SIDE²; global indices."""
    small = np.empty((len(pixels), pixels.shape[1] * SEED_SIDE * SEED_SIDE), dtype=np.float32)  # (n, c·8·8)
    for lo in range(0, len(pixels), 4096):  # in blocks: never a float copy of every full-size image
        block = torch.from_numpy(pixels[lo:lo + 4096]).float() / 255.0  # (b, c, s, s)
        small[lo:lo + 4096] = F.adaptive_avg_pool2d(block, SEED_SIDE).flatten(1).numpy()
    return CoreSet(seed=seed).select(small, labelled, budget, candidates=unlabelled)


def _dataset(pixels: np.ndarray, test_rows: list, test_targets: list, n_classes: int):
    """A `Dataset` whose training rows are every image (labels come separately) and test rows the held-out ones."""
    mean, std = _channel_stats(pixels)
    test_rows = np.asarray(test_rows, dtype=np.int64)
    return Dataset(name="labelling", x_train=pixels, y_train=np.full(len(pixels), -1, dtype=np.int64),
                   x_test=pixels[test_rows], y_test=np.asarray(test_targets, dtype=np.int64), task=CLASSIFICATION,
                   n_classes=n_classes, mean=mean, std=std)


def _channel_stats(pixels: np.ndarray) -> tuple[tuple, tuple]:
    """Per-channel mean and std of uint8 (n, c, s, s) in [0, 1] units, summed in blocks (no float copy of all)."""
    total = np.zeros(pixels.shape[1])
    total_sq = np.zeros(pixels.shape[1])
    for lo in range(0, len(pixels), 1024):
        block = pixels[lo:lo + 1024].astype(np.float64) / 255.0  # (b, c, s, s)
        total += block.sum(axis=(0, 2, 3))
        total_sq += (block * block).sum(axis=(0, 2, 3))
    count = pixels.shape[0] * pixels.shape[2] * pixels.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _check_budget(budget: int, n_unlabelled: int, images_dir) -> None:
    if budget > n_unlabelled:
        raise InputError(f"--budget={budget} exceeds the {n_unlabelled} unlabelled images in {str(images_dir)!r}; "
                         "lower --budget")


def _existing(path):
    if not Path(path).is_file():
        raise InputError(f"test labels file {str(path)!r} does not exist")
    return path
