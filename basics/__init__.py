"""imgvault.basics: what every layer uses, importable without any of them: the errors imgvault reports to
people (:mod:`.errors`), the installed version (:mod:`.version`) and names imported on first use
(:mod:`.lazy`). Nothing here imports more than the standard library."""
