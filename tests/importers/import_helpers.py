"""Models that `specdsl import module:function` and `module:Class` make in the tests (a user's own code)."""

from __future__ import annotations

import keras
import torch
import torch.nn.functional as F
from torch import nn


def small_cnn() -> keras.Model:
    """A Keras functional model with a residual block, batch norm and a nested Sequential."""
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem_conv")(inp)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="res_conv")(x)
    x = keras.layers.Add(name="res_add")([x, y])
    head = keras.Sequential([keras.layers.MaxPooling2D(), keras.layers.Flatten()], name="head")
    x = head(x)
    out = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="small_cnn")


def with_lambda() -> keras.Model:
    inp = keras.Input((4,))
    return keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))


def broken():
    raise RuntimeError("no model today")


NOT_A_MODEL = 3


class TinyNet(nn.Module):
    """A torch module as people write them: Sequential stem, a residual block, functional calls, torch.flatten."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.avg = nn.AdaptiveAvgPool2d((1, 1))
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.pool(self.stem(x))
        y = F.relu(self.conv1(x))
        x = F.relu(x + self.conv2(y))
        x = torch.flatten(self.avg(x), 1)
        return self.fc(self.drop(x))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class WithUpsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x):
        return torch.sigmoid(self.up(self.conv(x))) - 0.5 * x.mean()
