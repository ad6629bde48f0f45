"""One watcher per journal. The lock itself belongs to the state store (record/store): a flock
beside the journal for the files store, an advisory lock with standbys for Postgres. These
names stay for the callers and tests that know them."""

from __future__ import annotations

from cutover.record.store.base import WatcherRunning
from cutover.record.store.files import WATCH_LOCK_SUFFIX as SUFFIX
from cutover.record.store.files import WatchLock
from cutover.record.store.files import watch_lock_path as lock_path

__all__ = ["SUFFIX", "WatchLock", "WatcherRunning", "lock_path"]
