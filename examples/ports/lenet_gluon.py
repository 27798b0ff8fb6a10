"""LeNet as Dive into Deep Learning's MXNet chapter writes it (d2l-en, "Convolutional Neural Networks (LeNet)"), and
its BatchNorm version ("Batch Normalization", LeNet with BatchNorm), re-typed here."""

import mxnet as mx
from mxnet import gluon, init
from mxnet.gluon import nn


def lenet() -> gluon.Block:
    mx.random.seed(0)  # Xavier's draws: the same model on every call
    net = nn.Sequential()
    net.add(nn.Conv2D(channels=6, kernel_size=5, padding=2, activation="sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(channels=16, kernel_size=5, activation="sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120, activation="sigmoid"),
            nn.Dense(84, activation="sigmoid"),
            nn.Dense(10))
    net.initialize(init.Xavier())
    return net


def lenet_batchnorm() -> gluon.Block:
    mx.random.seed(0)
    net = nn.Sequential()
    net.add(nn.Conv2D(6, kernel_size=5), nn.BatchNorm(), nn.Activation("sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(16, kernel_size=5), nn.BatchNorm(), nn.Activation("sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120), nn.BatchNorm(), nn.Activation("sigmoid"),
            nn.Dense(84), nn.BatchNorm(), nn.Activation("sigmoid"),
            nn.Dense(10))
    net.initialize(init.Xavier())
    return net
