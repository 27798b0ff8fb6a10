"""A small VGG (two VGG blocks, as Dive into Deep Learning's TensorFlow chapter writes vgg_block, re-typed here) for
8×8 single-channel images, and a version with BatchNormalization at Keras's defaults."""

import keras


def vgg_block(num_convs: int, num_channels: int, batchnorm: bool = False) -> keras.Sequential:
    blk = keras.Sequential()
    for _ in range(num_convs):
        blk.add(keras.layers.Conv2D(num_channels, kernel_size=3, padding="same",
                                    activation=None if batchnorm else "relu"))
        if batchnorm:
            blk.add(keras.layers.BatchNormalization())
            blk.add(keras.layers.ReLU())
    blk.add(keras.layers.MaxPool2D(pool_size=2, strides=2))
    return blk


def vgg(batchnorm: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 1)), vgg_block(1, 8, batchnorm), vgg_block(2, 16, batchnorm),
                             keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(10)])


def vgg_batchnorm() -> keras.Model:
    return vgg(batchnorm=True)
