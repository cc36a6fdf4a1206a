"""``python -m liafnet.viz``: the command line is :mod:`liafnet.cli.viz`."""

from liafnet.cli.viz import main

raise SystemExit(main())
