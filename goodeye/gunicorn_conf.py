"""gunicorn's settings that its command line cannot carry (goodeye/stack.py passes `-c python:goodeye.gunicorn_conf`).

- Logging: the app's JSON or text lines (GOODEYE_LOG_FORMAT) for gunicorn's own messages too.
- No control socket (gunicorn 25.1+): its default path, one per user's home, would be
  fought over by both pools and every other stack on the machine, and nothing uses it.
- Metrics: a worker that exits is marked dead in the multiprocess directory, so its
  live gauges stop counting (its counters stay in the totals).
"""

import os

from prometheus_client import multiprocess

from goodeye.config import load_settings
from goodeye.logs import logging_config

logconfig_dict = logging_config(load_settings().log_format)
control_socket_disable = True


def child_exit(_server, worker):
    """gunicorn's hook after a worker exited."""
    # prometheus-client's own variable, set by goodeye/stack.py.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
