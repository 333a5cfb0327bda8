"""Blob storage: content-addressed bytes behind one interface, chosen by `GOODEYE_STORAGE`."""

from goodeye.storage.interface import BlobStorage, StorageUnavailable


def create_storage(settings):
    """Build the blob store the settings name."""
    if settings.storage == "s3":
        from goodeye.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    from goodeye.storage.local import LocalStorage

    return LocalStorage(settings.blob_dir)


__all__ = ["BlobStorage", "StorageUnavailable", "create_storage"]
