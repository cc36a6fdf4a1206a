"""``python -m liafnet.tables``: kept as the command's name; the code is :mod:`liafnet.cli.tables`
and the library :mod:`liafnet.report`."""

from liafnet.cli.tables import main

if __name__ == "__main__":
    raise SystemExit(main())
