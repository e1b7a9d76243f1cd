"""Reading recordings from disk and fetching PhysioNet databases."""

from afdetect.io.records import Recording, read_record

__all__ = ["Recording", "read_record"]
