"""Measurements of tdgen on the machine at hand: the benchmark record and two checks.

`tdgen.bench.record` is the one format every benchmark writes (figures, goals, the machine, the
versions and the command, as JSON), so the benchmarks page is generated from results rather than
copied by hand. `tdgen.bench.gpu_check` trains each paper program for about a minute on the
default device (`tdgen gpu-check`), and `tdgen.bench.preset_memory` estimates the memory of each
paper preset's training step without running it (`tdgen preset-memory`). They live in the
package, not in `benchmarks/`, so an installed tdgen can check a GPU machine and record the result.
"""
