"""The events store: a Parquet dataset partitioned by day and feed, read through DuckDB.

Layout: `<root>/day=YYYY-MM-DD/feed=<source code>/<batch id>.parquet`, in a local directory
(CERTNET_EVENTS_DIR) or, when CERTNET_EVENTS_URL names one, in an S3-compatible bucket
(`s3://bucket/prefix?endpoint_override=host:port&scheme=https`; credentials from the usual AWS
environment variables or files). A batch's files are named by the batch and appear whole (locally
written to a temporary name and renamed; in a bucket an object is only visible once its upload is
complete), so writing a batch again (after a crash or a redelivery) replaces its files instead of
adding to them: the store never holds an event twice. Files of different feeds carry different
`extra.*` columns; readers union them by name.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

_SAFE = re.compile(r"[^a-z0-9_.-]+")
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1  # measured: a quarter less CPU than the default level, files as small
# Min/max statistics only where queries filter (they let DuckDB skip row groups); a dictionary only for
# fields that repeat. Both cost CPU on every column they are asked for, and extra.* holds long,
# mostly unique text (certificate fingerprints, banners).
STATISTICS_FIELDS = frozenset(
    {
        "time.source",
        "source.ip",
        "source.asn",
        "route.organisation",
        "route.cert",
        "feed.code",
        "classification.taxonomy",
        "classification.type",
        "classification.identifier",
    }
)
UNIQUE_FIELDS = frozenset(
    {
        "time.source",
        "time.observation",
        "source.ip",
        "source.reverse_dns",
        "source.fqdn",
        "source.url",
        "destination.ip",
        "destination.url",
        "raw",
        "malware.hash.md5",
        "malware.hash.sha1",
        "malware.hash.sha256",
    }
)


def partition_value(text: str) -> str:
    return _SAFE.sub("-", text.lower()).strip("-") or "unnamed"


ALL_FILES = "day=*/feed=*/*.parquet"
_PARTITIONS = pa.schema([("day", pa.string()), ("feed", pa.string())])


@dataclass(frozen=True)
class WrittenFile:
    path: str
    rows: int


class EventStore:
    """`root` is a local directory, or with `filesystem` a `bucket/prefix` on that filesystem."""

    def __init__(self, root: Path | str, filesystem: pafs.FileSystem | None = None) -> None:
        self.filesystem = filesystem
        self.root = str(root).rstrip("/")

    @classmethod
    def configured(cls) -> EventStore:
        """The store the settings name: the bucket of CERTNET_EVENTS_URL, else CERTNET_EVENTS_DIR."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        url = settings.CERTNET_EVENTS_URL
        if not url:
            return cls(settings.CERTNET_EVENTS_DIR)
        try:
            filesystem, root = pafs.FileSystem.from_uri(url)
        except (pa.ArrowInvalid, ValueError) as exc:
            raise ImproperlyConfigured(
                f"CERTNET_EVENTS_URL {url!r} names no store pyarrow can open: {exc}"
            ) from None
        return cls(root, filesystem)

    def __str__(self) -> str:
        return self.root if self.filesystem is None else f"{self.filesystem.type_name}://{self.root}"

    def write_batch(self, batch_id: str, table: pa.Table, feed: str) -> list[WrittenFile]:
        """Write one batch, one file per day it covers; returns the files written."""
        if table.num_rows == 0:
            return []
        feed_part = partition_value(feed)
        days = _days_of(table)
        written = []
        for day in np.unique(days):
            rows = table.filter(pa.array(days == day)) if len(np.unique(days)) > 1 else table
            name = f"day={day}/feed={feed_part}/{partition_value(batch_id)}.parquet"
            options = {
                "compression": COMPRESSION,
                "compression_level": COMPRESSION_LEVEL,
                "use_dictionary": [
                    n for n in rows.column_names if n not in UNIQUE_FIELDS and not n.startswith("extra.")
                ],
                "write_statistics": [n for n in rows.column_names if n in STATISTICS_FIELDS],
            }
            if self.filesystem is not None:
                target = f"{self.root}/{name}"
                pq.write_table(rows, target, filesystem=self.filesystem, **options)
            else:
                path = Path(self.root) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
                pq.write_table(rows, temporary, **options)
                temporary.replace(path)
                target = str(path)
            written.append(WrittenFile(path=target, rows=rows.num_rows))
        return written

    def files(self, pattern: str = ALL_FILES) -> Iterator[str]:
        """The store's files whose path below the root matches `pattern` (segments as in ALL_FILES)."""
        if self.filesystem is None:
            yield from (str(path) for path in sorted(Path(self.root).glob(pattern)))
            return
        depth = len(PurePosixPath(pattern).parts)
        listing = self.filesystem.get_file_info(
            pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        )
        for info in sorted(listing, key=lambda info: info.path):
            relative = PurePosixPath(info.path[len(self.root) :].lstrip("/"))
            if info.is_file and len(relative.parts) == depth and relative.match(pattern):
                yield info.path

    def events(
        self, connection: duckdb.DuckDBPyConnection, pattern: str = ALL_FILES
    ) -> duckdb.DuckDBPyRelation | None:
        """A DuckDB relation over the matching files, with `day` and `feed` from the partition names
        and every file's columns (unioned by name); None when no file matches."""
        if self.filesystem is None:
            if next(self.files(pattern), None) is None:
                return None
            return connection.read_parquet(
                str(Path(self.root) / pattern), hive_partitioning=True, union_by_name=True
            )
        paths = list(self.files(pattern))
        if not paths:
            return None
        # DuckDB reads the bucket through pyarrow's filesystem (no DuckDB extension to install): the
        # files' schemas are unioned here, as read_parquet's union_by_name does for local files.
        schema = pa.unify_schemas(
            [pq.read_schema(path, filesystem=self.filesystem) for path in paths] + [_PARTITIONS]
        )
        dataset = ds.dataset(
            paths,
            schema=schema,
            filesystem=self.filesystem,
            format="parquet",
            partitioning=ds.partitioning(_PARTITIONS, flavor="hive"),
            partition_base_dir=self.root,
        )
        return connection.from_arrow(dataset)


def _days_of(table: pa.Table) -> np.ndarray:
    """The partition day of each row: its source time, else its observation time."""
    numbers = None
    for name in ("time.source", "time.observation"):
        if name in table.column_names:
            days = pc.cast(pc.cast(table.column(name), pa.timestamp("us", tz="UTC")), pa.date32())
            numbers = days if numbers is None else pc.coalesce(numbers, days)
    if numbers is None:
        return np.full(table.num_rows, "unknown-day", dtype=object)
    as_int = np.asarray(pc.fill_null(pc.cast(numbers, pa.int32()), -(2**31)).to_numpy(zero_copy_only=False))
    # Format each distinct day once, not each row.
    distinct, inverse = np.unique(as_int, return_inverse=True)
    epoch = dt.date(1970, 1, 1)
    names = np.array(
        [
            "unknown-day" if d == -(2**31) else (epoch + dt.timedelta(days=int(d))).isoformat()
            for d in distinct
        ],
        dtype=object,
    )
    return names[inverse]
