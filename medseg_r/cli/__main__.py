"""``python -m medseg_r.cli``: the ``medseg-r`` command."""
from . import main

raise SystemExit(main())
