"""Medians of berth's BERTH_TIMING stages.

BERTH_TIMING=1 makes the berth CLI, berth-monitor and berth-runtime print a
line per stage, "[ 12.34ms proc] stage", on the monotonic clock. Each file
in a directory holds one run's stderr. Per stage: the median time since the
previous line (of any process) over the runs.

    stages.py DIR           medians of one set of runs
    stages.py A B           two sets side by side with their difference
                            (stages differing by >= 0.5 ms, and the CLI span)
"""
import os
import re
import statistics
import sys

MARK = re.compile(r'\[\s*([\d.]+)ms [^]]*\] (.*)')
CLI_SPAN = '= first to last mark of the CLI'


def stages(d):
    out = {}
    for f in os.listdir(d):
        marks = []
        with open(os.path.join(d, f)) as fh:
            for line in fh:
                m = MARK.match(line)
                if m:
                    marks.append((float(m.group(1)), m.group(2).strip()))
        marks.sort()
        for (t0, _), (t1, name) in zip(marks, marks[1:]):
            out.setdefault(name, []).append(t1 - t0)
        cli = [t for t, name in marks if name.startswith('berth:')]
        if cli:
            # The CLI's span: after its last mark it only exits; the
            # monitor may go on (an exit command) without holding the user up.
            out.setdefault(CLI_SPAN, []).append(cli[-1] - marks[0][0])
    return {k: statistics.median(v) for k, v in out.items()}


def main(args):
    if len(args) == 1:
        for name, v in stages(args[0]).items():
            print(f'  {v:6.2f}  {name}')
        return
    a, b = stages(args[0]), stages(args[1])
    la, lb = (os.path.basename(p.rstrip('/')) for p in args)
    print(f'  {la:>7} {lb:>7} {"diff":>7}  stage')
    for name in sorted(set(a) | set(b), key=lambda k: (k.startswith('='), k)):
        d = a.get(name, 0) - b.get(name, 0)
        if abs(d) >= 0.5 or name.startswith('='):
            print(f'  {a.get(name, 0):7.2f} {b.get(name, 0):7.2f} {d:+7.2f}  {name}')


if __name__ == '__main__':
    main(sys.argv[1:])
