"""The `certnet` command: certnet's own verbs, plus every Django management command.

certnet setup [--demo]          migrate, load the framework (and demo data)
certnet serve [--port N]        serve the web UI and API, with the job consumer beside it
certnet clocks sweep            raise the deadline alerts due now (the job does it every minute)
certnet load-framework FILE     validate and load a framework file
certnet lookup IP|ASN|DOMAIN [--at DATE] [--json]
certnet token create USER       print a new API token for USER
certnet audit verify            check the audit log's hash chain
certnet smtpd [--host H] [--port P]   SMTP intake: each message becomes a report or waits for triage
certnet ingest-mail FILE.eml [--from A] [--to A]   import one message (- reads stdin)
certnet evidence verify PACKAGE.zip   re-check every hash of an evidence package (exit 1 on any)
certnet intel import FILE.csv --owner ORG --user USER   record indicators (all rows or none)
certnet intel export --format csv --user USER [--kind K] [--owner ORG] [--tag T]
certnet load-warninglists       reload the shipped warninglists (setup does it too)
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certnet.settings")
    from django.core.management import execute_from_command_line

    if not args or args[0] in {"-h", "--help", "help"}:
        print(__doc__)
        if not args:
            return
        args = ["help"]
    else:
        # Our verbs are spelled with hyphens on the command line, as Python modules with underscores.
        args[0] = args[0].replace("-", "_")
    execute_from_command_line(["certnet", *args])


if __name__ == "__main__":
    main()
