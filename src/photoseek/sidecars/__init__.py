"""Write what photoseek knows about a photo into XMP sidecars that digiKam, darktable and Lightroom read."""

from photoseek.sidecars.export import ExportReport, SidecarChange, export_sidecars, sidecar_path
from photoseek.sidecars.xmp import OwnedFields, XmpDocument, XmpError

__all__ = [
    "ExportReport", "OwnedFields", "SidecarChange", "XmpDocument", "XmpError", "export_sidecars", "sidecar_path",
]
