"""What a signup page costs: its own weight in the browser, and how many the server answers per second.

Prints the page's HTML and our own scripts and styles as the browser fetches them, each gzipped (the
Facebook SDK aside), then loads ``GET /signup/<slug>`` with wrk on the app under gunicorn with its
production config, and a bare Flask route answering a page of the same size under the same config in
the same run. Targets: <= 15 KB gzipped; >= 0.70 of the bare route's requests/s.

    .venv/bin/python bench/signup_page.py [--seconds 10] [--connections 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import AppServer, BareServer, free_port, fresh_database, requests_per_second, run_wrk  # noqa: E402

PROXY = {"X-Forwarded-Proto": "https"}


def page_weight(url: str, slug: str) -> dict[str, int]:
    """Gzipped bytes of the page and of each of our scripts and stylesheets it loads."""
    html = requests.get(f"{url}/signup/{slug}", headers=PROXY, timeout=10).content
    sizes = {f"/signup/{slug}": len(gzip.compress(html))}
    for asset in re.findall(rb'<(?:script[^>]+src|link[^>]+rel="stylesheet"[^>]+href)="(/static/[^"]+)"', html):
        body = requests.get(f"{url}{asset.decode()}", headers=PROXY, timeout=10).content
        sizes[asset.decode()] = len(gzip.compress(body))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--gunicorn", default="", help="gunicorn flags over gunicorn.conf.py, for both servers")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (make bench does)")

    gunicorn_args = args.gunicorn.split()
    with tempfile.TemporaryDirectory() as scratch, fresh_database(args.database_url, scratch) as database_url:
        env = {"DATABASE_URL": database_url, "ESU_SIMULATOR": "0", "ESU_ENV": "production", "ESU_PROXY_HOPS": "1"}
        with AppServer(env, port=free_port(), pages=["bench"], gunicorn_args=gunicorn_args) as app:
            sizes = page_weight(app.url, "bench")
            app_stats = run_wrk(app.url, "wrk_get.lua", ["/signup/bench"], args.seconds, args.connections,
                                args.threads)
        with BareServer("bare_app", {}, gunicorn_args) as bare:
            bare_stats = run_wrk(bare.url, "wrk_get.lua", ["/signup/bench"], args.seconds, args.connections,
                                 args.threads)

    total = sum(sizes.values())
    print(f"Signup page: {args.seconds} s at {args.connections} connections, gunicorn.conf.py {args.gunicorn}, "
          f"{database_url.split(':')[0]}")
    print(f"  weight, gzipped: {total / 1024:.1f} KB   (target <= 15 KB: "
          + ", ".join(f"{name} {size / 1024:.1f} KB" for name, size in sizes.items()) + ")")
    for label, stats in (("app", app_stats), ("bare route", bare_stats)):
        print(f"  {label:<11} {requests_per_second(stats):8.0f} req/s   p50 {stats['p50_us'] / 1000:6.1f} ms   "
              f"p99 {stats['p99_us'] / 1000:6.1f} ms   non-2xx {stats['non_2xx']}   socket errors "
              f"{stats['socket_errors']}")
    ratio = requests_per_second(app_stats) / requests_per_second(bare_stats)
    print(f"  ratio app/bare: {ratio:.2f}   (target >= 0.70)")


if __name__ == "__main__":
    main()
