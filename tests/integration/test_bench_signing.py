"""benchmarks/bench_signing.py at its smallest, so the benchmark keeps working between the runs that
record its figures (docs/benchmarks.md). The whole-demo part runs in tests/e2e/test_demo.py."""

from __future__ import annotations

from tests.support import load_benchmark

bench = load_benchmark("bench_signing")


def test_the_micro_figures_time_real_signed_commits_that_verify(tmp_path):
    signed, unsigned = bench.commit_tree_costs(tmp_path, rounds=2)
    verify, listing = bench.verification_costs(tmp_path, commits=3, rounds=1)  # raises unless all verify
    assert len(signed) == len(unsigned) == 2 and len(verify) == len(listing) == 1
    assert all(ms > 0 for ms in [*signed, *unsigned, *verify, *listing])
    lines: list[str] = []
    bench.report_micro((signed, unsigned), (verify, listing), echo=lines.append)
    assert lines[2].startswith("| `Git.commit_tree` |") and lines[3].startswith("| batch `git log --no-walk`")


def test_the_demo_report_pairs_runs_and_leaves_out_a_pair_that_did_not_finish():
    def run(signed, wall, closed=True):
        return bench.DemoRun(signed, wall=wall, cpu=wall / 2, seconds=wall - 1, closed=closed, commits=80,
                             signed_commits=78 if signed else 0)

    pairs = [(run(True, 12.0), run(False, 10.0)), (run(True, 33.0), run(False, 30.0)),
             (run(True, 99.0, closed=False), run(False, 10.0))]
    lines: list[str] = []
    bench.report_demo(pairs, echo=lines.append)
    assert lines[2] == "| signed | 22.5 | 21.5 | 11.2 | 80 (78) |"
    assert lines[3] == "| unsigned | 20.0 | 19.0 | 10.0 | 80 (0) |"
    assert lines[4].startswith("paired ratio signed/unsigned, whole process: median 1.15x over 2 pairs")
