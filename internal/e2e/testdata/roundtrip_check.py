"""Comparison shared by the Python client round-trip scripts."""


def same_per_partition(sent, got):
    """Report, per partition, whether the consumed values equal the produced
    ones in order; print the first difference. Returns True if all match."""
    ok = True
    for p in sorted(set(sent) | set(got)):
        want = sorted(sent.get(p, []))
        have = got.get(p, [])
        if have != want:
            ok = False
            print("FAIL: partition %d: produced %d, consumed %d" % (p, len(want), len(have)))
            for a, b in zip(want, have):
                if a != b:
                    print("  first difference: produced %r, consumed %r" % (a, b))
                    break
    return ok
