"""``python -m medseg_r.cli``: the ``medseg-r`` command."""
from . import main

if __name__ == "__main__":
    raise SystemExit(main())
