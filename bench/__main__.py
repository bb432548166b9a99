"""``python -m bench``: latency benchmarks of rtdecode (see docs/performance.md).

    python -m bench quick                 # headline case + baselines, < 2 min (make bench)
    python -m bench full                  # + sweeps (channels, rates, chunks, models), ~8 min
    python -m bench overload              # 256 ch @ 30 kHz the daemon cannot sustain, per on_behind
    python -m bench recording             # recording on vs off, interleaved A/B pairs, ~4 min
    python -m bench ibci                  # 1,024 ch @ 30 kHz broadband → iBCI front end; capacity sweep
    python -m bench frontend              # µs (or --callgrind instructions) per tick of the front end
    python -m bench fused_step            # µs per tick: numpy chain vs one ONNX Runtime call
    python -m bench host_noise            # the machine's own timing noise (+ --beside ibci|headline)
    python -m bench case --target daemon --model gamma --channels 64 --rate 2048 --seconds 10
    python -m bench report                # plots + README / docs tables from the latest results
    python -m bench producer|relay ...    # the harness' own processes
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a sub-command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or "")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "producer":
        from bench.producer import main as run
    elif cmd == "relay":
        from bench.relay import main as run
    elif cmd in ("quick", "full", "overload", "case"):
        from bench.profiles import main as prof

        return prof([cmd, *rest])
    elif cmd == "report":
        from bench.report import main as run
    elif cmd == "ibci":
        from bench.ibci import main as run
    elif cmd == "frontend":
        from bench.frontend import main as run
    elif cmd == "fused_step":
        from bench.fused_step import main as run
    elif cmd == "host_noise":
        from bench.host_noise import main as run
    elif cmd == "recording":
        from bench.recording_ab import main as run
    else:
        sys.stderr.write(f"unknown sub-command {cmd!r}; try python -m bench --help\n")
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
