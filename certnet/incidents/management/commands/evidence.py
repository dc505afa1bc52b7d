"""`certnet evidence verify PACKAGE.zip`: re-check every hash of an exported evidence package.

Exit status: 0 when every hash matches its manifest, 1 when anything does not (each problem named),
2 when the file cannot be read as a zip at all. Whether this database recorded the manifest's hash
is said either way; a package checked on another machine is simply not recorded there, unless
--require-recorded makes that a failure too. --manifest-sha256 compares the manifest with a hash
received separately (e.g. in the referral letter)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from certnet.incidents import packages, selectors_evidence


class Command(BaseCommand):
    help = "Work with evidence packages. `evidence verify PACKAGE.zip` re-checks every hash (exit 1 on any)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        verify = sub.add_parser("verify", help="re-check every hash in an exported evidence package")
        verify.add_argument("package", help="the package (.zip) as exported")
        verify.add_argument(
            "--manifest-sha256", default="", help="the manifest hash the sender gave you, to compare"
        )
        verify.add_argument(
            "--require-recorded",
            action="store_true",
            help="fail unless this database recorded the package's manifest hash",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["package"]
        try:
            result = packages.verify(path)
        except packages.UnreadablePackage as exc:
            raise CommandError(f"cannot verify: {exc}", returncode=2) from None
        self.stdout.write(f"package: {path}")
        if result.manifest is not None:
            for line in packages.summary_lines(result.manifest):
                self.stdout.write(f"  {line}")
        for check in result.checks:
            self.stdout.write(f"{'ok  ' if check.ok else 'FAIL'}  {check.message}")
        problems = list(result.problems)
        expected = options["manifest_sha256"].strip().lower()
        if expected and result.manifest_sha256 is not None:
            if expected == result.manifest_sha256:
                self.stdout.write("ok    manifest sha256 matches the one given (--manifest-sha256)")
            else:
                message = f"manifest sha256 is {result.manifest_sha256}, not {expected} (--manifest-sha256)"
                self.stdout.write(f"FAIL  {message}")
                problems.append(message)
        if result.manifest_sha256 is not None:
            recorded = self._recorded(result.manifest_sha256)
            if options["require_recorded"] and not recorded:
                problems.append("the manifest hash is not recorded in this database (--require-recorded)")
        if problems:
            count = len(problems)
            raise CommandError(
                f"evidence package FAILED verification: {count} problem{'s' if count != 1 else ''}; "
                f"first: {problems[0]}",
                returncode=1,
            )
        self.stdout.write(
            f"evidence package intact: every hash matches its manifest ({len(result.checks)} checks)"
        )

    def _recorded(self, manifest_sha256: str) -> bool:
        """Say whether this database exported the package (its audit log and its package records)."""
        try:
            package = selectors_evidence.package_with_manifest(manifest_sha256)
            entry = selectors_evidence.audit_entry_for_manifest(manifest_sha256)
        except DatabaseError as exc:
            self.stdout.write(f"note  could not consult this database for the manifest hash: {exc}")
            return False
        if package is None and entry is None:
            self.stdout.write(
                f"NOTE  manifest sha256 {manifest_sha256} is NOT recorded in this database: neither its "
                "audit log nor its evidence packages know it. Expected if the package was exported "
                "elsewhere; otherwise the manifest was altered after export. Compare the hash with the "
                "one the sender recorded."
            )
            return False
        where = []
        if package is not None:
            referral = (
                f", for referral {package.referral_id} to {package.referral.agency.slug}"
                if package.referral is not None
                else ""
            )
            where.append(
                f"evidence package #{package.pk} of {package.incident.reference} exported "
                f"{package.created_at:%Y-%m-%d %H:%M} UTC by {package.created_by.get_username()}{referral}"
            )
        if entry is not None:
            where.append(f"audit log entry #{entry.seq} (`certnet audit verify` checks the chain)")
        else:
            where.append("but NO audit log entry records it")
        self.stdout.write(f"ok    manifest sha256 recorded here: {'; '.join(where)}")
        return entry is not None and package is not None
