"""``python -m liafnet.profile``: the command line is :mod:`liafnet.cli.profile`."""

from liafnet.cli.profile import main

raise SystemExit(main())
