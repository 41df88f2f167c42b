"""Built-in layers, all under the contract in :mod:`purenn.layers.base`."""

from purenn.layers.activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from purenn.layers.base import Layer, apply_layer
from purenn.layers.blocks import Identity, Parallel, Residual
from purenn.layers.conv import Conv2D
from purenn.layers.dense import Dense
from purenn.layers.dropout import Dropout
from purenn.layers.normalization import BatchNorm, LayerNorm
from purenn.layers.pooling import AvgPool2D, MaxPool2D
from purenn.layers.sequential import Sequential
from purenn.layers.shape import Flatten, Reshape

__all__ = [
    "Layer", "Dense", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "GELU", "Softmax",
    "Flatten", "Reshape", "Sequential",
    "Conv2D", "MaxPool2D", "AvgPool2D", "Dropout",
    "BatchNorm", "LayerNorm", "Identity", "Residual", "Parallel",
    "apply_layer",
]
