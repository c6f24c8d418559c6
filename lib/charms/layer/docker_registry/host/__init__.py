"""The workload on the machine: container, engine, files, host paths, trust, nrpe."""
