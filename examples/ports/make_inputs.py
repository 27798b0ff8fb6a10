"""Writes the inputs the README's port examples use: 16 of scikit-learn's bundled digits as 1×8×8 images
(digits8.npz, for the VGG), the same scaled to LeNet's 1×28×28 (digits28.npz), and 6 rows of 7 token ids
(tokens.npz, for the language-model head), each with its targets y."""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent

digits = load_digits()
images = (digits.images[:16] / 16.0).astype(np.float32)[:, None]  # (16, 1, 8, 8), NCHW
labels = digits.target[:16]
np.savez(HERE / "digits8.npz", X=images, y=labels)
large = np.pad(np.kron(images, np.ones((1, 1, 3, 3), np.float32)), ((0, 0), (0, 0), (2, 2), (2, 2)))
np.savez(HERE / "digits28.npz", X=large, y=labels)
rng = np.random.default_rng(0)
np.savez(HERE / "tokens.npz", X=rng.integers(0, 20, size=(6, 7)), y=rng.integers(0, 20, size=(6, 7)))
