"""Coordinate check of a Hugging Face GPT-2 (random weights, small config) under μP and SP.

    python benchmarks/bench_hf.py [--json PATH] [--widths 128,256,512,1024] [--steps 1]

Builds `GPT2LMHeadModel` from a config (2 blocks, 2 heads, vocabulary 64, 16 tokens, untied
embeddings, no dropout) at each width, parameterizes it with `rn.preset("mup")` (base width =
the smallest width; attention logits 1/d_head) or `rn.preset("sp")`, and runs the library's
`coord_check` (random token ids, unit-norm random targets, SGD). Prints, per measured layer,
the fitted ‖Δh‖ slope over all widths and the local slope between the two widest, next to
the prediction (THEORY.md C2: n^{1/2} for hidden layers under μP; C4: ‖Δf‖ ~ n^0), and
writes them as JSON. Needs the optional extra `hf` (transformers).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import transformers

import richness as rn
from richness.coordcheck import coord_check
from richness.nn import hf


def make(width: int) -> torch.nn.Module:
    config = transformers.GPT2Config(
        n_embd=width,
        n_layer=2,
        n_head=2,
        vocab_size=64,
        n_positions=16,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return hf.Logits(transformers.GPT2LMHeadModel(config))


def _rows(name, runs, metrics, fits, steps, widths):
    m = metrics.merge(runs[["run_id", "width"]], on="run_id")
    m = m[(m.quantity == "dh") & (m.step == steps)]
    means = m.groupby(["layer", "width"]).value.mean().unstack()
    lo, hi = widths[-2], widths[-1]
    out = []
    for row in fits[fits.quantity == "dh"].itertuples():
        local = math.log(means.loc[row.layer, hi] / means.loc[row.layer, lo]) / math.log(hi / lo)
        out.append(
            {
                "table": name,
                "layer": row.layer.removeprefix("model."),
                "slope": row.slope,
                "local_slope": local,
                "predicted": row.predicted,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--widths", default="128,256,512,1024")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    widths = [int(w) for w in args.widths.split(",")]
    rows, seconds = [], {}
    for name, p in (("mup", rn.preset("mup", base_width=widths[0])), ("sp", rn.preset("sp"))):
        start = time.perf_counter()
        runs, metrics, fits = coord_check(
            make, widths, p=p, steps=args.steps, lr=args.lr, seeds=range(args.seeds), n_train=32
        )
        seconds[name] = time.perf_counter() - start
        rows += _rows(name, runs, metrics, fits, args.steps, widths)
    print(f"GPT-2 coordinate check, widths {widths}, step {args.steps}, lr {args.lr}")
    pair = f"{widths[-2]}→{widths[-1]}"
    print(f"| table | layer | ‖Δh‖ slope (all widths) | local {pair} | predicted |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['table']} | {r['layer']} | {r['slope']:+.3f} | {r['local_slope']:+.3f} | "
            f"{r['predicted']:+.3g} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"widths": widths, "rows": rows, "seconds": seconds}, fh, indent=1)


if __name__ == "__main__":
    main()
