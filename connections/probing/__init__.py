"""Background health checks: the probes of each kind (``probes/``), claiming due connections and
running batches (``scheduling``), applying outcomes to the lifecycle (``outcomes``), the bounded
probe history (``history``), scrapes of connected Prometheus and Grafana (``scrape``), and
whether probing keeps up (``state``)."""
