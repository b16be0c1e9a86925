"""Entry point for starting a worker the arq way: ``arq worker.arq_entry.WorkerSettings``.

Configuration is read here, once, from the environment (``REDIS_URL``, ``SMSGW_CONFIG``).
"""

from __future__ import annotations

import os
from typing import Any

from worker.config import load_settings
from worker.jobs import arq_settings

_kwargs: dict[str, Any] = arq_settings(load_settings(os.environ))

WorkerSettings = type("WorkerSettings", (), _kwargs)
