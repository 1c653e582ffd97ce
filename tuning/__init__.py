"""Tasks, data and the client/server tuning loop; not written yet (see the tuning issue)."""
