"""gunicorn settings for esu: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be changed from the environment; the defaults suit a 2-core machine behind a TLS proxy
(docs/deploy.md).
"""

import math
import os

from esu import logs
from esu.config import defaults
from esu.onboarding import deadline

# -- where and how many ---------------------------------------------------------------------------------

# A platform that assigns the port (PORT) wants us on every interface; otherwise stay on loopback, where
# only the proxy in front can reach us.
bind = os.environ.get("ESU_BIND") or (f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000")

# Threads, not more processes: a callback spends nearly all its time waiting on Graph, and its steps
# already run in their own threads; webhook deliveries a worker receives at once share one commit, so more
# threads make bigger batches in a burst (bench/webhooks.py on PostgreSQL, loaded in turns: 16 threads took
# 13 % more deliveries a second than 8 at 32 connections and 19 % more at 128, the same at 8; 8 took 26 %
# more than 4; on SQLite, whose writers go one at a time, 8 and 16 measure alike). 2 workers × 16 threads
# = 32 requests at once on 2 cores; a worker that dies leaves the other serving.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))

# -- how long -------------------------------------------------------------------------------------------

# The slowest onboarding, from the app's own Graph settings (esu.onboarding.deadline, where the stuck-run
# window comes from too): its longest chain of Graph calls that wait for each other, each call with every
# attempt timing out, plus the database's time.
_settings = defaults()
SEQUENTIAL_GRAPH_CALLS = deadline.longest_chain()
SLOWEST_ONBOARDING_SECONDS = deadline.slowest_run_seconds(_settings)

# With gthread workers the timeout is a heartbeat (a worker whose main loop stops is replaced), not a
# limit on one request; it still must exceed the slowest onboarding should anyone switch to sync workers.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", math.ceil(SLOWEST_ONBOARDING_SECONDS) + deadline.DATABASE_SECONDS))
# On restart or deploy, running onboardings finish: stopping one halfway leaves a spent signup code.
# The service manager's stop timeout must be longer still (TimeoutStopSec in the systemd unit).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", timeout))
# The proxy keeps connections to us open; a little longer than nothing saves reconnecting per request.
keepalive = 5

# -- proxies ------------------------------------------------------------------------------------------

# esu's ProxyFix (ESU_PROXY_HOPS) is the one place that believes X-Forwarded-*: gunicorn's own handling
# of those headers stays off, so the two can never disagree.
forwarded_allow_ips = ""
secure_scheme_headers = {}

# -- logs -----------------------------------------------------------------------------------------------

# JSON lines on stdout, gunicorn's and the app's alike, each with the request id (esu/logs.py). The
# access line takes it from the X-Request-Id the app echoes in its response.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = logs.dict_config(loglevel.upper())
access_log_format = logs.ACCESS_LOG_FORMAT
logger_class = logs.AccessLogger

# The heartbeat file lives in memory: a slow or full disk must not make workers look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# systemd (or whatever runs us) reloads with HUP and stops with TERM: no control socket to secure.
control_socket_disable = True


def post_worker_init(worker):
    # gunicorn says when it starts booting a worker, not when the worker has imported the app and serves:
    # this line does (a deploy or a benchmark can wait for every worker's).
    worker.log.info("Worker ready (pid: %s)", worker.pid)
