"""The Keras VGG of vgg_keras.py ported to Flax NNX as Flax's own examples write modules: the faithful port, one with
BatchNorm at Flax's defaults, and one with a porting bug (flattening channels first, as torch's Flatten would)."""

from flax import nnx


class VGG(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, batchnorm: bool = False, channels_first_flatten: bool = False) -> None:
        self.conv1 = nnx.Conv(1, 8, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(8, 16, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.conv3 = nnx.Conv(16, 16, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.norms = nnx.List([nnx.BatchNorm(width, rngs=rngs) for width in (8, 16, 16)]) if batchnorm else None
        self.fc1 = nnx.Linear(16 * 2 * 2, 32, rngs=rngs)
        self.fc2 = nnx.Linear(32, 10, rngs=rngs)
        self.channels_first_flatten = channels_first_flatten

    def _conv(self, index: int, conv: nnx.Conv, x):  # type: ignore[no-untyped-def]
        x = conv(x)
        return nnx.relu(self.norms[index](x) if self.norms is not None else x)

    def __call__(self, x):  # type: ignore[no-untyped-def]
        x = nnx.max_pool(self._conv(0, self.conv1, x), window_shape=(2, 2), strides=(2, 2))
        x = self._conv(2, self.conv3, self._conv(1, self.conv2, x))
        x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        if self.channels_first_flatten:  # the bug
            x = x.transpose(0, 3, 1, 2)
        x = x.reshape(x.shape[0], -1)
        return self.fc2(nnx.relu(self.fc1(x)))


def vgg() -> VGG:
    return VGG(nnx.Rngs(0))


def vgg_batchnorm() -> VGG:
    return VGG(nnx.Rngs(0), batchnorm=True)


def vgg_channels_first_flatten() -> VGG:
    return VGG(nnx.Rngs(0), channels_first_flatten=True)
