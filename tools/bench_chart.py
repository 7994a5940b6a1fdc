#!/usr/bin/env python3
"""Draws a line chart of throughput against concurrent clients as SVG.

  bench_chart.py OUT.svg "title" < points

Each input line is "<series> <clients> <requests per second>"; one line per
series, the x axis is logarithmic (clients double), the y axis starts at 0.
Plain SVG, no plotting library: Debian's minimal install has none.
"""
import math
import sys

COLORS = ["#d9534f", "#2b7bb9", "#5cb85c", "#f0ad4e"]


def main():
    out, title = sys.argv[1], sys.argv[2]
    series = {}
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        name, clients, rate = parts[0], int(parts[1]), float(parts[2])
        series.setdefault(name, []).append((clients, rate))
    if not series:
        raise SystemExit("bench_chart.py: no points")
    width, height = 720, 420
    left, right, top, bottom = 70, 130, 40, 50
    xs = sorted({c for points in series.values() for c, _ in points})
    y_max = max(r for points in series.values() for _, r in points)
    step = 10 ** math.floor(math.log10(max(y_max, 1)))
    for factor in (1, 2, 5, 10):
        if y_max / (step * factor) <= 8:
            step *= factor
            break
    y_top = step * math.ceil(y_max / step)
    x_lo, x_hi = math.log2(xs[0]), math.log2(xs[-1])

    def x_of(c):
        span = (x_hi - x_lo) or 1
        return left + (math.log2(c) - x_lo) / span * (width - left - right)

    def y_of(r):
        return top + (1 - r / y_top) * (height - top - bottom)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    y = 0.0
    while y <= y_top + 1e-9:
        svg.append(f'<line x1="{left}" y1="{y_of(y):.1f}" x2="{width - right}" y2="{y_of(y):.1f}" '
                   f'stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{y_of(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
        y += step
    for c in xs:
        svg.append(f'<text x="{x_of(c):.1f}" y="{height - bottom + 18}" text-anchor="middle">{c}</text>')
    svg.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">'
               'concurrent clients (one request in flight each)</text>')
    svg.append(f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(top + height - bottom) / 2})">requests per second</text>')
    for i, (name, points) in enumerate(sorted(series.items())):
        color = COLORS[i % len(COLORS)]
        points.sort()
        path = " ".join(f"{x_of(c):.1f},{y_of(r):.1f}" for c, r in points)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for c, r in points:
            svg.append(f'<circle cx="{x_of(c):.1f}" cy="{y_of(r):.1f}" r="3" fill="{color}"/>')
        svg.append(f'<text x="{width - right + 12}" y="{top + 20 + 18 * i}" fill="{color}">{name}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
