"""The mutation scores of tests/tools/mutation.sh: one line per module, then every surviving mutant; exit 1 below the threshold.

Input: ``module=results-file`` pairs, each file the output of ``mutmut results --all true`` (``<mutant>: <status>``).
Caught = killed, timeout or segfault (the tests noticed); not caught = survived, no tests, suspicious.
"""

import argparse
import collections
import sys

CAUGHT = ("killed", "timeout", "segfault")
NOT_COUNTED = ("skipped", "not checked")


def read_results(path):
    statuses = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, sep, status = line.strip().rpartition(": ")
            if sep:
                statuses[name] = status
    return statuses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threshold", type=float, default=80.0)
    parser.add_argument("results", nargs="+", help="module=path")
    args = parser.parse_args(argv)
    failed, survivors = False, []
    print(f"{'module':<24} {'caught':>7} {'total':>6} {'score':>7}  result")
    for pair in args.results:
        module, _sep, path = pair.partition("=")
        statuses = read_results(path)
        counts = collections.Counter(statuses.values())
        total = sum(count for status, count in counts.items() if status not in NOT_COUNTED)
        caught = sum(counts[status] for status in CAUGHT)
        score = 100.0 * caught / total if total else 100.0
        ok = score >= args.threshold
        failed |= not ok
        print(f"{module:<24} {caught:>7} {total:>6} {score:>6.1f}%  {'PASS' if ok else 'FAIL'} (threshold {args.threshold:g}%)")
        survivors += [f"  {module}: {name} ({status})" for name, status in sorted(statuses.items())
                      if status not in CAUGHT and status not in NOT_COUNTED]
    if survivors:
        print(f"\nnot caught ({len(survivors)}; `mutmut show <name>` in a run directory shows the change):")
        print("\n".join(survivors))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
