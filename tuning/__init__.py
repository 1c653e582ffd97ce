"""Tasks, data and metrics (``tasks``, ``data``, ``metrics``); the tuning loop comes with the tuning issue."""
