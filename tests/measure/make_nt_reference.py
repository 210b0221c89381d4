"""Writes nt_reference.json: infinite-width kernels from neural-tangents, for test_infinite.py.

Run with the peer environment (from the repository root, bash ../shared/peers/setup.sh ../peers):
    ../peers/nt/bin/python tests/measure/make_nt_reference.py
"""

import json
from pathlib import Path

import jax
import numpy as np
from neural_tangents import stax

GENERATOR = (
    "neural-tangents 0.6.5, jax 0.4.23, float64: stax.serial(Dense(1, W_std, b_std), act, ..., "
    "Dense(1, W_std, b_std)).kernel_fn(x1, x2, ('nngp', 'ntk'))"
)


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((4, 6))
    x2 = rng.standard_normal((3, 6))
    activations = [("relu", stax.Relu()), ("erf", stax.Erf()), ("linear", stax.Identity())]
    cases = []
    for name, act in activations:
        for depth, w_std, b_std in [(1, 1.0, 0.0), (3, 1.0, 0.0), (4, 1.5, 0.3)]:
            layers = [stax.Dense(1, W_std=w_std, b_std=b_std)]
            for _ in range(depth - 1):
                layers += [act, stax.Dense(1, W_std=w_std, b_std=b_std)]
            _, _, kernel_fn = stax.serial(*layers)
            k = kernel_fn(x1, x2, ("nngp", "ntk"))
            cases.append(
                {
                    "activation": name,
                    "depth": depth,
                    "w_std": w_std,
                    "b_std": b_std,
                    "nngp": np.asarray(k.nngp).tolist(),
                    "ntk": np.asarray(k.ntk).tolist(),
                }
            )
    out = {"generator": GENERATOR, "x1": x1.tolist(), "x2": x2.tolist(), "cases": cases}
    path = Path(__file__).with_name("nt_reference.json")
    path.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
