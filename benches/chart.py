#!/usr/bin/env python3
"""Draws the daemon's RSS and CPU against concurrent streams from `handoff` JSON summaries.

    python3 benches/chart.py bench-out/mock-c{1000,2500,5000,10000,15000}.json > NEW.svg

Standard library only; writes a self-contained SVG to stdout.
"""
import json
import math
import sys

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 70, 40, 50


def load(paths):
    points = []
    for path in paths:
        with open(path) as f:
            summary = json.load(f)
        daemon = summary.get("daemon") or {}
        if not daemon:
            continue
        points.append((daemon["peak_concurrent"], daemon["rss_peak_kib"] / 1024, daemon["cpu_seconds"]))
    return sorted(points)


def nice_step(maximum, ticks=4):
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `ticks` ticks."""
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def scale(value, low, high, out_low, out_high):
    if high == low:
        return out_low
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def main():
    points = load(sys.argv[1:])
    if not points:
        sys.exit("no summaries with daemon figures (run handoff with -pid)")
    step_x = nice_step(max(p[0] for p in points))
    step_rss = nice_step(max(p[1] for p in points))
    step_cpu = nice_step(max(p[2] for p in points))
    max_x = step_x * math.ceil(max(p[0] for p in points) / step_x)
    max_rss = step_rss * (math.ceil(max(p[1] for p in points) / step_rss) + 1)
    max_cpu = step_cpu * (math.ceil(max(p[2] for p in points) / step_cpu) + 1)
    x = lambda v: scale(v, 0, max_x, LEFT, WIDTH - RIGHT)
    y_rss = lambda v: scale(v, 0, max_rss, HEIGHT - BOTTOM, TOP)
    y_cpu = lambda v: scale(v, 0, max_cpu, HEIGHT - BOTTOM, TOP)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">'
           'streaming-daemon, mock streams of ~15 s: peak RSS and CPU seconds</text>',
           f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="black"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#1f77b4"/>',
           f'<line x1="{WIDTH - RIGHT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#d62728"/>',
           f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">concurrent streams</text>',
           f'<text x="18" y="{HEIGHT / 2}" fill="#1f77b4" transform="rotate(-90 18 {HEIGHT / 2})" '
           'text-anchor="middle">daemon peak RSS (MiB)</text>',
           f'<text x="{WIDTH - 18}" y="{HEIGHT / 2}" fill="#d62728" '
           f'transform="rotate(90 {WIDTH - 18} {HEIGHT / 2})" text-anchor="middle">daemon CPU seconds per run</text>']
    for i in range(round(max_x / step_x) + 1):
        out.append(f'<text x="{x(i * step_x)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                   f'{round(i * step_x):,}</text>')
    for i in range(round(max_rss / step_rss) + 1):
        out.append(f'<text x="{LEFT - 6}" y="{y_rss(i * step_rss) + 4}" text-anchor="end" '
                   f'fill="#1f77b4">{i * step_rss:g}</text>')
    for i in range(round(max_cpu / step_cpu) + 1):
        out.append(f'<text x="{WIDTH - RIGHT + 6}" y="{y_cpu(i * step_cpu) + 4}" '
                   f'fill="#d62728">{i * step_cpu:g}</text>')
    for colour, y, index in (("#1f77b4", y_rss, 1), ("#d62728", y_cpu, 2)):
        path = " ".join(f"{x(p[0]):.1f},{y(p[index]):.1f}" for p in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for p in points:
            out.append(f'<circle cx="{x(p[0]):.1f}" cy="{y(p[index]):.1f}" r="3" fill="{colour}"/>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
