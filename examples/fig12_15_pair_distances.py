"""Figs. 12, 15 and 10 (right): pairwise distances of hidden states over training.

Fig. 12: the mean distance over 1000 random pairs of training words never decreases, so the fall in the
number of states is not a global contraction. Fig. 15: the number of pairs farther apart than eps, split
into pairs that agree on every future output and pairs that do not: the late fall comes from agreeing
pairs that first moved apart and then merged. Fig. 10 (right): one such agreeing pair and one
disagreeing pair, normalised.

    python examples/fig12_15_pair_distances.py OUT_DIR [--run runs/paper] [--pairs 1000]
"""

from __future__ import annotations

from _common import parse, save
from matplotlib.figure import Figure

from dfalens import plots
from dfalens.timeline import pair_trajectories


def main() -> None:
    pairs = {"type": int, "default": 1000, "help": "random pairs of training words"}
    args = parse(__doc__.splitlines()[0], options={"--pairs": pairs})
    n_pairs = args.pairs
    traj = pair_trajectories(args.run, n_pairs=n_pairs, seed=0)
    for fn, name in (
        (plots.mean_distance_plot, "fig12_mean_distance.png"),
        (plots.far_pairs_plot, "fig15_far_pairs.png"),
        (plots.pair_distance_plot, "fig10_pair_distance.png"),
    ):
        fig = Figure(figsize=(6.4, 3.8), layout="constrained")
        fn(traj, ax=fig.subplots())
        save(fig, args.out_dir, name)
    agree = int(traj.pairs.agree.sum())
    print(f"{len(traj.pairs)} pairs, {agree} agreeing; eps = {traj.eps_abs[0]:.4g}")


if __name__ == "__main__":
    main()
