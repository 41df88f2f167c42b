"""The tutorial's own code (seed/tutorial-zh.md), kept as written, for comparison runs.

Only two changes: ``FCLayer`` can take its initial weights (so a run can start from the same
params as purenn's), and ``fit`` takes ``verbose`` to keep timing runs quiet. Everything else,
including the per-sample loop and the in-place updates inside backward, is the tutorial's.
"""

import numpy as np


class Layer:
    def __init__(self):
        self.input = None
        self.output = None

    def forward_propagation(self, input):
        raise NotImplementedError

    def backward_propagation(self, output_error, learning_rate):
        raise NotImplementedError


class FCLayer(Layer):
    def __init__(self, input_size, output_size, weights=None, bias=None):
        super().__init__()
        self.weights = np.random.rand(input_size, output_size) - 0.5 if weights is None else np.array(weights)
        self.bias = np.random.rand(1, output_size) - 0.5 if bias is None else np.array(bias).reshape(1, -1)

    def forward_propagation(self, input_data):
        self.input = input_data
        self.output = np.dot(self.input, self.weights) + self.bias
        return self.output

    def backward_propagation(self, output_error, learning_rate):
        input_error = np.dot(output_error, self.weights.T)
        weights_error = np.dot(self.input.T, output_error)
        self.weights -= learning_rate * weights_error
        self.bias -= learning_rate * output_error
        return input_error


class ActivationLayer(Layer):
    def __init__(self, activation, activation_prime):
        super().__init__()
        self.activation = activation
        self.activation_prime = activation_prime

    def forward_propagation(self, input_data):
        self.input = input_data
        self.output = self.activation(self.input)
        return self.output

    def backward_propagation(self, output_error, learning_rate):
        return self.activation_prime(self.input) * output_error


def tanh(x):
    return np.tanh(x)


def tanh_prime(x):
    return 1 - np.tanh(x) ** 2


def mse(y_true, y_pred):
    return np.mean(np.power(y_true - y_pred, 2))


def mse_prime(y_true, y_pred):
    return 2 * (y_pred - y_true) / y_true.size


class Network:
    def __init__(self):
        self.layers = []
        self.loss = None
        self.loss_prime = None

    def add(self, layer):
        self.layers.append(layer)

    def use(self, loss, loss_prime):
        self.loss = loss
        self.loss_prime = loss_prime

    def predict(self, input_data):
        samples = len(input_data)
        result = []
        for i in range(samples):
            output = input_data[i]
            for layer in self.layers:
                output = layer.forward_propagation(output)
            result.append(output)
        return result

    def fit(self, x_train, y_train, epochs, learning_rate, verbose=True):
        samples = len(x_train)
        errors = []
        for i in range(epochs):
            err = 0
            for j in range(samples):
                output = x_train[j]
                for layer in self.layers:
                    output = layer.forward_propagation(output)
                err += self.loss(y_train[j], output)
                error = self.loss_prime(y_train[j], output)
                for layer in reversed(self.layers):
                    error = layer.backward_propagation(error, learning_rate)
            err /= samples
            errors.append(err)
            if verbose:
                print('epoch %d/%d   error=%f' % (i + 1, epochs, err))
        return errors


def tutorial_network(params, dense_indices):
    """A tutorial Network holding copies of purenn ``params`` for the Dense layers at
    ``dense_indices`` of a Dense/tanh stack (tanh after every Dense)."""
    net = Network()
    for i in dense_indices:
        p = params[i]
        w = np.array(p["w"], dtype=np.float64)
        net.add(FCLayer(*w.shape, weights=w, bias=np.array(p["b"], dtype=np.float64)))
        net.add(ActivationLayer(tanh, tanh_prime))
    net.use(mse, mse_prime)
    return net
