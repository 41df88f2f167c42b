"""The tutorial's MNIST run, then a modern one, through purenn's Python API.

    PURENN_DATA=/path/to/data python examples/mnist.py      # folder holding mnist/*.gz

Without PURENN_DATA the files are looked for in (or downloaded to) ~/.cache/purenn/mnist.
"""

import time

import numpy as np

import purenn as pn

data = pn.load_mnist()
x_train, y_train = data.train.images, data.train.labels  # (60000, 784) float32 in [0, 1]
x_test, y_test = data.test.images, data.test.labels

# 1. The tutorial: 784-100-50-10 tanh, MSE on one-hot targets, one sample per step, lr 0.1.
#    (On the first 10000 samples for 2 epochs, to take seconds; the tutorial used all 60000.)
tutorial = pn.Sequential([
    pn.Dense(784, 100, initializer="uniform"), pn.Tanh(),
    pn.Dense(100, 50, initializer="uniform"), pn.Tanh(),
    pn.Dense(50, 10, initializer="uniform"), pn.Tanh(),
])
params = tutorial.init(np.random.default_rng(0))
params, history = pn.fit(
    tutorial, params, x_train[:10000], pn.one_hot(y_train[:10000], 10), loss=pn.mse,
    lr=0.1, epochs=2, batch_size=1, shuffle=False,
    callback=lambda log: print(f"epoch {log.epoch}/{log.epochs}   error={log.loss:.6f}"),
)
print("tutorial network, test accuracy:", pn.evaluate(tutorial, params, x_test, y_test)["accuracy"])
print("first three test predictions:", pn.predict(tutorial, params, x_test[:3]).argmax(axis=1), "true:", y_test[:3])

# 2. A modern MLP: ReLU, He init, softmax cross-entropy on logits, Adam with cosine decay,
#    shuffled minibatches. About 98% test accuracy.
mlp = pn.Sequential([
    pn.Dense(784, 256, initializer="he"), pn.ReLU(),
    pn.Dense(256, 128, initializer="he"), pn.ReLU(),
    pn.Dense(128, 10),
])
epochs, batch = 8, 128
steps = epochs * -(-len(x_train) // batch)
start = time.perf_counter()
params, history = pn.fit(
    mlp, mlp.init(np.random.default_rng(0)), x_train, y_train, loss=pn.softmax_cross_entropy,
    optimizer=pn.Adam(pn.CosineDecay(2e-3, steps)), epochs=epochs, batch_size=batch, seed=0,
    validation=(x_test, y_test),
    callback=lambda log: print(f"epoch {log.epoch}/{log.epochs}  loss {log.loss:.4f}  "
                               f"test accuracy {log.val_accuracy:.2%}"),
)
print(f"modern MLP: {history.val_accuracy[-1]:.2%} test accuracy in {time.perf_counter() - start:.0f} s")
