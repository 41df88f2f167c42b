"""The tutorial's XOR run through purenn's Python API.

    python examples/xor.py
"""

import numpy as np

import purenn as pn

x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])  # integer arrays work as they are
y = np.array([[0], [1], [1], [0]])

model = pn.Sequential([
    pn.Dense(2, 3, initializer="uniform"), pn.Tanh(),  # the tutorial's U[-0.5, 0.5) weights
    pn.Dense(3, 1, initializer="uniform"), pn.Tanh(),
])
params = model.init(np.random.default_rng(1))

# The tutorial's loop: one sample per step, in order, plain SGD with lr 0.1, for 1000 epochs.
params, history = pn.fit(model, params, x, y, loss=pn.mse, lr=0.1, epochs=1000,
                         batch_size=1, shuffle=False)
for epoch in (1, 10, 100, 1000):
    print(f"epoch {epoch:4d}/1000   error={history.loss[epoch - 1]:.6f}")

out = pn.predict(model, params, x)
for inputs, o, t in zip(x, out.ravel(), y.ravel()):
    print(f"{inputs} -> {o:+.4f}   (target {t})")
print("solved" if np.all(np.abs(out - y) < 0.5) else "not solved from this seed: try another")
