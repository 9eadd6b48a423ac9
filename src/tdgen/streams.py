"""The one table of PRNG stream tags: every derived random stream of tdgen folds in one of these.

A stream tag separates draws that must not share randomness (the probes' transitions, evaluation
episodes, host-side replay sampling) from the training stream, while keeping each a function of
the run's seed and position, so a resumed run draws exactly what an uninterrupted one does. JAX
streams use `jax.random.fold_in(key, TAG)`; host (numpy, envpool) streams seed
`numpy.random.default_rng([seed, TAG, position])`. Values are frozen: changing one changes results.
"""

PROBE = 0x50524F42  # "PROB": update-matrix draws (transitions, fresh networks)
EVAL = 0x4556414C  # "EVAL": evaluation episodes (JAX key fold-in)
EVAL_ENV = 0x4556  # "EV": envpool seed of evaluation pools (host)
SAMPLE = 0x53414D50  # "SAMP": host-side replay sampling (envpool Atari)
ENV = 0x454E56  # "ENV": envpool seed of training pools after a (re)start
SPARSE = 0x5350  # "SP": the host sparsifying mask of reward="sparse" on envpool
COLLECT = 0x434F4C4C  # "COLL": a host-stepped teacher's acting keys while a student trains
INTERVENTIONS = 0x494E5456  # "INTV": the periodic events of plasticity interventions (fold-in)

__all__ = ["COLLECT", "ENV", "EVAL", "EVAL_ENV", "INTERVENTIONS", "PROBE", "SAMPLE", "SPARSE"]
