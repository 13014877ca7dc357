"""Everything put together: the settings of a run, the presets, the frame loop of Algorithm 1
(:mod:`.pipeline`), the per-input job, the batch executors (local and Ray) and the library API."""
